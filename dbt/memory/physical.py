"""Guest physical memory: one contiguous RAM buffer, and the bus above it.

RAM occupies physical addresses [0, size).  Any other physical address
belongs to the MMIO bus (a device, or nothing: reads give all ones).  The
buffer is a writable byte view of the machine's arena (``dbt.memory.arena``),
never moved; with ``fixed_address`` (a machine with a code cache) it lies
at a fixed host address, so compiled code, which names it by a constant,
means the same in another run.  The arena also holds the
map of pages with translated code and, after them, the native tables the
hot tier's code reads (``table``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from dbt.devices.bus import Bus
from dbt.memory.arena import Arena

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
# Room in the arena for the hot tier's tables: four native TLBs of 4 MiB,
# the fill log and the execution counters (512 KiB).
TABLES_BYTES = 20 << 20


class PhysicalMemory:
    def __init__(self, size_bytes: int, bus: Bus, fixed_address: bool = False) -> None:
        if size_bytes <= 0 or size_bytes % PAGE_SIZE:
            raise ValueError("guest memory must be a positive multiple of 4 KiB")
        if size_bytes > 3 << 30:
            raise ValueError("guest memory above 3 GiB would overlap the MMIO hole")
        self.size_bytes = size_bytes
        self.page_count = size_bytes >> PAGE_SHIFT
        self.arena = Arena(size_bytes + self.page_count + TABLES_BYTES + 2 * PAGE_SIZE, fixed_address)
        self.ram = self.arena.bytes_view(self.arena.take(size_bytes, PAGE_SIZE), size_bytes)
        self.bus = bus
        # Nonzero for pages that hold translated code; a store to such a page
        # asks ``code_write`` whether it changed translated bytes.
        self.code_pages_offset = self.arena.take(self.page_count)
        self.code_pages = self.arena.bytes_view(self.code_pages_offset, self.page_count)
        self.code_write: Callable[[int, int], bool] = lambda address, size: False
        # Drops the translations that overlap a range (the cache installs it).
        self.code_invalidate: Callable[[int, int], None] = lambda address, size: None

    @property
    def host_address(self) -> int:
        """Where RAM starts in the monitor's address space (for JIT code)."""
        return self.arena.address

    @property
    def code_pages_address(self) -> int:
        return self.arena.address + self.code_pages_offset

    def table(self, element: Any, count: int) -> Any:
        """A new zeroed ctypes array of ``count`` ``element``s in the arena,
        for the hot tier (the same machine gets the same addresses)."""
        return self.arena.array(element, count, self.arena.take(count * ctypes.sizeof(element)))

    def is_ram(self, address: int, size_bytes: int = 1) -> bool:
        return 0 <= address and address + size_bytes <= self.size_bytes

    def read(self, address: int, size_bytes: int) -> int:
        if address + size_bytes <= self.size_bytes:
            return int.from_bytes(self.ram[address:address + size_bytes], "little")
        if address >= self.size_bytes:
            return self.bus.mmio_read(address, size_bytes)
        return int.from_bytes(bytes(self.read(address + i, 1) for i in range(size_bytes)), "little")

    def write(self, address: int, size_bytes: int, value: int) -> None:
        """Store ``value``; the caller has checked translated code (``touches_code``)."""
        if address + size_bytes <= self.size_bytes:
            self.ram[address:address + size_bytes] = value.to_bytes(size_bytes, "little")
        elif address >= self.size_bytes:
            self.bus.mmio_write(address, size_bytes, value)
        else:
            for i in range(size_bytes):
                self.write(address + i, 1, (value >> (8 * i)) & 0xFF)

    def touches_code(self, address: int, size_bytes: int) -> bool:
        """Whether a store here would change bytes of a translated block."""
        first = address >> PAGE_SHIFT
        last = (address + size_bytes - 1) >> PAGE_SHIFT
        for page in range(first, min(last, self.page_count - 1) + 1):
            if self.code_pages[page] and self.code_write(address, size_bytes):
                return True
        return False

    def load_image(self, address: int, data: bytes) -> None:
        """Place boot-time data in RAM (the loader's path; no code tracking)."""
        if not self.is_ram(address, len(data)):
            raise ValueError(
                f"{len(data)} bytes at {address:#x} do not fit in {self.size_bytes >> 20} MiB of RAM"
            )
        self.ram[address:address + len(data)] = data

    def read_bytes(self, address: int, count: int) -> bytes:
        if self.is_ram(address, count):
            return bytes(self.ram[address:address + count])
        return bytes(self.read(address + i, 1) for i in range(count))
