"""Implementations of the helpers translated code calls, bound to a machine.

Each entry answers one ``dbt.ir.Helper`` by name.  The system operations
they perform are the shared functions in ``dbt.vmm.system``; here they are
only adapted to the helper calling convention.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dbt.backend.python import compile_function
from dbt.cpu.state import CcOp
from dbt.lift.flags import flags_function

if TYPE_CHECKING:
    from dbt.vmm.machine import Machine


@lru_cache(maxsize=1)
def flags_table() -> tuple[Callable[[int, int, int], int], ...]:
    """Index by cc_op: the function (dst, src, src2) -> arithmetic flag bits,
    compiled from the same IR formulas the lifter uses inside blocks."""
    table: list[Callable[[int, int, int], int]] = []
    valid = {op.value for op in CcOp}
    for cc_op in range(max(valid) + 1):
        if cc_op not in valid:
            table.append(lambda dst, src, src2: 0)
            continue
        block, params, result = flags_function(cc_op)
        table.append(compile_function(block, params, result, f"flags_{CcOp(cc_op).name.lower()}"))
    return tuple(table)


@lru_cache(maxsize=8)
def flag_table(name: str) -> tuple[Callable[[int, int, int], int], ...]:
    """Like ``flags_table``, for the single flag ``name``."""
    from dbt.lift.flags import flag_function

    table: list[Callable[[int, int, int], int]] = []
    valid = {op.value for op in CcOp}
    for cc_op in range(max(valid) + 1):
        if cc_op not in valid:
            table.append(lambda dst, src, src2: 0)
            continue
        block, params, result = flag_function(cc_op, name)
        table.append(compile_function(block, params, result, f"flag_{name}_{CcOp(cc_op).name.lower()}"))
    return tuple(table)


def flag_function_for(name: str) -> Callable[[int, int, int, int], int]:
    table = flag_table(name)
    size = len(table)

    def flag(cc_op: int, dst: int, src: int, src2: int) -> int:
        return table[cc_op](dst, src, src2) if cc_op < size else 0

    return flag


def flags_compute_function() -> Callable[[int, int, int, int], int]:
    table = flags_table()
    size = len(table)

    def flags_compute(cc_op: int, dst: int, src: int, src2: int) -> int:
        if cc_op >= size:
            return 0  # corrupt state from a bad restore; treat as no flags
        return table[cc_op](dst, src, src2)

    return flags_compute


def bind_helpers(machine: Machine) -> dict[str, Callable[..., Any]]:
    system = machine.system
    return {
        "flags_compute": flags_compute_function(),
        **{f"flag_{name}": flag_function_for(name) for name in ("c", "p", "a", "z", "s", "o")},
        "cpuid": system.cpuid,
        "rdtsc": system.rdtsc,
        "io_in": system.io_in,
        "io_out": system.io_out,
        **system.extra_helpers(),
    }
