"""Segment descriptors: reading them from the GDT/LDT and what they mean.

A ``Descriptor`` is the decoded form of one 8-byte table entry; ``attr`` is
bits 8..23 of its high dword (type, S, DPL, P, limit 19:16, AVL, L, D/B, G),
the same layout the CPU state's segment caches hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dbt.cpu.state import Slot
from dbt.vmm.faults import GuestFault

GP, NP, SS_FAULT, TS = 13, 11, 12, 10

# System descriptor types (S = 0).
TSS16_AVAILABLE, LDT, TSS16_BUSY, CALL_GATE16, TASK_GATE = 1, 2, 3, 4, 5
INTERRUPT_GATE16, TRAP_GATE16 = 6, 7
TSS32_AVAILABLE, TSS32_BUSY, CALL_GATE32 = 9, 0xB, 0xC
INTERRUPT_GATE32, TRAP_GATE32 = 0xE, 0xF


@dataclass(frozen=True, slots=True)
class Descriptor:
    low: int
    high: int
    address: int  # linear address of the entry, for setting bits in it

    @property
    def attr(self) -> int:
        return (self.high >> 8) & 0xFFFF

    @property
    def type(self) -> int:
        return (self.high >> 8) & 0xF

    @property
    def system(self) -> bool:
        """A system descriptor (S = 0): LDT, TSS or gate."""
        return not self.high & (1 << 12)

    @property
    def dpl(self) -> int:
        return (self.high >> 13) & 3

    @property
    def present(self) -> bool:
        return bool(self.high & (1 << 15))

    @property
    def base(self) -> int:
        return ((self.low >> 16) | ((self.high & 0xFF) << 16) | (self.high & 0xFF000000)) & 0xFFFFFFFF

    @property
    def limit(self) -> int:
        raw = (self.low & 0xFFFF) | (self.high & 0xF0000)
        return ((raw << 12) | 0xFFF) if self.high & (1 << 23) else raw

    @property
    def big(self) -> bool:
        """D/B: 32-bit code, or a 32-bit stack pointer."""
        return bool(self.high & (1 << 22))

    # -- segment kinds (S = 1) ------------------------------------------------------
    @property
    def code(self) -> bool:
        return not self.system and bool(self.type & 0x8)

    @property
    def data(self) -> bool:
        return not self.system and not self.type & 0x8

    @property
    def conforming(self) -> bool:
        return self.code and bool(self.type & 0x4)

    @property
    def readable(self) -> bool:
        """Data segments always; code segments with R set."""
        return self.data or bool(self.type & 0x2)

    @property
    def writable(self) -> bool:
        return self.data and bool(self.type & 0x2)

    # -- gates -------------------------------------------------------------------------
    @property
    def gate_selector(self) -> int:
        return (self.low >> 16) & 0xFFFF

    @property
    def gate_offset(self) -> int:
        offset = self.low & 0xFFFF
        if self.type in (CALL_GATE32, INTERRUPT_GATE32, TRAP_GATE32):
            offset |= self.high & 0xFFFF0000
        return offset

    @property
    def gate_is_32(self) -> bool:
        return bool(self.type & 0x8)

    @property
    def parameter_count(self) -> int:
        return self.high & 0x1F


def selector_error(selector: int) -> int:
    """The error code a fault about ``selector`` carries (index and TI, RPL cleared)."""
    return selector & 0xFFFC


class DescriptorTables:
    """Reads descriptors through the CPU's GDTR and LDTR.

    ``read``/``write`` access linear memory with supervisor rights, as the
    processor's implicit descriptor-table accesses do.
    """

    def __init__(self, slots, read: Callable[[int, int], int], write: Callable[[int, int, int], None]) -> None:
        self.slots = slots
        self.read = read
        self.write = write

    def fetch(self, selector: int, vector: int = GP, error_code: int | None = None) -> Descriptor:
        """The descriptor for ``selector`` (not null); the given fault if the
        selector lies outside its table."""
        slots = self.slots
        index_offset = selector & 0xFFF8
        if selector & 4:  # LDT
            base, limit = slots[Slot.LDTR_BASE], slots[Slot.LDTR_LIMIT]
            if not slots[Slot.LDTR_SEL] & 0xFFFC:
                raise GuestFault(vector, selector_error(selector) if error_code is None else error_code)
        else:
            base, limit = slots[Slot.GDTR_BASE], slots[Slot.GDTR_LIMIT]
        if index_offset + 7 > limit:
            raise GuestFault(vector, selector_error(selector) if error_code is None else error_code)
        address = (base + index_offset) & 0xFFFFFFFF
        return Descriptor(self.read(address, 4), self.read(address + 4, 4), address)

    def fetch_gdt(self, selector: int, vector: int = GP) -> Descriptor:
        """A descriptor that must be in the GDT (LDT and TSS descriptors)."""
        if selector & 4:
            raise GuestFault(vector, selector_error(selector))
        return self.fetch(selector, vector)

    def set_accessed(self, descriptor: Descriptor) -> None:
        if not descriptor.system and not descriptor.high & (1 << 8):
            self.write(descriptor.address + 4, 4, descriptor.high | (1 << 8))

    def set_busy(self, descriptor: Descriptor, busy: bool) -> None:
        high = descriptor.high | (1 << 9) if busy else descriptor.high & ~(1 << 9)
        self.write(descriptor.address + 4, 4, high & 0xFFFFFFFF)
