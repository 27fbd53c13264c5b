"""The table from Capstone instruction ids to lifter functions."""

from __future__ import annotations

from collections.abc import Callable

from capstone import x86_const as X

from dbt.decode import Instruction
from dbt.lift.context import LiftContext

Lifter = Callable[[LiftContext, Instruction], None]

LIFTERS: dict[int, Lifter] = {}


def lifts(*mnemonics: str) -> Callable[[Lifter], Lifter]:
    """Register a lifter for Capstone mnemonics (``"ADD"`` means X86_INS_ADD)."""

    def register(function: Lifter) -> Lifter:
        for mnemonic in mnemonics:
            ins_id = getattr(X, f"X86_INS_{mnemonic.upper()}")
            if ins_id in LIFTERS:
                raise ValueError(f"two lifters for {mnemonic}")
            LIFTERS[ins_id] = function
        return function

    return register


def instruction_name(ins_id: int) -> str:
    for name in dir(X):
        if name.startswith("X86_INS_") and getattr(X, name) == ins_id:
            return name[8:].lower()
    return f"#{ins_id}"
