"""The translator loop: decode and lift instructions until the block ends.

A block ends after a control transfer or an instruction that must return to
the monitor (the lifter says so), at a page boundary (so that a block's code
lies on one page, except for a last instruction that straddles into the
next), or at the instruction limit of the translation environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from dbt.decode import Decoder, Instruction
from dbt.ir import Block, Builder, Const, eliminate_dead_code
from dbt.lift import (  # noqa: F401  (importing a family registers its lifters)
    arith,
    bits,
    control,
    data,
    misc,
    segments,
    shift,
    stack,
    string,
    system,
)
from dbt.lift.context import UD, LiftContext, Unsupported
from dbt.lift.env import TranslationEnv
from dbt.lift.registry import LIFTERS

PAGE_SIZE = 4096

# Instructions that accept a LOCK prefix (with a memory destination).
LOCKABLE = frozenset({"add", "adc", "and", "btc", "btr", "bts", "cmpxchg", "cmpxchg8b", "dec",
                      "inc", "neg", "not", "or", "sbb", "sub", "xor", "xadd", "xchg"})

# A fetch returns the code bytes at a guest address (up to 15) and, when it
# had to stop early, the exception that reading one byte further would raise.
Fetch = Callable[[int], tuple[bytes, Exception | None]]

# Lifter bugs become #UD in the guest (the monitor must survive them); tests
# set DBT_STRICT_LIFT=1 to see them as Python exceptions instead.
STRICT = os.environ.get("DBT_STRICT_LIFT") == "1"


@dataclass
class LiftedBlock:
    ir: Block
    instructions: list[Instruction]
    end_address: int  # of the last byte of the last instruction
    errors: list[str]  # lifter failures turned into #UD (see STRICT)
    rules_fired: list[tuple[int, str, str]]  # (address, rule, operation) the rewriter applied


def lift_block(address: int, env: TranslationEnv, fetch: Fetch, decoder: Decoder,
               rewrite: Callable[[LiftContext, Instruction], bool] | None = None,
               code_frame: Callable[[], int] | None = None) -> LiftedBlock:
    """Translate the block at guest address ``address`` into IR.

    ``rewrite``, when given, may claim an instruction first (the binary
    translator's rules); it returns True if it emitted the instruction's IR.
    ``code_frame``, when given, says which physical page the first
    instruction came from (asked only after it was fetched).
    Raises the fetch's exception if the first instruction cannot be fetched.
    """
    ir = Block(address)
    builder = Builder(ir)
    ctx = LiftContext(builder, env, code_frame)
    instructions: list[Instruction] = []
    pc = address
    first_page = address // PAGE_SIZE
    end_address = address
    for index in range(env.max_insns):
        code, fetch_fault = fetch(pc)
        insn = decoder.decode(code, pc, env.code_bits) if code else None
        if insn is None and fetch_fault is not None:
            if index == 0:
                raise fetch_fault
            break  # the next block will take the fault at its own address
        ctx.begin(insn, index, pc)
        if insn is None:
            builder.raise_(UD)
            ctx.end_block()
        else:
            instructions.append(insn)
            _lift_one(ctx, insn, rewrite)
            end_address = pc + insn.size - 1
        ctx.commit()
        ir.insn_count = index + 1
        if ctx.ended:
            break
        pc = insn.next_address  # type: ignore[union-attr]
        if pc // PAGE_SIZE != first_page:
            break
    if not ctx.ended and ctx.shadow is not None:  # the shadowed instruction is in the next block
        builder.exit_indirect(Const(pc, 32), ctx.shadow)
    elif not ctx.ended:
        builder.exit(pc)
    eliminate_dead_code(ir)
    ir.size_bytes = (end_address - address + 1) & 0xFFFFFFFF
    return LiftedBlock(ir, instructions, end_address, ctx.lift_errors, ctx.rules_fired)


def _lift_one(ctx: LiftContext, insn: Instruction,
              rewrite: Callable[[LiftContext, Instruction], bool] | None) -> None:
    mark = ctx.snapshot()
    try:
        if insn.lock and not _lock_allowed(insn):
            raise Unsupported("LOCK prefix on an instruction that cannot be locked")
        if rewrite is not None and rewrite(ctx, insn):
            return
        if 0xD8 <= insn.opcode[0] <= 0xDF:
            misc.x87(ctx, insn)
            return
        lifter = LIFTERS.get(insn.id)
        if lifter is None:
            raise Unsupported(f"no lifter for {insn.mnemonic}")
        lifter(ctx, insn)
    except Unsupported:
        ctx.restore(mark)
        ctx.b.raise_(UD)
        ctx.end_block()
    except Exception:
        if STRICT:
            raise
        ctx.restore(mark)
        ctx.b.raise_(UD)
        ctx.end_block()
        ctx.lift_errors.append(insn.text)


def _lock_allowed(insn: Instruction) -> bool:
    from dbt.decode import OperandKind

    return (
        insn.mnemonic in LOCKABLE
        and bool(insn.operands)
        and insn.operands[0].kind is OperandKind.MEM
    )

