"""The code cache (--jit-cache): compiled regions' object code kept across
runs, and the fixed host addresses of guest RAM and the native tables that
make it valid in a later run."""

from __future__ import annotations

import dataclasses
import gc
import mmap
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from keystone import KS_ARCH_X86, KS_MODE_32, Ks

from dbt.backend import codecache
from dbt.backend.codecache import CodeCache, CodeCacheError
from dbt.backend.llvm import NativeTarget, module_text, region_names
from dbt.cpu.state import Slot
from dbt.memory import arena
from dbt.memory.physical import PhysicalMemory
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Ending

ROOT = Path(__file__).resolve().parent.parent
GUEST = ["compute", "--mode", "native", "--append", "scale=2"]
BASE = 0x100000
# A loop whose block loads and stores RAM and calls a helper (RDTSC).
LOOP_WITH_CALLS = """
    mov ecx, 100
loop:
    mov eax, [0x2000]
    add eax, ecx
    mov [0x2004], eax
    rdtsc
    dec ecx
    jnz loop
    hlt
"""


def _dbt(*arguments: str) -> subprocess.CompletedProcess[str]:
    """A run in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "dbt", "run", *arguments], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def _cache_counts(stats: str) -> tuple[int, int]:
    found = re.search(r"code cache\s+([\d,]+) hits\s+\(([\d,]+) misses", stats)
    assert found, stats
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def _compiled(stats: str) -> int:
    found = re.search(r"regions compiled\s+([\d,]+)", stats)
    assert found, stats
    return int(found[1].replace(",", ""))


def test_a_second_run_takes_every_module_from_the_cache(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    plain = _dbt(*GUEST, "--jit-compile", "foreground")
    first = _dbt(*GUEST, "--jit-compile", "foreground", "--jit-cache", cache, "--stats")
    second = _dbt(*GUEST, "--jit-compile", "foreground", "--jit-cache", cache, "--stats")
    for each in (plain, first, second):
        assert each.returncode == 1, each.stderr  # compute reports its checks through the debug exit
        assert each.stdout == plain.stdout
    hits, misses = _cache_counts(first.stderr)
    assert hits == 0 and misses > 0
    assert len(list(Path(cache).glob("*.o"))) == misses
    # The same regions, every one loaded rather than compiled.
    hits, misses = _cache_counts(second.stderr)
    assert (hits, misses) == (_cache_counts(first.stderr)[1], 0)
    assert _compiled(second.stderr) == _compiled(first.stderr)


def test_the_worker_takes_modules_from_the_cache(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    first = _dbt(*GUEST, "--jit-compile", "background", "--jit-cache", cache, "--stats")
    second = _dbt(*GUEST, "--jit-compile", "background", "--jit-cache", cache, "--stats")
    assert first.returncode == second.returncode == 1, second.stderr
    assert second.stdout == first.stdout
    assert _cache_counts(first.stderr)[0] == 0
    hits, _ = _cache_counts(second.stderr)
    # The worker forms its batches as the run goes, so a module may group
    # regions differently from the first run; the first batch (one region,
    # sent as soon as it turns hot) is the same in both.
    assert hits > 0


def test_a_damaged_entry_is_compiled_again_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _dbt(*GUEST, "--jit-compile", "foreground", "--jit-cache", str(cache), "--stats")
    _, stored = _cache_counts(first.stderr)
    for entry in cache.glob("*.o"):
        data = bytearray(entry.read_bytes())
        data[-1] ^= 0xFF  # a flipped bit in the code
        entry.write_bytes(bytes(data))
    damaged = _dbt(*GUEST, "--jit-compile", "foreground", "--jit-cache", str(cache), "--stats")
    assert damaged.returncode == 1 and damaged.stdout == first.stdout
    assert _cache_counts(damaged.stderr) == (0, stored)
    repaired = _dbt(*GUEST, "--jit-compile", "foreground", "--jit-cache", str(cache), "--stats")
    assert _cache_counts(repaired.stderr) == (stored, 0)


def test_ram_and_tables_lie_at_the_same_addresses_in_every_run(tmp_path: Path) -> None:
    """With a code cache; without one the kernel places them (randomized)."""
    program = ("import sys\n"
               "from dbt.vmm.machine import Machine, MachineConfig\n"
               "cache = sys.argv[1] if len(sys.argv) > 1 else None\n"
               "m = Machine(MachineConfig(mode='native', jit='on', jit_compile='foreground', jit_cache=cache))\n"
               "b = m.jit.bindings(0)\n"
               "print(m.memory.arena.fixed, b.ram, b.read_tlb, b.write_tlb, b.counters, b.code_pages, b.fill_log)\n")

    def placed(*arguments: str) -> str:
        return subprocess.run([sys.executable, "-c", program, *arguments], capture_output=True, text=True,
                              cwd=ROOT, check=True).stdout

    cached = [placed(str(tmp_path)) for _ in range(2)]
    assert cached[0] == cached[1]
    fixed, ram, *_ = cached[0].split()
    assert fixed == "True" and int(ram) == arena.BASE
    fixed, ram, *_ = placed().split()
    assert fixed == "False" and not arena.BASE <= int(ram) < arena.BASE + arena.PLACES * arena.STRIDE


def test_a_place_another_mapping_holds_is_passed_over() -> None:
    gc.collect()  # machines of earlier tests give their places back
    free = min(set(range(arena.PLACES)) - arena._taken)
    hint = arena.BASE + free * arena.STRIDE
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | arena.MAP_FIXED_NOREPLACE
    blocker = arena._libc.mmap(hint, mmap.PAGESIZE, mmap.PROT_READ, flags, -1, 0)
    assert blocker == hint
    try:
        memory = PhysicalMemory(1 << 20, bus=None, fixed_address=True)  # type: ignore[arg-type]
        other = PhysicalMemory(1 << 20, bus=None, fixed_address=True)  # type: ignore[arg-type]
    finally:
        arena._libc.munmap(blocker, mmap.PAGESIZE)
    assert memory.arena.fixed and memory.arena.place != free
    assert other.arena.fixed and other.arena.place not in (free, memory.arena.place)
    other.ram[4095] = 7
    assert other.read(4095, 1) == 7 and memory.read(4095, 1) == 0


def test_a_module_names_no_function_address() -> None:
    """What region code calls is bound by symbol when it is loaded: two
    machines whose callbacks and runtime lie elsewhere compile the same
    text, and a different RAM address makes a different key."""
    machine = Machine(MachineConfig(mode="native", jit="on", jit_compile="foreground", jit_threshold=10**9,
                                    serial_sink=lambda d: None, max_insns=100_000))
    encoding, _ = Ks(KS_ARCH_X86, KS_MODE_32).asm(LOOP_WITH_CALLS, BASE)
    machine.memory.load_image(BASE, bytes(encoding))
    machine.slots[Slot.EIP] = BASE
    assert run(machine).ending is Ending.HALTED
    jit = machine.jit
    assert jit is not None
    block = machine.cached_block(BASE + 5, machine.flags)
    assert block is not None
    jit._note_calls_and_reasons(block)
    region = [jit._region_block(block)]
    here = jit.bindings(0)
    elsewhere = dataclasses.replace(
        here, slow_load=here.slow_load + 64, slow_store=here.slow_store + 64, helper=here.helper + 64,
        walk_read=here.walk_read + 64, trampolines={name: address + 64 for name, address in here.trampolines.items()})
    target = NativeTarget.get()
    texts = [module_text(target.triple, bindings, [region], region_names([region])) for bindings in (here, elsewhere)]
    assert texts[0] == texts[1]
    for name in ("@dbt_call_slow_load", "@dbt_slow_load", "@dbt_call_slow_store", "@dbt_call_helper", "@dbt_helper"):
        assert name in texts[0]
    assert str(here.helper) not in texts[0] and str(here.ram) in texts[0]
    moved = module_text(target.triple, dataclasses.replace(here, ram=here.ram + arena.STRIDE), [region],
                        region_names([region]))
    assert CodeCache.key(moved) != CodeCache.key(texts[0])


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecache, "MAX_ENTRIES", 3)
    cache = CodeCache(tmp_path)
    for number in range(3):
        cache.store(f"k{number}", b"code %d" % number)
        os.utime(tmp_path / f"k{number}.o", (number, number))
    assert cache.load("k0") == b"code 0"  # used: now the newest
    cache.store("k3", b"code 3")
    assert sorted(path.name for path in tmp_path.glob("*.o")) == ["k0.o", "k2.o", "k3.o"]
    assert (cache.hits, cache.misses) == (1, 0)
    assert cache.load("k1") is None and cache.misses == 1


def test_an_unusable_directory_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(CodeCacheError, match="not a directory"):
        CodeCache(afile)
    run = _dbt("hello", "--jit-cache", str(afile))
    assert run.returncode == 2
    assert "--jit-cache: cannot use" in run.stderr and "not a directory" in run.stderr
