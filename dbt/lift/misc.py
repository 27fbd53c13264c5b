"""Everything else of the general-purpose set: flag control, CPUID, RDTSC,
software interrupts and the instructions that only raise."""

from __future__ import annotations

from dbt.cpu.state import CF, DF, Slot
from dbt.decode import Instruction, OperandKind
from dbt.ir import SOFTWARE, Const, Helper
from dbt.lift import flags
from dbt.lift.context import BP, BR, NM, OF_VECTOR, UD, LiftContext, Unsupported
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


def x87(ctx: LiftContext, insn: Instruction) -> None:
    """An x87 instruction (escape opcodes D8-DF).  dbt's CPU has no FPU
    (CPUID.1:EDX.FPU = 0): with CR0.EM or CR0.TS set the instruction raises
    #NM so that a kernel can emulate it or switch FPU context; otherwise #UD."""
    from dbt.cpu.state import CR0_EM, CR0_TS

    b = ctx.b
    cr0 = ctx.get_slot(Slot.CR0)
    b.raise_if(b.ne(b.and_(cr0, Const(CR0_EM | CR0_TS, 32)), Const(0, 32)), NM)
    b.raise_(UD)
    ctx.end_block()


@lifts("WAIT")
def wait(ctx: LiftContext, insn: Instruction) -> None:
    """WAIT/FWAIT raises #NM when CR0.MP and CR0.TS are both set; else nothing."""
    from dbt.cpu.state import CR0_MP, CR0_TS

    b = ctx.b
    both = Const(CR0_MP | CR0_TS, 32)
    b.raise_if(b.eq(b.and_(ctx.get_slot(Slot.CR0), both), both), NM)


@lifts("PAUSE")
def pause(ctx: LiftContext, insn: Instruction) -> None:
    return
