"""Native, binary translation and trap-and-emulate on the same guests.

Binary translation must be equivalent to native (Popek and Goldberg's
equivalence property) on every guest.  Trap-and-emulate must be equivalent
on every guest that avoids the sensitive unprivileged instructions, and on
the ``sensitive`` guest it must differ in exactly the probes x86's holes
predict.
"""

from __future__ import annotations

import pytest

from dbt.cpu.state import Slot
from dbt.guests import shipped_guests
from dbt.session import RunOptions, run_guest
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Ending

GUESTS = [g.name for g in shipped_guests()]

# The probes of the sensitive guest trap-and-emulate gets wrong, and why.
TRAP_HOLES = {
    "mov from cs": "CS holds the real CPL (1) in its RPL",
    "mov from ss": "SS holds the real CPL (1) in its RPL",
    "push cs": "the pushed CS has RPL 1",
    "popf clear if": "POPF at CPL 1 > IOPL 0 silently keeps IF",
    "popf set iopl": "POPF at CPL > 0 silently keeps IOPL",
    "cli/sti": "CLI is emulated on the virtual IF, but PUSHF reads the real IF",
    "sgdt": "SGDT stores the real GDTR: the monitor's table",
    "sidt": "SIDT stores the real IDTR: the monitor's table",
    "lgdt/lidt": "after LGDT/LIDT, SGDT/SIDT still show the monitor's tables",
    "lar 0008": "LAR reports the shadow descriptor's DPL 1",
    "lar 0010": "LAR reports the shadow descriptor's DPL 1",
    "far call": "the far-called code runs with CS RPL 1",
    "far jmp": "the far-jumped-to code runs with CS RPL 1",
    "int/iret": "the interrupt handler runs at real CPL 1",
}


def _run(name: str, mode: str, **options) -> tuple[bytes, int]:
    result = run_guest(name, RunOptions(serial_sink=lambda data: None, mode=mode, timeout_seconds=600,
                                        **options))
    return result.output, result.status


def _probes(output: bytes) -> dict[str, str]:
    probes = {}
    for line in output.decode().splitlines():
        if line.startswith("probe "):
            name, _, seen = line[len("probe "):].partition(": ")
            probes[name] = seen
    return probes


@pytest.mark.parametrize("name", GUESTS)
def test_binary_translation_is_equivalent_to_native(name: str, built_guests) -> None:
    assert _run(name, "bt") == _run(name, "native")


@pytest.mark.parametrize("name", [g.name for g in shipped_guests() if g.trap_difference is None])
def test_trap_and_emulate_is_equivalent_without_sensitive_instructions(name: str, built_guests) -> None:
    assert _run(name, "trap") == _run(name, "native")


@pytest.mark.parametrize("name", [g.name for g in shipped_guests() if g.trap_difference is not None])
def test_trap_and_emulate_shows_its_documented_holes(name: str, built_guests) -> None:
    assert _run(name, "trap") != _run(name, "native"), built_guests[name].trap_difference


def test_the_sensitive_probes_that_trap_and_emulate_gets_wrong(built_guests) -> None:
    native = _probes(_run("sensitive", "native")[0])
    trap = _probes(_run("sensitive", "trap")[0])
    assert native.keys() == trap.keys()
    differing = {name for name in native if native[name] != trap[name]}
    assert differing == set(TRAP_HOLES), {
        "unexpected": sorted(differing - set(TRAP_HOLES)), "missing": sorted(set(TRAP_HOLES) - differing)}


def test_sensitive_is_line_for_line_native_under_binary_translation(built_guests) -> None:
    native, bt = _run("sensitive", "native")[0], _run("sensitive", "bt")[0]
    assert native.splitlines() == bt.splitlines()
    assert b"as on bare hardware" in native


def test_zero_three_deprivileging_runs_the_guests(built_guests) -> None:
    """The 0/3 model (kernel and user both at CPL 3) under binary translation,
    on guests that do not test the privilege separation 0/3 gives up (the
    real CPU cannot tell the guest's ring-0 segments from its ring-3 ones)."""
    for name in ("hello", "multitask", "sensitive", "paging", "timer"):
        assert _run(name, "bt", deprivilege="0/3") == _run(name, "native"), name


@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
def test_an_instruction_across_two_pages_is_fetched_again_when_the_second_moves(mode: str) -> None:
    """``0f`` ends one page and ``22 d8`` (mov cr3, eax) begins the next;
    the second page is then remapped to ``20 d8`` (mov eax, cr3).  Every
    mode runs the new instruction, trap-and-emulate's emulation included
    (it ran the old one, loading CR3 with 0, before the translation of a
    trapping instruction was checked as lookups are)."""
    directory, table, first, second_a, second_b = 0x200000, 0x201000, 0x300000, 0x302000, 0x303000
    start = 0x400FFF
    machine = Machine(MachineConfig(mode=mode, jit="off", serial_sink=lambda d: None, max_insns=100_000))
    memory = machine.memory
    memory.load_image(directory, (0x83).to_bytes(4, "little") + (table | 3).to_bytes(4, "little"))
    memory.load_image(table, (first | 3).to_bytes(4, "little") + (second_a | 3).to_bytes(4, "little"))
    memory.load_image(first + 0xFFF, b"\x0f")
    memory.load_image(second_a, b"\x22\xd8\xf4")  # mov cr3, eax; hlt
    memory.load_image(second_b, b"\x20\xd8\xf4")  # mov eax, cr3; hlt
    machine.system.write_cr(4, 0x10)  # PSE: the first 4 MiB in one page
    machine.system.write_cr(3, directory)
    machine.system.write_cr(0, machine.slots[Slot.CR0] | 0x80000000)
    machine.slots[Slot.EAX], machine.slots[Slot.EIP] = directory, start
    assert run(machine).ending is Ending.HALTED
    memory.load_image(table + 4, (second_b | 3).to_bytes(4, "little"))
    machine.system.write_cr(3, directory)  # the TLB and the look-ups by EIP forget the old mapping
    machine.outcome = None
    machine.slots[Slot.EAX], machine.slots[Slot.EIP] = 0, start
    assert run(machine).ending is Ending.HALTED
    assert machine.slots[Slot.EAX] == directory and machine.slots[Slot.CR3] == directory
