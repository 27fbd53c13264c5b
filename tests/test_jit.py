"""The hot tier: the same semantics as the cold tier, exact instruction
counts, invalidation of compiled code, and chaining that stays native."""

from __future__ import annotations

import pytest
from keystone import KS_ARCH_X86, KS_MODE_32, Ks

from dbt.cpu.state import Slot
from dbt.guests import shipped_guests
from dbt.session import RunOptions, run_guest
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Ending

GUESTS = [g.name for g in shipped_guests()]


def _run(name: str, jit: str, **options):
    options.setdefault("jit_compile", "foreground")  # the same batches, and statistics, every run
    return run_guest(name, RunOptions(serial_sink=lambda data: None, jit=jit, timeout_seconds=900, **options))


# The program tests run each tier; "background" is the hot tier with its
# regions compiled by the worker while the program runs on (when they are
# installed depends on the host, so those runs check results, not counts).
TIERS = ["off", "on", "always", "background"]


def _tier(jit: str) -> dict[str, str]:
    if jit == "background":
        return {"jit": "on", "jit_compile": "background"}
    return {"jit": jit, "jit_compile": "foreground"}


@pytest.mark.parametrize("name", GUESTS)
def test_every_guest_runs_the_same_with_every_block_compiled(name: str, built_guests) -> None:
    cold = _run(name, "off")
    hot = _run(name, "always")
    assert hot.output == cold.output
    assert hot.status == cold.status
    assert hot.insns == cold.insns  # virtual time is the same in both tiers
    assert hot.machine.jit.native_insns > 0 and hot.machine.jit.regions


def test_compute_stays_native_between_regions(built_guests) -> None:
    result = _run("compute", "on")
    jit = result.machine.jit
    assert result.output == built_guests["compute"].expected_output
    assert jit.stayed_native > 0.99, f"{jit.native_block_runs} native block runs, {jit.native_entries} entries"
    assert jit.native_insns > 0.95 * result.insns


def test_compute_compiled_in_the_background(built_guests) -> None:
    """The default: the worker process builds, optimizes and generates the
    code while the guest runs on; the monitor only links it.  Until a
    region is in, its code runs cold, so the share of native transitions is
    measured over a run long enough for that start to matter little."""
    result = _run("compute", "on", jit_compile="background", cmdline="scale=8")
    jit = result.machine.jit
    assert result.output == _run("compute", "off", cmdline="scale=8").output
    assert jit.regions and jit.worker_seconds > 0
    assert jit.compile_seconds < jit.worker_seconds / 4  # the monitor's share: forming, sending, linking
    assert jit.stayed_native > 0.99, f"{jit.native_block_runs} native block runs, {jit.native_entries} entries"


# -- invalidation of compiled code -------------------------------------------------------
BASE = 0x100000
PAGE_DIRECTORY = 0x200000
PAGE_TABLE = 0x201000
DATA_A, DATA_B = 0x300000, 0x301000
CODE_A, CODE_B = 0x302000, 0x303000
WINDOW = 0x400000  # the virtual page remapped under the hot loops
FUNCTION = 0x401000  # the virtual page of the function remapped under a hot loop


def _assemble(source: str, address: int) -> bytes:
    encoding, _ = Ks(KS_ARCH_X86, KS_MODE_32).asm(source, address)
    return bytes(encoding)


def _paged_machine(jit: str) -> Machine:
    """Paging on: the first 4 MiB identity-mapped; 0x400000 and 0x401000
    mapped by a page table the guest code edits."""
    machine = Machine(MachineConfig(mode="native", jit_threshold=20, serial_sink=lambda d: None,
                                    max_insns=5_000_000, **_tier(jit)))
    memory = machine.memory
    memory.load_image(PAGE_DIRECTORY, ((0 | 0x83).to_bytes(4, "little"))  # 4 MiB page at 0
                      + (PAGE_TABLE | 3).to_bytes(4, "little"))
    memory.load_image(PAGE_TABLE, (DATA_A | 3).to_bytes(4, "little") + (CODE_A | 3).to_bytes(4, "little"))
    memory.load_image(DATA_A, (3).to_bytes(4, "little"))
    memory.load_image(DATA_B, (5).to_bytes(4, "little"))
    memory.load_image(CODE_A, _assemble("mov eax, 7; ret", FUNCTION))
    memory.load_image(CODE_B, _assemble("mov eax, 11; ret", FUNCTION))
    machine.system.write_cr(4, 0x10)  # PSE
    machine.system.write_cr(3, PAGE_DIRECTORY)
    machine.system.write_cr(0, machine.slots[Slot.CR0] | 0x80000000)
    return machine


PROGRAM = f"""
    mov esp, 0x90000
    xor esi, esi
    call sums
    mov dword ptr [{PAGE_TABLE:#x}], {DATA_B | 3:#x}
    mov dword ptr [{PAGE_TABLE + 4:#x}], {CODE_B | 3:#x}
    invlpg [{WINDOW:#x}]
    invlpg [{FUNCTION:#x}]
    call sums
    hlt
sums:
    mov ecx, 20000
data_loop:
    add esi, dword ptr [{WINDOW:#x}]
    dec ecx
    jnz data_loop
    mov ecx, 20000
code_loop:
    mov edx, {FUNCTION:#x}
    call edx
    add esi, eax
    dec ecx
    jnz code_loop
    ret
"""


@pytest.mark.parametrize("jit", TIERS)
def test_remapping_pages_under_hot_loops(jit: str) -> None:
    """Data and code pages remapped (PTE changed, INVLPG) under loops that
    were compiled: the loops see the new pages."""
    machine = _paged_machine(jit)
    machine.memory.load_image(BASE, _assemble(PROGRAM, BASE))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    assert machine.slots[Slot.ESI] == 20000 * (3 + 7) + 20000 * (5 + 11)
    if jit in ("on", "always"):
        assert machine.jit.native_insns > 10_000


# A function that maps its own page elsewhere and goes on: INVLPG ends
# the block, and the next instruction is fetched through the new mapping.
SELF_REMAP = f"""
    mov dword ptr [{PAGE_TABLE + 4:#x}], {{new_page:#x}}
    invlpg [{FUNCTION:#x}]
    mov eax, {{value}}
    ret
"""


@pytest.mark.parametrize("jit", ["off", "always"])
def test_code_that_remaps_its_own_page_goes_on_in_the_new_page(jit: str) -> None:
    machine = _paged_machine(jit)
    machine.memory.load_image(CODE_A, _assemble(SELF_REMAP.format(new_page=CODE_B | 3, value=7), FUNCTION))
    machine.memory.load_image(CODE_B, _assemble(SELF_REMAP.format(new_page=CODE_A | 3, value=11), FUNCTION))
    machine.memory.load_image(BASE, _assemble(f"mov esp, 0x90000; mov edx, {FUNCTION:#x}; call edx; hlt", BASE))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    assert machine.slots[Slot.EAX] == 11


SMC_PROGRAM = """
    mov esp, 0x90000
    xor esi, esi
    mov ebx, 100
outer:
    mov ecx, 200
inner:
patched:
    add esi, 1
    dec ecx
    jnz inner
    inc byte ptr [patched + 2]
    dec ebx
    jnz outer
    hlt
"""


def _run_program(source: str, jit: str) -> Machine:
    """Run ``source`` at BASE, paging off, blocks hot after 20 runs, to its HLT."""
    machine = Machine(MachineConfig(mode="native", jit_threshold=20, serial_sink=lambda d: None,
                                    max_insns=5_000_000, **_tier(jit)))
    machine.memory.load_image(BASE, _assemble(source, BASE))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    return machine


@pytest.mark.parametrize("jit", TIERS)
def test_self_modifying_code_inside_a_hot_loop(jit: str) -> None:
    """The immediate of a compiled loop's ADD changes after every 200
    iterations: each change must be seen."""
    machine = _run_program(SMC_PROGRAM, jit)
    assert machine.slots[Slot.ESI] == sum(200 * (1 + k) for k in range(100))
    assert machine.cache.stats.code_writes >= 99


NESTED_PROGRAM = """
    xor esi, esi
    mov ecx, 300
outer:
    mov edx, 2000
inner:
    add esi, edx
    dec edx
    jnz inner
    add esi, 1
    dec ecx
    jnz outer
    hlt
"""


@pytest.mark.parametrize("jit", TIERS)
def test_an_outer_loop_compiled_after_its_inner_loop_holds_it_too(jit: str) -> None:
    """The inner loop is hot (and compiled, a region of its own) within the
    outer loop's first iteration; when the outer loop's blocks are hot, its
    region takes in the inner loop again, since it lies on the outer
    cycle, so an outer iteration does not cross the dispatcher twice."""
    machine = _run_program(NESTED_PROGRAM, jit)
    assert machine.slots[Slot.ESI] == 300 * (sum(range(1, 2001)) + 1)
    if jit == "on":
        jit_ = machine.jit
        assert jit_ is not None and len(jit_.regions) == 2
        inner = BASE + 12  # after "xor esi, esi; mov ecx, imm32; mov edx, imm32"
        outer_region = jit_.regions[1]
        assert inner in outer_region.blocks and inner in jit_.regions[0].blocks
        assert jit_.native_transitions < 50, jit_.native_transitions  # was two per outer iteration


CALL_PROGRAM = """
    mov esp, 0x90000
    xor esi, esi
    mov ecx, 3000
again:
    call bump
    dec ecx
    jnz again
    mov ecx, 5
once_more:
    call bump
    dec ecx
    jnz once_more
    hlt
bump:
    mov edx, 40
spin:
    add esi, edx
    dec edx
    jnz spin
    ret
"""


@pytest.mark.parametrize("jit", TIERS)
def test_a_hot_loop_that_calls_a_function_keeps_call_and_return_in_its_region(jit: str) -> None:
    """The loop's region holds the function (whose inner loop was compiled
    first, on its own) and the block the call returns to: the RET goes
    there inside the region.  The same RET returning where the region does
    not reach (the second call site) leaves for the dispatcher as before."""
    machine = _run_program(CALL_PROGRAM, jit)
    assert machine.slots[Slot.ESI] == 3005 * sum(range(1, 41))
    if jit == "on":
        jit_ = machine.jit
        assert jit_ is not None
        assert jit_.native_transitions < 100, jit_.native_transitions  # was several per call
        assert jit_.stayed_native > 0.99


# -- address-space switches between queueing and compiling --------------------------------------
PAGE_DIRECTORY_2 = 0x202000
PAGE_TABLE_2 = 0x203000

SWITCH_PROGRAM = f"""
    mov esp, 0x90000
    xor esi, esi
    mov ecx, 30
    call calls
    mov eax, {PAGE_DIRECTORY_2:#x}
    mov cr3, eax
    mov ecx, 10000
busy:
    dec ecx
    jnz busy
    mov ecx, 20000
    call calls
    hlt
calls:
    mov edx, {FUNCTION:#x}
    call edx
    add esi, eax
    dec ecx
    jnz calls
    ret
"""


def _second_address_space(machine: Machine) -> None:
    """PAGE_DIRECTORY_2: the same 4 MiB at 0, but WINDOW and FUNCTION in
    DATA_B and CODE_B."""
    memory = machine.memory
    memory.load_image(PAGE_DIRECTORY_2, (0 | 0x83).to_bytes(4, "little") + (PAGE_TABLE_2 | 3).to_bytes(4, "little"))
    memory.load_image(PAGE_TABLE_2, (DATA_B | 3).to_bytes(4, "little") + (CODE_B | 3).to_bytes(4, "little"))


@pytest.mark.parametrize("jit", TIERS)
def test_a_region_queued_before_an_address_space_switch(jit: str) -> None:
    """The function at one virtual address is different code in two address
    spaces.  It and the loop calling it turn hot in the first; the CR3 load
    comes before their regions are compiled, so the function's region must
    not be published under that address: in the second space the same
    (compiled) loop calls the other function."""
    machine = _paged_machine(jit)
    _second_address_space(machine)
    machine.memory.load_image(BASE, _assemble(SWITCH_PROGRAM, BASE))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    assert machine.slots[Slot.ESI] == 30 * 7 + 20000 * 11
    if jit in ("on", "always"):
        assert machine.jit.native_insns > 50_000


# The code at FUNCTION in each space: load CR3 from EBX, then step ESI on
# (ESI * 3 + 1 in CODE_A, ESI * 3 + 2 in CODE_B: the order shows which ran)
# and add the word at WINDOW (3 in DATA_A, 5 in DATA_B: a TLB entry kept
# across the load would show).
SWITCHING_FUNCTION = "mov cr3, ebx; imul esi, esi, 3; add esi, {step}; add esi, dword ptr [0x400000]; ret"
SWITCHING_PROGRAM = f"""
    mov esp, 0x90000
    xor esi, esi
    mov edx, {FUNCTION:#x}
    mov ecx, 3000
again:
    mov ebx, {PAGE_DIRECTORY_2:#x}
    call edx
    mov ebx, {PAGE_DIRECTORY:#x}
    call edx
    dec ecx
    jnz again
    hlt
"""


@pytest.mark.parametrize("jit", TIERS)
def test_code_after_a_cr3_load_comes_from_the_new_mapping(jit: str) -> None:
    """A CR3 load goes on to the next block without the monitor only where
    the next instruction still comes from the same physical page.  Here
    its page maps elsewhere in the other address space, and each call runs
    the tail of the other space's function, whose load (in compiled code, a
    TLB miss the native page walk fills) reads the other space's page."""
    machine = _paged_machine(jit)
    _second_address_space(machine)
    memory = machine.memory
    memory.load_image(CODE_A, _assemble(SWITCHING_FUNCTION.format(step=1), FUNCTION))
    memory.load_image(CODE_B, _assemble(SWITCHING_FUNCTION.format(step=2), FUNCTION))
    memory.load_image(BASE, _assemble(SWITCHING_PROGRAM, BASE))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    expected = 0
    for _ in range(3000):
        expected = ((expected * 3 + 2 + 5) * 3 + 1 + 3) & 0xFFFFFFFF
    assert machine.slots[Slot.ESI] == expected
    assert machine.exits_by_reason["env"] >= 6000  # each load remapped the code that follows it
    if jit == "always":  # (with "on", the loop runs cold until its batch is due)
        assert machine.jit.native_insns > 0.9 * machine.icount
        assert machine.mmu.native_fills > 5000


def test_a_cr3_load_asks_for_the_monitor_when_the_next_code_is_not_mapped() -> None:
    """The check after a CR3 load walks the new tables as the next fetch
    would: same page, go on; another page, or none at all, the monitor
    looks (and delivers the #PF), and a walk that fails changes nothing."""
    machine = _paged_machine("off")
    _second_address_space(machine)
    memory, system = machine.memory, machine.system
    machine.env_changed()
    code_a, code_b = CODE_A >> 12, CODE_B >> 12
    assert system.write_cr3(PAGE_DIRECTORY, FUNCTION + 3, code_a) == 0
    assert system.write_cr3(PAGE_DIRECTORY, FUNCTION + 3, code_b) == 1
    assert system.write_cr3(PAGE_DIRECTORY_2, FUNCTION + 3, code_b) == 0
    assert system.write_cr3(PAGE_DIRECTORY_2, BASE, BASE >> 12) == 0
    unmapped = 0x204000  # a page directory with nothing present at FUNCTION
    memory.load_image(unmapped, (0 | 0x83).to_bytes(4, "little") + (0x205000 | 3).to_bytes(4, "little"))
    memory.load_image(0x205000, bytes(8))
    assert system.write_cr3(unmapped, FUNCTION + 3, code_a) == 1
    assert machine.slots[Slot.CR3] == unmapped
    assert memory.read(unmapped + 4, 4) == 0x205000 | 3  # no accessed bit for a walk that failed


CALLING_PROGRAM = f"""
    mov esp, 0x90000
    mov ecx, 50
again:
    mov edx, {FUNCTION:#x}
    call edx
    dec ecx
    jnz again
    hlt
"""


def test_a_cr3_load_keeps_the_look_ups_of_the_page_the_code_goes_on_in() -> None:
    """The look-ups by EIP (the jump cache; the native table has the same
    rule) forget every page at a CR3 load but the one the next instruction
    is on, when the new tables map it where the block was translated from;
    when they map it elsewhere, they forget everything."""
    machine = _paged_machine("off")
    _second_address_space(machine)
    machine.memory.load_image(BASE, _assemble(CALLING_PROGRAM, BASE))
    machine.slots[Slot.EIP] = BASE
    assert run(machine).ending is Ending.HALTED
    cache, system = machine.cache, machine.system

    def pages() -> set[int]:
        return {pc >> 12 for pc, _ in cache.jump_cache}

    assert pages() == {BASE >> 12, FUNCTION >> 12}
    assert system.write_cr3(PAGE_DIRECTORY_2, BASE + 5, BASE >> 12) == 0  # the code page stays: FUNCTION moves
    assert pages() == {BASE >> 12}
    assert machine.slots[Slot.CR3] == PAGE_DIRECTORY_2
    assert system.write_cr3(PAGE_DIRECTORY, FUNCTION + 3, CODE_B >> 12) == 1  # FUNCTION is CODE_A's again
    assert not cache.jump_cache


def test_the_cr3_loop_finds_its_next_block_by_eip_in_trap_mode(built_guests, monkeypatch) -> None:
    """Deprivileged, each CR3 load of the ``cr3`` loop traps and the monitor
    emulates it.  The code after it stays where it was, so the look-ups by
    EIP of its page survive the load: the cold tier finds the next block in
    the jump cache rather than by its physical address, and the hot tier's
    native table keeps the entry the dispatcher goes on at, so nothing is
    published again.  Nor is the instruction that traps fetched and decoded
    again at each trap."""
    from dbt.vmm.jit import Jit

    published, decoded = [], []
    publish, record = Jit._publish, Machine.instruction_record
    monkeypatch.setattr(Jit, "_publish", lambda self, block, region: (published.append(block.pc),
                                                                       publish(self, block, region)))
    monkeypatch.setattr(Machine, "instruction_record", lambda self, eip: (decoded.append(eip), record(self, eip))[1])
    iterations = 6000
    reference = _run("cr3", "off", mode="native", cmdline=f"n={iterations}")
    for jit in ("off", "on"):
        decoded.clear()
        result = _run("cr3", jit, mode="trap", cmdline=f"n={iterations}")
        assert (result.output, result.status) == (reference.output, reference.status)
        stats = result.machine.cache.stats
        assert stats.table_hits < 0.01 * iterations, stats  # two per iteration when the load forgot it all
        assert stats.jump_cache_hits > iterations, stats
        # The trapping instruction is decoded once, then taken from the translation that emulates it.
        assert len(decoded) < 0.01 * iterations, len(decoded)  # (the boot's traps, once each)
    assert result.machine.jit.native_served > 0.3 * iterations  # (the loop runs cold for its first few thousand)
    assert len(published) < 0.01 * iterations  # one per iteration when the load emptied the table


# -- monitor exits served from native code ---------------------------------------------------
def test_monitor_exits_are_served_without_leaving_native_code(built_guests) -> None:
    """The ``syscall`` loop leaves compiled code at every INT (the monitor
    delivers it) and IRET.  Once the loop is compiled, the dispatcher has
    each exit served and goes on natively: Python's loop enters native code
    only a few times."""
    iterations = 20000
    hot = _run("syscall", "on", cmdline=f"n={iterations}")
    cold = _run("syscall", "off", cmdline=f"n={iterations}")
    assert (hot.output, hot.status, hot.insns) == (cold.output, cold.status, cold.insns)
    jit = hot.machine.jit
    assert jit.native_served > 0.5 * iterations  # all but those before the loop was compiled
    assert jit.native_entries < 0.01 * iterations


def test_a_cr3_load_in_compiled_code_stays_there_while_the_code_maps_the_same(built_guests) -> None:
    """The ``cr3`` loop alternates between two page directories that map
    its code alike: each load empties the TLB and the native table from
    inside compiled code (the helper call), and the loop goes on natively,
    with no monitor exit."""
    iterations = 20000
    result = _run("cr3", "on", mode="native", cmdline=f"n={iterations}")
    assert result.output == _run("cr3", "off", mode="native", cmdline=f"n={iterations}").output
    machine = result.machine
    assert machine.mmu.tlb_flushes > iterations
    assert machine.exits_by_reason.get("env", 0) < 0.01 * iterations
    assert machine.jit.native_entries < 0.01 * iterations
    assert machine.jit.native_insns > 3 * iterations  # of the loop's 4 instructions per iteration


def test_system_calls_keep_the_translations(built_guests) -> None:
    """INT and IRET reload CS with the same base and limit: EIP still means
    the same code, so the jump cache and the native table are kept."""
    iterations = 2000
    result = _run("syscall", "on", mode="native", cmdline=f"n={iterations}")
    assert result.output == _run("syscall", "off", mode="native", cmdline=f"n={iterations}").output
    assert result.machine.cache.stats.table_hits < 0.1 * iterations
    assert result.machine.jit.native_lookups_missed < 0.1 * iterations


@pytest.mark.parametrize("compile_in", ["foreground", "background"])
@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
def test_multitask_keeps_virtual_time_with_the_hot_tier_on(mode: str, compile_in: str, built_guests) -> None:
    """Exits served in place, regions entered and left (and, compiled in the
    background, installed at whatever instruction the worker's answer finds
    the guest): the preempted tasks still see every interrupt at the same
    instruction count as in the cold tier."""
    hot = _run("multitask", "on", mode=mode, jit_compile=compile_in)
    cold = _run("multitask", "off", mode=mode)
    assert (hot.output, hot.status, hot.insns) == (cold.output, cold.status, cold.insns)


TIME_PROGRAM = """
    mov esp, 0x90000
    xor edi, edi
    mov ecx, 30000
timed:
    add esi, 1
    add esi, 2
    rdtsc
    add edi, eax
    dec ecx
    jnz timed
    hlt
"""


def test_native_code_tells_helpers_the_instruction_count() -> None:
    """RDTSC (and any device access) inside compiled code sees the same
    instruction count as in the cold tier: the sum of the timestamps a hot
    loop read is the same in every tier."""
    sums = []
    for jit in ("off", "on", "always"):
        machine = _run_program(TIME_PROGRAM, jit)
        if jit != "off":
            assert machine.jit.native_insns > 100_000
        sums.append(machine.slots[Slot.EDI])
    assert sums[0] == sums[1] == sums[2]


SLOW_PATH_PROGRAM = """
    mov esp, 0x90000
    mov ecx, 3000
    xor eax, eax
    mov ebx, 1
    mov edx, 2
    mov esi, 3
    mov edi, 4
    mov ebp, 5
again:
    add ebx, eax
    add edx, ebx
    mov eax, dword ptr [0xF0000000]
    add esi, edx
    xor edi, esi
    mov dword ptr [0xF0000010], ebp
    add ebp, edi
    rol esi, 3
    add eax, ebp
    dec ecx
    jnz again
    hlt
"""


def test_guest_registers_survive_the_slow_paths_of_compiled_code() -> None:
    """Loads and stores outside RAM leave compiled code through the slow
    path (a callback into the monitor, through the runtime's register-
    preserving trampolines) while every guest register is live: all of them
    end as in the cold tier."""
    registers = (Slot.EAX, Slot.EBX, Slot.ECX, Slot.EDX, Slot.ESI, Slot.EDI, Slot.EBP, Slot.ESP)
    results = {}
    for jit in ("off", "on", "always"):
        machine = _run_program(SLOW_PATH_PROGRAM, jit)
        results[jit] = [machine.slots[slot] for slot in registers]
        if jit != "off":
            assert machine.jit.native_insns > 5_000  # a thousand iterations' slow paths ran in native code
            assert any("preserve_mostcc" in region.llvm_ir for region in machine.jit.regions)
    assert results["off"] == results["on"] == results["always"]
