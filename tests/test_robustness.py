"""Guests that go wrong end with a clear report, never a traceback: a
triple fault, garbage, a jump into memory that is not there, a page fault
with no handler, a loop that never ends (bounded by --max-insns and
--timeout).  The report names the reason, EIP, the instruction and the
registers, and the exit status says which ending it was."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kernels import ENTRY, kludge_kernel

from dbt.cpu.state import Slot
from dbt.loader.multiboot import boot
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig

TRIPLE_FAULT, BUDGET, TIMEOUT = 6, 8, 10

# Paging on with an empty page directory: the next fetch faults, and so
# does every handler the IDT (empty: limit 0) cannot name.
PAGING_WITHOUT_MAPPINGS = """
    mov eax, 0x200000
    mov dword ptr [eax], 0
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    nop
"""


def _dbt(tmp_path: Path, kernel: bytes, *options: str) -> subprocess.CompletedProcess:
    image = tmp_path / "kernel.bin"
    image.write_bytes(kernel)
    return subprocess.run([sys.executable, "-m", "dbt", "run", str(image), *options],
                          capture_output=True, timeout=300)


def _report(result: subprocess.CompletedProcess) -> str:
    report = result.stderr.decode()
    assert "Traceback" not in report
    assert "eax=" in report and "esp=" in report and "cr0=" in report  # the registers
    return report


@pytest.mark.parametrize("code, where, what", [
    (b"\x0f\xff", f"{ENTRY:#010x}", "ud0"),  # an invalid opcode
    ("mov eax, 0x7f000000; jmp eax", "0x7f000000", "(invalid: ff ff"),  # beyond RAM: all ones
    (PAGING_WITHOUT_MAPPINGS, "#PF page fault", "(no code there)"),
])
def test_faults_with_no_handler_end_in_a_reported_triple_fault(tmp_path: Path, code, where: str,
                                                               what: str) -> None:
    result = _dbt(tmp_path, kludge_kernel(code))
    assert result.returncode == TRIPLE_FAULT
    report = _report(result)
    assert "triple fault" in report
    assert where in report and what in report


def test_a_triple_fault_can_reset_the_machine(tmp_path: Path) -> None:
    """--on-triple-fault reset: the PC resets and the kernel boots again
    (and again, until the budget ends it)."""
    result = _dbt(tmp_path, kludge_kernel(b"\x90\x90\x0f\xff"), "--on-triple-fault", "reset",
                  "--max-insns", "1000")
    assert result.returncode == BUDGET
    assert "instruction budget" in _report(result)
    assert "after 1,000 instructions and 499 resets" in result.stderr.decode()  # two NOPs each boot


def test_a_reset_loop_that_retires_nothing_stops(tmp_path: Path) -> None:
    """A kernel that triple-faults at its first instruction would reset
    forever without using its budget: the second time, the run stops."""
    result = _dbt(tmp_path, kludge_kernel(b"\x0f\xff"), "--on-triple-fault", "reset")
    assert result.returncode == TRIPLE_FAULT
    assert "rather than reset forever" in _report(result)


def test_an_endless_loop_is_stopped_by_the_budget(tmp_path: Path) -> None:
    result = _dbt(tmp_path, kludge_kernel("spin: inc eax; jmp spin"), "--max-insns", "100000")
    assert result.returncode == BUDGET
    report = _report(result)
    assert "after 100,000 instructions" in report
    assert "inc eax" in report or "jmp" in report


@pytest.mark.parametrize("jit", ["off", "on"])
def test_an_endless_loop_is_stopped_by_the_timeout(tmp_path: Path, jit: str) -> None:
    started = time.monotonic()
    result = _dbt(tmp_path, kludge_kernel("spin: inc eax; jmp spin"), "--timeout", "1", "--jit", jit)
    assert result.returncode == TIMEOUT
    assert "longer than 1.0 s" in _report(result)
    assert time.monotonic() - started < 30


def test_an_endless_loop_with_interrupts_off_and_hlt(tmp_path: Path) -> None:
    result = _dbt(tmp_path, kludge_kernel("cli; hlt"))
    assert result.returncode == 12
    assert "nothing can wake it" in _report(result)


# -- --clock host ---------------------------------------------------------------------------
TSC_LOOP = """
    rdtsc
    mov esi, eax
    mov edi, edx
    mov ecx, 200000
spin:
    dec ecx
    jnz spin
    rdtsc
    sub eax, esi
    sbb edx, edi
    hlt
"""


@pytest.mark.parametrize("clock", ["virtual", "host"])
def test_clock_sources(clock: str) -> None:
    """Virtual time is 10 ns per retired instruction, exactly; host time is
    the host's: the guest's TSC then measures the wall time the loop took."""
    machine = Machine(MachineConfig(clock=clock, jit="off", serial_sink=lambda data: None))
    boot(machine, kludge_kernel(TSC_LOOP))
    started = time.perf_counter_ns()
    run(machine)
    wall_ns = time.perf_counter_ns() - started
    elapsed = machine.slots[Slot.EAX] | machine.slots[Slot.EDX] << 32
    if clock == "virtual":
        assert elapsed == (3 + 2 * 200_000 + 1) * 10  # the instructions from one RDTSC to the next
    else:
        assert elapsed < wall_ns
        assert elapsed > wall_ns // 4  # the loop is most of the run


def test_hlt_sleeps_until_the_timer_under_the_host_clock(built_guests) -> None:
    """Under --clock host, HLT waits for the next tick in host time."""
    result = subprocess.run([sys.executable, "-m", "dbt", "run", "timer", "--clock", "host"],
                            capture_output=True, timeout=300)
    assert b"PASS hlt: 20 ticks, HLT woke each time" in result.stdout
