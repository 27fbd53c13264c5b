"""The page walk compiled code does on a TLB miss (``dbt_walk_read``),
against the MMU's own walk as the reference: where the MMU's walk succeeds
on RAM the native one finds the same page and leaves the same accessed
bits; anywhere else (a fault, MMIO, a full log) it gives up and changes
nothing, and the monitor's slow path takes the access."""

from __future__ import annotations

import ctypes

from hypothesis import given, settings
from hypothesis import strategies as st

from dbt.cpu.state import CR0_PG, CR4_PGE, CR4_PSE, Slot
from dbt.memory.mmu import (
    FILL_GLOBAL,
    FILL_LOG_CAPACITY,
    FILL_LOG_HEADER,
    FILL_USER,
    PTE_A,
    PTE_G,
    PTE_P,
    PTE_PS,
    PTE_U,
    SUPERVISOR,
    TLB_INVALID,
    USER,
)
from dbt.vmm.faults import GuestFault
from dbt.vmm.machine import Machine, MachineConfig

RAM = 8 << 20
DIRECTORY = 0x1000
TABLES = (0x2000, RAM - 0x1000, RAM, 0x40000000)  # in RAM, its last page, past it (nothing there)
WALK = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p,
                        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)

_machine: Machine | None = None


def machine() -> Machine:
    """One machine with the hot tier on (its native TLBs and fill log)."""
    global _machine
    if _machine is None:
        _machine = Machine(MachineConfig(memory_bytes=RAM, mode="native", jit="on", jit_compile="foreground",
                                         serial_sink=lambda data: None))
    return _machine


def walk(m: Machine, linear: int, privilege: int) -> int:
    mmu, jit = m.mmu, m.jit
    assert mmu.native is not None and jit is not None
    function = WALK(jit.target.walk_read)
    return function(ctypes.addressof(m.state), m.memory.host_address, RAM,
                    ctypes.addressof(mmu.native[privilege][0]), ctypes.addressof(mmu.fill_log),
                    linear, int(privilege == USER))


flag_bits = st.sampled_from([0, PTE_P, PTE_P | PTE_U, PTE_P | PTE_PS, PTE_P | PTE_U | PTE_PS, PTE_P | PTE_G,
                             PTE_P | PTE_A, PTE_P | PTE_U | PTE_A | PTE_G | PTE_PS])


@settings(max_examples=400, deadline=None)
@given(linear=st.integers(0, 0xFFFFFFFF), user=st.booleans(), table=st.sampled_from(TABLES),
       pde_bits=flag_bits, pte_bits=flag_bits, pte_frame=st.integers(0, 0xFFF),
       large_frame=st.integers(0, 0x3FF), pse=st.booleans(), pge=st.booleans(), a20=st.booleans())
def test_the_native_walk_agrees_with_the_monitors(linear: int, user: bool, table: int, pde_bits: int,
                                                  pte_bits: int, pte_frame: int, large_frame: int,
                                                  pse: bool, pge: bool, a20: bool) -> None:
    m = machine()
    mmu, slots, ram = m.mmu, m.slots, m.memory.ram
    privilege = USER if user else SUPERVISOR
    slots[Slot.CR0] |= CR0_PG
    slots[Slot.CR3] = DIRECTORY
    slots[Slot.CR4] = (CR4_PSE if pse else 0) | (CR4_PGE if pge else 0)
    slots[Slot.A20_MASK] = 0xFFFFFFFF if a20 else 0xFFEFFFFF
    ram[DIRECTORY:DIRECTORY + 0x1000] = bytes(0x1000)
    pde = (large_frame << 22 if pde_bits & PTE_PS else table) | pde_bits
    pde_address = DIRECTORY + (linear >> 22) * 4
    ram[pde_address:pde_address + 4] = pde.to_bytes(4, "little")
    pte_address = table + ((linear >> 12) & 0x3FF) * 4
    if table < RAM:
        ram[pte_address:pte_address + 4] = ((pte_frame << 12) | pte_bits).to_bytes(4, "little")
    mmu.flush()
    before = bytes(ram[:RAM])
    fills = mmu.fill_log[0]

    page = walk(m, linear, privilege)
    after_native = bytes(ram[:RAM])
    ram[:RAM] = before
    try:
        physical, _, is_global = mmu.translate(linear, False, privilege)
    except GuestFault:
        physical = None
    after_monitor = bytes(ram[:RAM])
    ram[:RAM] = before

    tlb = mmu.native[privilege][0]
    large = bool(pde & PTE_PS) and pse
    table_entry = (pde & 0xFFFFF000) + ((linear >> 12) & 0x3FF) * 4
    reads_past_ram = bool(pde & PTE_P) and not large and table_entry > RAM - 4
    if physical is None or physical >= RAM or reads_past_ram:
        assert page == TLB_INVALID, (hex(linear), hex(pde), physical)
        assert after_native == before  # nothing changed by a walk that gave up
        assert tlb[linear >> 12] == TLB_INVALID and mmu.fill_log[0] == fills
        return
    assert page == physical & ~0xFFF
    assert after_native == after_monitor  # the same accessed bits, and nothing else
    assert tlb[linear >> 12] == page
    record = mmu.fill_log[FILL_LOG_HEADER + fills]
    assert record == (linear >> 12) | (FILL_GLOBAL if is_global else 0) | (FILL_USER if user else 0)
    assert mmu.fill_log[0] == fills + 1


def test_the_walk_gives_up_without_paging_or_room_in_the_log() -> None:
    m = machine()
    mmu, slots, ram = m.mmu, m.slots, m.memory.ram
    slots[Slot.CR3] = DIRECTORY
    slots[Slot.A20_MASK] = 0xFFFFFFFF
    ram[DIRECTORY:DIRECTORY + 4] = (0x2000 | PTE_P).to_bytes(4, "little")
    ram[0x2000:0x2004] = (0x5000 | PTE_P).to_bytes(4, "little")
    mmu.flush()
    slots[Slot.CR0] &= ~CR0_PG
    assert walk(m, 0, SUPERVISOR) == TLB_INVALID
    slots[Slot.CR0] |= CR0_PG
    mmu.fill_log[0] = FILL_LOG_CAPACITY
    assert walk(m, 0, SUPERVISOR) == TLB_INVALID
    # The monitor's next miss evicts what compiled code filled, and it fills again.
    assert mmu.compiled_load_miss(0, 4, SUPERVISOR) == int.from_bytes(ram[0x5000:0x5004], "little")
    assert mmu.fill_log[0] == 0
    mmu.flush()
    assert walk(m, 0, SUPERVISOR) == 0x5000
    assert mmu.native[SUPERVISOR][0][0] == 0x5000


def test_a_flush_forgets_what_compiled_code_filled_but_global_pages_on_a_cr3_load() -> None:
    m = machine()
    mmu, slots, ram = m.mmu, m.slots, m.memory.ram
    slots[Slot.CR0] |= CR0_PG
    slots[Slot.CR3] = DIRECTORY
    slots[Slot.CR4] = CR4_PGE
    slots[Slot.A20_MASK] = 0xFFFFFFFF
    ram[DIRECTORY:DIRECTORY + 4] = (0x2000 | PTE_P).to_bytes(4, "little")
    ram[0x2000:0x2008] = (0x5000 | PTE_P | PTE_G).to_bytes(4, "little") + (0x6000 | PTE_P).to_bytes(4, "little")
    mmu.flush()
    tlb = mmu.native[SUPERVISOR][0]
    assert (walk(m, 0, SUPERVISOR), walk(m, 0x1000, SUPERVISOR)) == (0x5000, 0x6000)
    m.system.write_cr(3, DIRECTORY)
    assert (tlb[0], tlb[1]) == (0x5000, TLB_INVALID)
    mmu.flush()
    assert tlb[0] == TLB_INVALID
