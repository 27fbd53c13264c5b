"""Near control flow: JMP, Jcc, JCXZ/JECXZ, LOOP/LOOPE/LOOPNE, CALL, RET.

A control transfer ends the block.  Direct targets become ``EXIT``/``EXIT_IF``
(links the translation cache can chain); computed ones ``EXIT_INDIRECT``.
"""

from __future__ import annotations

from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Value
from dbt.lift import flags, segments
from dbt.lift.context import LiftContext
from dbt.lift.data import condition_code
from dbt.lift.registry import lifts


def _direct(ctx: LiftContext, insn: Instruction) -> int | None:
    """The constant target of a relative branch, or None for an indirect one."""
    (op,) = insn.operands
    if op.kind is not OperandKind.IMM:
        return None
    target = ctx.direct_target(op.imm)
    if not ctx.env.flat:
        ctx.branch_target(Const(target, 32))  # CS limit check
    return target


def _indirect(ctx: LiftContext, insn: Instruction) -> Value:
    (op,) = insn.operands
    return ctx.branch_target(ctx.b.zext(ctx.value(op), 32))


def jump_to(ctx: LiftContext, target: int | Value) -> None:
    """Commit the instruction and leave the block for ``target``."""
    ctx.commit()
    if isinstance(target, int):
        ctx.b.exit(target)
    else:
        ctx.b.exit_indirect(target)
    ctx.end_block()


def branch_if(ctx: LiftContext, insn: Instruction, taken: Value) -> None:
    target = _direct(ctx, insn)
    assert target is not None
    ctx.commit()
    ctx.b.exit_if(taken, target)
    ctx.b.exit(insn.next_address)
    ctx.end_block()


@lifts("JMP")
def jmp(ctx: LiftContext, insn: Instruction) -> None:
    if segments.is_far_indirect(insn):  # FF /5: JMP m16:32, which Capstone calls jmp
        segments.far_jump(ctx, insn)
        return
    target = _direct(ctx, insn)
    jump_to(ctx, target if target is not None else _indirect(ctx, insn))


@lifts(*(f"J{c.upper()}" for c in flags.CONDITIONS))
def jcc(ctx: LiftContext, insn: Instruction) -> None:
    branch_if(ctx, insn, flags.condition(ctx, condition_code(insn.mnemonic, "j")))


@lifts("JCXZ", "JECXZ")
def jcxz(ctx: LiftContext, insn: Instruction) -> None:
    count = ctx.read_reg(ctx.counter_reg())
    branch_if(ctx, insn, ctx.b.eq(count, Const(0, count.width)))


@lifts("LOOP", "LOOPE", "LOOPNE")
def loop(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    counter = ctx.counter_reg()
    count = b.sub(ctx.read_reg(counter), Const(1, ctx.address_bits))
    ctx.write_reg(counter, count)
    taken = b.ne(count, Const(0, count.width))
    if insn.mnemonic == "loope":
        taken = b.and_(taken, flags.flag(ctx, "z"))
    elif insn.mnemonic == "loopne":
        taken = b.and_(taken, b.xor(flags.flag(ctx, "z"), Const(1, 1)))
    branch_if(ctx, insn, taken)


@lifts("CALL")
def call(ctx: LiftContext, insn: Instruction) -> None:
    if segments.is_far_indirect(insn):  # FF /3: CALL m16:32, which Capstone calls call
        segments.far_call(ctx, insn)
        return
    target = _direct(ctx, insn)
    destination: int | Value = target if target is not None else _indirect(ctx, insn)
    ctx.push(Const(insn.next_address & ((1 << ctx.operand_bits) - 1), ctx.operand_bits))
    jump_to(ctx, destination)


@lifts("RET")
def ret(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    width = ctx.operand_bits
    target = ctx.branch_target(b.zext(ctx.pop(width), 32))
    if insn.operands:  # RET imm16 releases parameters
        sp_name = "esp" if ctx.env.stack_bits == 32 else "sp"
        sp = ctx.read_reg(sp_name)
        ctx.write_reg(sp_name, b.add(sp, Const(insn.operands[0].imm & 0xFFFF, sp.width)))
    jump_to(ctx, target)
