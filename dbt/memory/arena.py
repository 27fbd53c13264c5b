"""Host memory at a fixed address: guest RAM and the tables compiled code reads.

Compiled code names guest RAM, the native TLBs, the translated-code page
map and the execution counters by their host addresses, as constants: LLVM
then reaches all of them from one base register (naming them by symbols
for a loader to bind made the compute guest's code 8% slower with paging
on; loading the base from the state struct, 12%).  For such code to serve
again in a later run (the code cache, ``dbt.backend.codecache``), those
addresses must be the same there.  So a machine's RAM and its tables live
in one mapping, which, for a machine with a code cache, is placed at a
fixed address: the first such machine of a process gets the first place,
the second the next, and so on.  If a place is taken (another mapping is
there), the next is tried, and past the last the kernel picks the address:
everything still works, the code cache just finds nothing from other runs.
Without a code cache the kernel picks it (randomized, as the host's other
memory): a fixed address for memory the guest fills is only worth having
when it buys something.

The mapping is anonymous memory: zero, and backed only where touched.
Views into it keep it alive; it is unmapped when the last one goes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import weakref
from typing import Any

BASE = 0x2000_0000_0000  # 32 TiB: far from where the kernel puts heaps, libraries and stacks
STRIDE = 1 << 36  # 64 GiB a place: 3 GiB of RAM at most, and the tables
PLACES = 64
MAP_FIXED_NOREPLACE = 0x100000  # Linux 4.17

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_FAILED = ctypes.c_void_p(-1).value

_taken: set[int] = set()  # places held by live arenas of this process


class Arena:
    """One machine's mapping: ``size`` bytes at ``address``, handed out in
    order by ``take`` (so the same machine gets the same addresses)."""

    def __init__(self, size: int, fixed: bool = False) -> None:
        self.size = (size + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        self.place, self.address = _map(self.size, fixed)
        self._next = 0
        # The memory itself, as one ctypes object every view refers to.
        self._memory = (ctypes.c_char * self.size).from_address(self.address)
        weakref.finalize(self._memory, _unmap, self.address, self.size, self.place)

    @property
    def fixed(self) -> bool:
        """Placed at its fixed address (False: the kernel chose it)."""
        return self.place is not None

    def take(self, size: int, align: int = 64) -> int:
        """The offset of ``size`` more bytes of the arena."""
        offset = (self._next + align - 1) & ~(align - 1)
        if offset + size > self.size:
            raise MemoryError(f"the arena's {self.size} bytes are spent ({size} more asked for)")
        self._next = offset + size
        return offset

    def bytes_view(self, offset: int, size: int) -> memoryview:
        """A writable byte view of [offset, offset + size)."""
        return memoryview(self._memory).cast("B")[offset:offset + size]

    def array(self, element: Any, count: int, offset: int) -> Any:
        """A ctypes array of ``count`` ``element``s at ``offset``."""
        return (element * count).from_buffer(self._memory, offset)


def _map(size: int, fixed: bool) -> tuple[int | None, int]:
    protection = mmap.PROT_READ | mmap.PROT_WRITE
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    if fixed and size <= STRIDE:
        for place in range(PLACES):
            if place in _taken:
                continue
            hint = BASE + place * STRIDE
            address = _libc.mmap(hint, size, protection, flags | MAP_FIXED_NOREPLACE, -1, 0)
            if address == hint:
                _taken.add(place)
                return place, address
            if address not in (None, _FAILED):
                _libc.munmap(address, size)  # a kernel without MAP_FIXED_NOREPLACE put it elsewhere
    address = _libc.mmap(None, size, protection, flags, -1, 0)
    if address in (None, _FAILED):
        raise MemoryError(f"cannot map {size} bytes for guest memory (errno {ctypes.get_errno()})")
    return None, address


def _unmap(address: int, size: int, place: int | None) -> None:
    _libc.munmap(address, size)
    if place is not None:
        _taken.discard(place)
