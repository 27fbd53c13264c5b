"""Guest exceptions as they travel through the monitor.

A ``GuestFault`` is raised by translated code, helpers and the MMU when the
guest does something the architecture answers with an exception.  It is
guest-visible behaviour, never a monitor error.
"""

from __future__ import annotations

from typing import Any

from dbt.ir import FAULT, SOFTWARE, TRAP

VECTOR_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound range", 6: "#UD invalid opcode", 7: "#NM device not available",
    8: "#DF double fault", 10: "#TS invalid TSS", 11: "#NP segment not present",
    12: "#SS stack fault", 13: "#GP general protection", 14: "#PF page fault",
    16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check",
}

VECTOR_SHORT = {0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM",
                8: "#DF", 10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF",
                17: "#AC", 18: "#MC"}

# Vectors that push an error code when delivered.
ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17})


class BlockInterrupted(Exception):
    """Something stopped a block between two of its instructions.

    The block's handler calls ``locate`` before re-raising: it restores the
    registers changed by the instructions before the interrupting one into
    the state struct and notes that instruction's index."""

    insn_index: int | None = None

    def locate(self, slots: Any, local_values: dict[str, int], lines: dict) -> None:
        tb = self.__traceback__
        assert tb is not None
        index, dirty = lines[tb.tb_lineno]
        for slot, name in dirty:
            slots[slot] = local_values[name]
        self.insn_index = index


class GuestFault(BlockInterrupted):
    """An exception for the guest: vector, error code and how EIP is reported.

    ``insn_index`` is filled in by the block that the fault left: the index
    of the instruction that raised it, whose effects did not happen (for a
    FAULT) or did (TRAP, SOFTWARE).
    """

    def __init__(self, vector: int, error_code: int | None = None, flavor: int = FAULT,
                 cr2: int | None = None) -> None:
        super().__init__(vector)
        self.vector = vector
        self.error_code = error_code
        self.flavor = flavor
        self.cr2 = cr2
        self.insn_index: int | None = None

    @property
    def is_trap(self) -> bool:
        return self.flavor in (TRAP, SOFTWARE)

    @property
    def is_software(self) -> bool:
        return self.flavor == SOFTWARE

    def describe(self) -> str:
        name = VECTOR_NAMES.get(self.vector, f"vector {self.vector}")
        text = name
        if self.error_code is not None:
            text += f" (error code {self.error_code:#x})"
        if self.cr2 is not None:
            text += f" at linear address {self.cr2:#010x}"
        return text


class CodeWrite(BlockInterrupted):
    """A store is about to change bytes of translated code.

    Raised before the store, like a fault, so the instruction can be
    re-executed on its own once the stale translations are gone."""

    def __init__(self, physical_address: int, size_bytes: int) -> None:
        super().__init__(physical_address)
        self.physical_address = physical_address
        self.size_bytes = size_bytes


class MmioAccess(BlockInterrupted):
    """A load or store is about to reach a device's registers.

    Raised before the access so the instruction can be re-executed alone,
    at an exact instruction count: devices then see the same virtual time
    whatever the block structure around the access."""
