"""Linear to physical translation: 32-bit two-level paging with a software TLB.

The TLB is what makes a guest memory access cheap in the cold tier: one
list per privilege class (supervisor, user) and access kind (read, write),
indexed by linear page number, holding the RAM offset of the page or -1.
The accessor closures (``loads``/``stores``) try the TLB and fall back to
``slow_load``/``slow_store``, which walk the page tables, check protection,
set accessed and dirty bits, fill the TLB, and handle MMIO, page-crossing
accesses and stores to pages that hold translated code.

Compiled code reads native copies of these lists, and fills read entries
of its own after a page walk in native code; those it logs (``fill_log``)
and only the native copies hold them.

Invariants: a write entry exists only for a RAM page that is writable at
that privilege, whose dirty bit is set, and that holds no translated code.
Every entry, the logged ones too, is forgotten by ``flush`` (CR3 loads keep
global pages).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

from dbt.cpu.state import CR0_PG, CR0_WP, CR4_PGE, CR4_PSE, Slot
from dbt.memory.physical import PAGE_SHIFT, PAGE_SIZE, PhysicalMemory
from dbt.vmm.faults import CodeWrite, GuestFault, MmioAccess

PAGE_COUNT = 1 << 20
PF = 14

PTE_P = 1 << 0
PTE_W = 1 << 1
PTE_U = 1 << 2
PTE_A = 1 << 5
PTE_D = 1 << 6
PTE_PS = 1 << 7
PTE_G = 1 << 8

# #PF error code bits.
ERR_PRESENT = 1 << 0
ERR_WRITE = 1 << 1
ERR_USER = 1 << 2

SUPERVISOR, USER = 0, 1

# The native TLB arrays hold a page's offset in RAM, or TLB_INVALID.
TLB_INVALID = 0xFFFFFFFF
# The log of the read-TLB fills compiled code makes (``Mmu.fill_log``).
FILL_LOG_CAPACITY = 4096  # fills between two flushes; past that, misses go to the monitor
FILL_LOG_HEADER = 2  # [0]: fills since the last flush, [1]: all fills made
FILL_GLOBAL = 1 << 20  # record bits above the linear page number
FILL_USER = 1 << 21


class Mmu:
    def __init__(self, memory: PhysicalMemory, slots: Any) -> None:
        self.memory = memory
        self.slots = slots
        self.read_tlb = ([-1] * PAGE_COUNT, [-1] * PAGE_COUNT)
        self.write_tlb = ([-1] * PAGE_COUNT, [-1] * PAGE_COUNT)
        # (tlb list, linear page, global) for every filled entry, to flush fast.
        self._filled: list[tuple[list[int], int, bool]] = []
        # physical page -> linear pages with write entries, to drop them when
        # the page starts holding code.
        self._writers: dict[int, set[tuple[int, int]]] = {}
        # Set while re-executing one instruction whose store changes code.
        self.allow_code_writes = False
        # Set while an instruction runs alone, at an exact time, so that its
        # device accesses may happen (see MmioAccess).
        self.mmio_exact = False
        self.tlb_misses = 0
        self.tlb_flushes = 0
        # Native copies of the TLB lists for compiled code (enable_native_tlb):
        # [privilege] -> (read, write) arrays of uint32, TLB_INVALID when empty.
        self.native: list[tuple[Any, Any]] | None = None
        # The read-TLB entries compiled code filled itself (after its own page
        # walk): [0] how many since the last flush, [1] how many ever, then a
        # record each (linear page, FILL_GLOBAL, FILL_USER).  Only the native
        # arrays hold these entries; ``flush`` empties them from here.
        self.fill_log: Any = None
        self.loads = (self._accessors(SUPERVISOR)[0], self._accessors(USER)[0])
        self.stores = (self._accessors(SUPERVISOR)[1], self._accessors(USER)[1])

    # -- translation ------------------------------------------------------------------
    def translate(self, linear: int, write: bool, privilege: int) -> tuple[int, bool, bool]:
        """(physical address, may fill a write entry, global) for an access,
        or #PF.  Sets accessed and dirty bits as the processor does."""
        slots = self.slots
        cr0 = slots[Slot.CR0]
        if not cr0 & CR0_PG:
            return linear & slots[Slot.A20_MASK], True, False
        cr4 = slots[Slot.CR4]
        memory = self.memory
        user = privilege == USER
        fault_bits = (ERR_WRITE if write else 0) | (ERR_USER if user else 0)
        pde_address = (slots[Slot.CR3] & 0xFFFFF000) | ((linear >> 22) << 2)
        pde = memory.read(pde_address, 4)
        if not pde & PTE_P:
            raise self._page_fault(linear, fault_bits)
        if pde & PTE_PS and cr4 & CR4_PSE:
            entry_address, entry, rights = pde_address, pde, pde
            physical = (pde & 0xFFC00000) | (linear & 0x3FFFFF)
            table_entry = None
        else:
            pte_address = (pde & 0xFFFFF000) | (((linear >> 12) & 0x3FF) << 2)
            pte = memory.read(pte_address, 4)
            if not pte & PTE_P:
                raise self._page_fault(linear, fault_bits)
            entry_address, entry = pte_address, pte
            rights = pde & pte
            physical = (pte & 0xFFFFF000) | (linear & 0xFFF)
            table_entry = pde
        writable = bool(rights & PTE_W)
        if user and not rights & PTE_U:
            raise self._page_fault(linear, fault_bits | ERR_PRESENT)
        if write and not writable and (user or cr0 & CR0_WP):
            raise self._page_fault(linear, fault_bits | ERR_PRESENT)
        if table_entry is not None and not table_entry & PTE_A:
            memory.write(pde_address, 4, table_entry | PTE_A)
        updated = entry | PTE_A | (PTE_D if write else 0)
        if updated != entry:
            memory.write(entry_address, 4, updated)
        may_write = (writable or not (user or cr0 & CR0_WP)) and bool(updated & PTE_D)
        is_global = bool(entry & PTE_G) and bool(cr4 & CR4_PGE)
        return physical & slots[Slot.A20_MASK], may_write, is_global

    def _page_fault(self, linear: int, error_code: int) -> GuestFault:
        return GuestFault(PF, error_code, cr2=linear)

    def privilege(self) -> int:
        """User for the guest's ring 3 (its virtual CPL: a kernel deprivileged
        to CPL 3 keeps supervisor access, as shadow page tables give it)."""
        return USER if self.slots[Slot.VCPL] == 3 else SUPERVISOR

    # -- the slow path ------------------------------------------------------------------
    def compiled_load_miss(self, linear: int, size_bytes: int, privilege: int) -> int:
        """``slow_load`` for a load in compiled code that its own page walk
        left to the monitor.  A full fill log is one reason: its entries are
        evicted (a TLB may forget any entry at any time) so that compiled
        code fills again."""
        if self.fill_log is not None and self.fill_log[0] >= FILL_LOG_CAPACITY:
            self._forget_native_fills(keep_global=False)
        return self.slow_load(linear, size_bytes, privilege)

    def slow_load(self, linear: int, size_bytes: int, privilege: int) -> int:
        self.tlb_misses += 1
        linear &= 0xFFFFFFFF
        if (linear & (PAGE_SIZE - 1)) + size_bytes > PAGE_SIZE:
            return self._split_load(linear, size_bytes, privilege)
        physical, _, is_global = self.translate(linear, False, privilege)
        memory = self.memory
        page = physical >> PAGE_SHIFT
        if memory.is_ram(physical, size_bytes):
            self._fill(self.read_tlb[privilege], linear >> PAGE_SHIFT, page << PAGE_SHIFT, is_global)
        elif not self.mmio_exact:
            raise MmioAccess()
        return memory.read(physical, size_bytes)

    def _split_load(self, linear: int, size_bytes: int, privilege: int) -> int:
        value = 0
        for i in range(size_bytes):
            value |= self.slow_load((linear + i) & 0xFFFFFFFF, 1, privilege) << (8 * i)
        return value

    def slow_store(self, linear: int, size_bytes: int, value: int, privilege: int) -> None:
        self.tlb_misses += 1
        linear &= 0xFFFFFFFF
        first_page_bytes = PAGE_SIZE - (linear & (PAGE_SIZE - 1))
        if first_page_bytes < size_bytes:
            # Translate both pages (either may fault) before writing anything.
            low, _, _ = self.translate(linear, True, privilege)
            high_linear = (linear + first_page_bytes) & 0xFFFFFFFF
            high, _, _ = self.translate(high_linear, True, privilege)
            low_value = value & ((1 << (8 * first_page_bytes)) - 1)
            high_value = value >> (8 * first_page_bytes)
            self._store_physical(low, first_page_bytes, low_value)
            self._store_physical(high, size_bytes - first_page_bytes, high_value)
            return
        physical, may_write, is_global = self.translate(linear, True, privilege)
        self._store_physical(physical, size_bytes, value)
        memory = self.memory
        page = physical >> PAGE_SHIFT
        if memory.is_ram(physical, size_bytes):
            self._fill(self.read_tlb[privilege], linear >> PAGE_SHIFT, page << PAGE_SHIFT, is_global)
            if may_write and not memory.code_pages[page]:
                self._fill(self.write_tlb[privilege], linear >> PAGE_SHIFT, page << PAGE_SHIFT, is_global)
                self._writers.setdefault(page, set()).add((privilege, linear >> PAGE_SHIFT))

    def _store_physical(self, physical: int, size_bytes: int, value: int) -> None:
        memory = self.memory
        if not memory.is_ram(physical, size_bytes) and not self.mmio_exact:
            raise MmioAccess()
        if memory.is_ram(physical, size_bytes) and memory.code_pages[physical >> PAGE_SHIFT]:
            if memory.touches_code(physical, size_bytes):
                if not self.allow_code_writes:
                    raise CodeWrite(physical, size_bytes)
                memory.code_invalidate(physical, size_bytes)
        memory.write(physical, size_bytes, value)

    # -- TLB maintenance ---------------------------------------------------------------
    def enable_native_tlb(self) -> list[tuple[Any, Any]]:
        """Keep native uint32 copies of the TLBs from now on (for JIT code)."""
        if self.native is None:
            native = []
            for privilege in (SUPERVISOR, USER):
                pair = []
                for tlb in (self.read_tlb[privilege], self.write_tlb[privilege]):
                    array = self.memory.table(ctypes.c_uint32, PAGE_COUNT)
                    ctypes.memset(array, 0xFF, ctypes.sizeof(array))
                    for filled, page, _ in self._filled:
                        if filled is tlb and tlb[page] >= 0:
                            array[page] = tlb[page]
                    pair.append(array)
                native.append((pair[0], pair[1]))
            self.native = native
            self.fill_log = self.memory.table(ctypes.c_uint32, FILL_LOG_HEADER + FILL_LOG_CAPACITY)
            self._mirror = {id(self.read_tlb[p]): native[p][0] for p in (SUPERVISOR, USER)}
            self._mirror.update({id(self.write_tlb[p]): native[p][1] for p in (SUPERVISOR, USER)})
        return self.native

    def _set(self, tlb: list[int], page: int, offset: int) -> None:
        tlb[page] = offset
        if self.native is not None:
            self._mirror[id(tlb)][page] = offset & 0xFFFFFFFF

    def _fill(self, tlb: list[int], linear_page: int, host_offset: int, is_global: bool) -> None:
        if tlb[linear_page] != host_offset:
            self._set(tlb, linear_page, host_offset)
            self._filled.append((tlb, linear_page, is_global))
            if len(self._filled) > 4 * PAGE_COUNT // 16:
                # INVLPG and refills leave stale records behind; keep the live ones.
                live = {(id(t), p): (t, p, g) for t, p, g in self._filled if t[p] != -1}
                self._filled = list(live.values())

    def flush(self, keep_global: bool = False) -> None:
        """Forget translations (all, or all but global pages: a CR3 load)."""
        self.tlb_flushes += 1
        kept: list[tuple[list[int], int, bool]] = []
        for tlb, page, is_global in self._filled:
            if keep_global and is_global:
                kept.append((tlb, page, is_global))
            else:
                self._set(tlb, page, -1)
        self._filled = kept
        if not keep_global:
            self._writers.clear()
        if self.fill_log is not None:
            self._forget_native_fills(keep_global)

    def _forget_native_fills(self, keep_global: bool) -> None:
        """Empty the read-TLB entries compiled code filled (all, or all but
        global pages)."""
        log, native = self.fill_log, self.native
        assert native is not None
        if not log[0]:
            return
        kept: dict[int, None] = {}
        for record in log[FILL_LOG_HEADER:FILL_LOG_HEADER + log[0]]:
            if keep_global and record & FILL_GLOBAL:
                kept[record] = None
            else:
                native[USER if record & FILL_USER else SUPERVISOR][0][record & 0xFFFFF] = TLB_INVALID
        for index, record in enumerate(kept, FILL_LOG_HEADER):
            log[index] = record
        log[0] = len(kept)

    @property
    def native_fills(self) -> int:
        """TLB misses compiled code served with its own page walk."""
        return self.fill_log[1] if self.fill_log is not None else 0

    def flush_page(self, linear: int) -> None:
        """INVLPG: forget one page's translations, global or not."""
        page = (linear & 0xFFFFFFFF) >> PAGE_SHIFT
        for tlb in (*self.read_tlb, *self.write_tlb):
            self._set(tlb, page, -1)

    def protect_code_page(self, physical_page: int) -> None:
        """The page now holds translated code: stores must take the slow path."""
        for privilege, linear_page in self._writers.pop(physical_page, ()):
            self._set(self.write_tlb[privilege], linear_page, -1)

    # -- accessors for translated code ---------------------------------------------------
    def _accessors(self, privilege: int) -> tuple[dict[int, Callable], dict[int, Callable]]:
        read_tlb = self.read_tlb[privilege]
        write_tlb = self.write_tlb[privilege]
        ram = self.memory.ram
        unpack16 = struct.Struct("<H").unpack_from
        unpack32 = struct.Struct("<I").unpack_from
        pack16 = struct.Struct("<H").pack_into
        pack32 = struct.Struct("<I").pack_into
        slow_load = self.slow_load
        slow_store = self.slow_store

        def ld8(a: int) -> int:
            p = read_tlb[a >> 12]
            if p >= 0:
                return ram[p + (a & 0xFFF)]
            return slow_load(a, 1, privilege)

        def ld16(a: int) -> int:
            p = read_tlb[a >> 12]
            if p >= 0 and a & 0xFFF != 0xFFF:
                return unpack16(ram, p + (a & 0xFFF))[0]
            return slow_load(a, 2, privilege)

        def ld32(a: int) -> int:
            p = read_tlb[a >> 12]
            if p >= 0 and a & 0xFFF <= 0xFFC:
                return unpack32(ram, p + (a & 0xFFF))[0]
            return slow_load(a, 4, privilege)

        def st8(a: int, v: int) -> None:
            p = write_tlb[a >> 12]
            if p >= 0:
                ram[p + (a & 0xFFF)] = v
            else:
                slow_store(a, 1, v, privilege)

        def st16(a: int, v: int) -> None:
            p = write_tlb[a >> 12]
            if p >= 0 and a & 0xFFF != 0xFFF:
                pack16(ram, p + (a & 0xFFF), v)
            else:
                slow_store(a, 2, v, privilege)

        def st32(a: int, v: int) -> None:
            p = write_tlb[a >> 12]
            if p >= 0 and a & 0xFFF <= 0xFFC:
                pack32(ram, p + (a & 0xFFF), v)
            else:
                slow_store(a, 4, v, privilege)

        return {8: ld8, 16: ld16, 32: ld32}, {8: st8, 16: st16, 32: st32}

    # -- monitor-side access ------------------------------------------------------------------
    def read(self, linear: int, size_bytes: int, privilege: int = SUPERVISOR) -> int:
        """A load by the monitor on the guest's behalf (a descriptor, say)."""
        exact, self.mmio_exact = self.mmio_exact, True
        try:
            return self.loads[privilege][size_bytes * 8](linear & 0xFFFFFFFF)
        finally:
            self.mmio_exact = exact

    def write(self, linear: int, size_bytes: int, value: int, privilege: int = SUPERVISOR) -> None:
        """A store by the monitor on the guest's behalf (an exception frame,
        say): translations it overwrites are dropped at once."""
        allowed, self.allow_code_writes = self.allow_code_writes, True
        exact, self.mmio_exact = self.mmio_exact, True
        try:
            self.stores[privilege][size_bytes * 8](linear & 0xFFFFFFFF, value)
        finally:
            self.allow_code_writes = allowed
            self.mmio_exact = exact

    def fetch(self, linear: int, count: int, privilege: int) -> tuple[bytes, GuestFault | None]:
        """Up to ``count`` code bytes at ``linear``; stops at a page that cannot
        be read and returns the fault reading it would raise."""
        data = bytearray()
        address = linear & 0xFFFFFFFF
        while len(data) < count:
            try:
                physical, _, _ = self.translate(address, False, privilege)
            except GuestFault as fault:
                return bytes(data), fault
            take = min(count - len(data), PAGE_SIZE - (address & (PAGE_SIZE - 1)))
            data += self.memory.read_bytes(physical, take)
            address = (address + take) & 0xFFFFFFFF
        return bytes(data), None

    def code_physical(self, linear: int, privilege: int) -> int:
        """The physical address of code at ``linear`` (for the cache key)."""
        return self.translate(linear & 0xFFFFFFFF, False, privilege)[0]
