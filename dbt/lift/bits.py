"""Bit operations: BT/BTS/BTR/BTC and BSF/BSR."""

from __future__ import annotations

from dbt.cpu.state import CF
from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Value
from dbt.lift import flags
from dbt.lift.context import LiftContext, Location
from dbt.lift.registry import lifts


@lifts("BT", "BTS", "BTR", "BTC")
def bit_test(ctx: LiftContext, insn: Instruction) -> None:
    """CF receives the bit; ZF is unchanged (the SDM leaves SF, AF, PF and OF
    undefined; dbt keeps them too)."""
    b = ctx.b
    base_op, offset_op = insn.operands
    width = base_op.size * 8
    name = insn.mnemonic
    write = name != "bt"
    if offset_op.kind is OperandKind.IMM:
        bit_index: Value = Const(offset_op.imm & (width - 1), width)
        where = ctx.location(base_op, write=write)
    else:
        offset = ctx.read_reg(offset_op.reg)  # type: ignore[arg-type]
        bit_index = b.and_(offset, Const(width - 1, width))
        if base_op.kind is OperandKind.MEM:
            # A register offset addresses the bit string beyond the operand:
            # the signed offset / width selects the word.
            segment, address = ctx.effective_address(base_op)
            word = b.ashr(offset, Const(width.bit_length() - 1, width))
            displacement = b.shl(b.sext(word, 32), Const((width // 8).bit_length() - 1, 32))
            address = b.add(address, displacement)
            if ctx.address_bits == 16:
                address = b.and_(address, Const(0xFFFF, 32))
            where = Location(width, linear=ctx.linear(segment, address, width // 8, write))
        else:
            where = ctx.location(base_op, write=write)
    value = ctx.read(where)
    selected = b.shl(Const(1, width), bit_index)
    bit = b.ne(b.and_(value, selected), Const(0, width))
    if name == "bts":
        ctx.write(where, b.or_(value, selected))
    elif name == "btr":
        ctx.write(where, b.and_(value, b.not_(selected)))
    elif name == "btc":
        ctx.write(where, b.xor(value, selected))
    old = flags.eflags_arith(ctx)
    flags.write_arith_flags(ctx, b.or_(b.and_(old, Const(~CF & 0xFFFFFFFF, 32)), b.zext(bit, 32)))


@lifts("BSF", "BSR")
def bit_scan(ctx: LiftContext, insn: Instruction) -> None:
    """ZF=1 and the destination unchanged for a zero source (as AMD documents
    and Intel processors do); otherwise the index of the lowest/highest set bit.
    The other flags are undefined; dbt sets them as for a logical operation on
    the source."""
    b = ctx.b
    dst_op, src_op = insn.operands
    source = ctx.value(src_op)
    width = source.width
    if insn.mnemonic == "bsf":
        index = b.cttz(source)
    else:
        index = b.sub(Const(width - 1, width), b.ctlz(source))
    old = ctx.read_reg(dst_op.reg)  # type: ignore[arg-type]
    is_zero = b.eq(source, Const(0, width))
    ctx.write_reg(dst_op.reg, b.select(is_zero, old, index))  # type: ignore[arg-type]
    flags.set_logic(ctx, source)
