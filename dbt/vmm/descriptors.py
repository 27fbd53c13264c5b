"""Segment descriptors: reading them from the GDT/LDT and what they mean.

A ``Descriptor`` is the decoded form of one 8-byte table entry; ``attr`` is
bits 8..23 of its high dword (type, S, DPL, P, limit 19:16, AVL, L, D/B, G),
the same layout the CPU state's segment caches hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    high: int  # as the CPU sees it: a deprivileged guest's ring-0 DPL is raised
    address: int  # linear address of the entry, for setting bits in it
    virtual_dpl: int = -1  # the DPL the guest wrote (-1: the same as the real one)

    @property
    def guest_dpl(self) -> int:
        return self.dpl if self.virtual_dpl < 0 else self.virtual_dpl

    @property
    def guest_high(self) -> int:
        """The high dword as the guest wrote it."""
        return (self.high & ~(3 << 13)) | (self.guest_dpl << 13)

    @property
    def cache_attr(self) -> int:
        """The attribute word for a segment cache: the real attributes, and
        the guest's DPL in bits 16-17 (what the virtual CPL is derived from)."""
        return self.attr | (self.guest_dpl << 16)

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
    """Reads descriptors through the CPU's GDTR and LDTR, as the privilege
    view presents them (see ``dbt.vmm.modes``).

    ``read``/``write`` access linear memory with supervisor rights, as the
    processor's implicit descriptor-table accesses do.
    """

    def __init__(self, slots, read: Callable[[int, int], int], write: Callable[[int, int, int], None],
                 view) -> None:  # type: ignore[no-untyped-def]
        self.slots = slots
        self.read = read
        self.write = write
        self.view = view

    def decode(self, low: int, high: int, address: int) -> Descriptor:
        """A guest table entry as the CPU sees it under the view."""
        dpl = (high >> 13) & 3
        conforming_code = high & (1 << 12) and (high >> 8) & 0xC == 0xC
        real = self.view.real_dpl(dpl, bool(conforming_code))
        if real == dpl:
            return Descriptor(low, high, address)
        return Descriptor(low, (high & ~(3 << 13)) | (real << 13), address, dpl)

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
            base, limit = self.view.gdt()
        if index_offset + 7 > limit:
            raise GuestFault(vector, selector_error(selector) if error_code is None else error_code)
        address = (base + index_offset) & 0xFFFFFFFF
        return self.decode(self.read(address, 4), self.read(address + 4, 4), address)

    def fetch_gdt(self, selector: int, vector: int = GP) -> Descriptor:
        """A descriptor that must be in the GDT (LDT and TSS descriptors)."""
        if selector & 4:
            raise GuestFault(vector, selector_error(selector))
        return self.fetch(selector, vector)

    def set_accessed(self, descriptor: Descriptor) -> None:
        high = descriptor.guest_high
        if not descriptor.system and not high & (1 << 8):
            self.write(descriptor.address + 4, 4, high | (1 << 8))

    def set_busy(self, descriptor: Descriptor, busy: bool) -> None:
        high = descriptor.guest_high
        high = high | (1 << 9) if busy else high & ~(1 << 9)
        self.write(descriptor.address + 4, 4, high & 0xFFFFFFFF)
