"""Everything else of the general-purpose set: flag control, CPUID, RDTSC,
software interrupts and the instructions that only raise."""

from __future__ import annotations

from dbt.cpu.state import CF, DF, Slot
from dbt.decode import Instruction, OperandKind
from dbt.ir import SOFTWARE, Const, Helper
from dbt.lift import flags
from dbt.lift.context import BP, BR, OF_VECTOR, UD, LiftContext, Unsupported
from dbt.lift.registry import lifts

CPUID = Helper("cpuid", (), None, reads_state=True, writes_state=True)
# The time-stamp counter at the given instruction of the block (virtual time
# is counted in instructions); faults with #GP when CR4.TSD forbids it.
RDTSC = Helper("rdtsc", (32,), 64, may_fault=True)


@lifts("CLC", "STC", "CMC")
def carry_control(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    old = flags.eflags_arith(ctx)
    if insn.mnemonic == "clc":
        new = b.and_(old, Const(~CF & 0xFFFFFFFF, 32))
    elif insn.mnemonic == "stc":
        new = b.or_(old, Const(CF, 32))
    else:
        new = b.xor(old, Const(CF, 32))
    flags.write_arith_flags(ctx, new)


@lifts("CLD", "STD")
def direction_control(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    eflags = ctx.get_slot(Slot.EFLAGS)
    if insn.mnemonic == "cld":
        ctx.set_slot(Slot.EFLAGS, b.and_(eflags, Const(~DF & 0xFFFFFFFF, 32)))
    else:
        ctx.set_slot(Slot.EFLAGS, b.or_(eflags, Const(DF, 32)))


@lifts("CPUID")
def cpuid(ctx: LiftContext, insn: Instruction) -> None:
    ctx.call(CPUID)


@lifts("RDTSC")
def rdtsc(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    tsc = ctx.call(RDTSC, Const(ctx.index, 32))
    assert tsc is not None
    ctx.write_reg("eax", b.trunc(tsc, 32))
    ctx.write_reg("edx", b.trunc(b.lshr(tsc, Const(32, 64)), 32))


@lifts("INT3")
def int3(ctx: LiftContext, insn: Instruction) -> None:
    ctx.b.raise_(BP, None, SOFTWARE)
    ctx.end_block()


@lifts("INT")
def int_n(ctx: LiftContext, insn: Instruction) -> None:
    ctx.b.raise_(insn.operands[0].imm & 0xFF, None, SOFTWARE)
    ctx.end_block()


@lifts("INTO")
def into(ctx: LiftContext, insn: Instruction) -> None:
    ctx.b.raise_if(flags.flag(ctx, "o"), OF_VECTOR, None, SOFTWARE)


@lifts("UD2", "UD1", "UD0")
def ud2(ctx: LiftContext, insn: Instruction) -> None:
    ctx.b.raise_(UD)
    ctx.end_block()


@lifts("BOUND")
def bound(ctx: LiftContext, insn: Instruction) -> None:
    """#BR unless lower <= index <= upper (signed); the bounds are a pair in memory."""
    b = ctx.b
    index_op, bounds_op = insn.operands
    if bounds_op.kind is not OperandKind.MEM:
        raise Unsupported("bound with a register operand")
    width = index_op.size * 8
    index = ctx.read_reg(index_op.reg)  # type: ignore[arg-type]
    segment, offset = ctx.effective_address(bounds_op)
    lower = ctx.load(segment, offset, width)
    upper = ctx.load(segment, b.add(offset, Const(width // 8, 32)), width)
    b.raise_if(b.or_(b.slt(index, lower), b.slt(upper, index)), BR)


@lifts("PAUSE")
def pause(ctx: LiftContext, insn: Instruction) -> None:
    return
