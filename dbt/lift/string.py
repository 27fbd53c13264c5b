"""String instructions: MOVS, STOS, LODS, CMPS, SCAS with REP/REPE/REPNE.

One execution of a repeated string instruction performs one iteration and
then jumps back to the instruction while the repeat condition holds, so each
iteration is interruptible and restartable exactly as on hardware (and a
fault in iteration n leaves the registers as iteration n-1 left them).  The
translation cache chains the instruction to itself, and the hot tier turns
the chain into a native loop.
"""

from __future__ import annotations

from dbt.cpu.state import DF, Seg, Slot
from dbt.decode import Instruction
from dbt.ir import Const, Value
from dbt.lift import flags
from dbt.lift.context import SEGMENTS, LiftContext
from dbt.lift.registry import lifts

_ACCUMULATOR = {8: "al", 16: "ax", 32: "eax"}


def element_bits(ctx: LiftContext, insn: Instruction) -> int:
    """Even opcodes move bytes; odd ones words or dwords by operand size."""
    return 8 if insn.opcode[0] % 2 == 0 else ctx.operand_bits


def step(ctx: LiftContext, size_bytes: int) -> Value:
    """+size or -size by EFLAGS.DF, at the address size."""
    b = ctx.b
    bits = ctx.address_bits
    down = b.ne(b.and_(ctx.get_slot(Slot.EFLAGS), Const(DF, 32)), Const(0, 32))
    return b.select(down, b.const(-size_bytes, bits), Const(size_bytes, bits))


def index_registers(ctx: LiftContext) -> tuple[str, str]:
    return ("esi", "edi") if ctx.address_bits == 32 else ("si", "di")


def source_segment(insn: Instruction) -> int:
    return SEGMENTS[insn.segment_override] if insn.segment_override else Seg.DS


def begin_repeat(ctx: LiftContext, insn: Instruction) -> None:
    """With a REP prefix and a zero count the instruction does nothing."""
    if insn.rep:
        count = ctx.read_reg(ctx.counter_reg())
        ctx.b.exit_if(ctx.b.eq(count, Const(0, count.width)), insn.next_address)


def end_repeat(ctx: LiftContext, insn: Instruction, compares: bool) -> None:
    """Count down and loop back to the instruction while the condition holds."""
    if not insn.rep:
        return
    b = ctx.b
    counter = ctx.counter_reg()
    count = b.sub(ctx.read_reg(counter), Const(1, ctx.address_bits))
    ctx.write_reg(counter, count)
    again = b.ne(count, Const(0, count.width))
    if compares:
        zero_flag = flags.flag(ctx, "z")
        wanted = zero_flag if insn.rep == 0xF3 else b.xor(zero_flag, Const(1, 1))
        again = b.and_(again, wanted)
    ctx.commit()
    b.exit_if(again, insn.address)


@lifts("MOVSB", "MOVSW", "MOVSD", "STOSB", "STOSW", "STOSD", "LODSB", "LODSW", "LODSD",
       "CMPSB", "CMPSW", "CMPSD", "SCASB", "SCASW", "SCASD")
def string(ctx: LiftContext, insn: Instruction) -> None:
    from dbt.lift.context import Unsupported

    if insn.opcode[0] not in range(0xA4, 0xB0):
        raise Unsupported(f"{insn.mnemonic} that is not a string instruction")
    b = ctx.b
    kind = insn.mnemonic[:4]
    width = element_bits(ctx, insn)
    size_bytes = width // 8
    source, destination = index_registers(ctx)
    begin_repeat(ctx, insn)
    delta = step(ctx, size_bytes)
    si = ctx.read_reg(source)
    di = ctx.read_reg(destination)
    source_address = b.zext(si, 32)
    destination_address = b.zext(di, 32)
    accumulator = _ACCUMULATOR[width]
    if kind == "movs":
        value = ctx.load(source_segment(insn), source_address, width)
        ctx.store(Seg.ES, destination_address, value)
    elif kind == "stos":
        ctx.store(Seg.ES, destination_address, ctx.read_reg(accumulator))
    elif kind == "lods":
        ctx.write_reg(accumulator, ctx.load(source_segment(insn), source_address, width))
    elif kind == "cmps":
        first = ctx.load(source_segment(insn), source_address, width)
        second = ctx.load(Seg.ES, destination_address, width)
        flags.set_sub(ctx, b.sub(first, second), first, second)
    else:  # scas
        acc = ctx.read_reg(accumulator)
        value = ctx.load(Seg.ES, destination_address, width)
        flags.set_sub(ctx, b.sub(acc, value), acc, value)
    if kind in ("movs", "lods", "cmps"):
        ctx.write_reg(source, b.add(si, delta))
    if kind in ("movs", "stos", "cmps", "scas"):
        ctx.write_reg(destination, b.add(di, delta))
    end_repeat(ctx, insn, compares=kind in ("cmps", "scas"))
