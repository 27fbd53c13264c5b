"""Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD.

The count is masked to five bits; a masked count of zero changes nothing,
not even the flags, so a count in CL makes the flag update conditional.  The
SDM leaves OF undefined for counts other than one (and AF always); dbt
computes them with the same formula for every count, as QEMU does.  All
arithmetic happens at 64 bits so that no IR shift reaches its width.
"""

from __future__ import annotations

from dbt.cpu.state import CF, OF
from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Value
from dbt.lift import flags
from dbt.lift.context import LiftContext
from dbt.lift.registry import lifts


def _count(ctx: LiftContext, insn: Instruction, operand_index: int) -> Value:
    """The shift count (masked to 5 bits) as an 8-bit value; 1 when implicit."""
    if len(insn.operands) <= operand_index:
        return Const(1, 8)
    op = insn.operands[operand_index]
    if op.kind is OperandKind.IMM:
        return Const(op.imm & 0x1F, 8)
    return ctx.b.and_(ctx.read_reg(op.reg), Const(0x1F, 8))  # type: ignore[arg-type]


def _sign(ctx: LiftContext, value: Value) -> Value:
    return ctx.b.trunc(ctx.b.lshr(value, Const(value.width - 1, value.width)), 1)


def _bit(ctx: LiftContext, value: Value, index: Value) -> Value:
    """Bit ``index`` (a value of the same width) of ``value``, as 1 bit."""
    return ctx.b.trunc(ctx.b.lshr(value, index), 1)


def _finish(ctx: LiftContext, where, old_value: Value, count: Value, result: Value,
            carry: Value, overflow: Value, arithmetic: bool) -> None:
    """Write the result and the flags, unless the count is zero.

    ``arithmetic``: SF, ZF and PF come from the result (shifts); otherwise
    only CF and OF change (rotates)."""
    b = ctx.b
    zero = Const(0, count.width)
    if isinstance(count, Const):
        if count.value == 0:
            return
        ctx.write(where, result)
        if arithmetic:
            flags.set_result(ctx, result, carry, overflow)
        else:
            _set_carry_overflow(ctx, carry, overflow)
        return
    is_zero = b.eq(count, zero)
    ctx.write(where, b.select(is_zero, old_value, result))
    old_flags = flags.eflags_arith(ctx)
    if arithmetic:
        carry_overflow = b.or_(b.zext(carry, 32), b.shl(b.zext(overflow, 32), Const(11, 32)))
        new_flags = flags.arith_flags(b, flags.KIND_RESULT, result, carry_overflow, None)
    else:
        new_flags = _with_carry_overflow(ctx, old_flags, carry, overflow)
    flags.write_arith_flags(ctx, b.select(is_zero, old_flags, new_flags))


def _with_carry_overflow(ctx: LiftContext, old: Value, carry: Value, overflow: Value) -> Value:
    b = ctx.b
    kept = b.and_(old, Const(~(CF | OF) & 0xFFFFFFFF, 32))
    bits = b.or_(b.zext(carry, 32), b.shl(b.zext(overflow, 32), Const(11, 32)))
    return b.or_(kept, bits)


def _set_carry_overflow(ctx: LiftContext, carry: Value, overflow: Value) -> None:
    flags.write_arith_flags(ctx, _with_carry_overflow(ctx, flags.eflags_arith(ctx), carry, overflow))


@lifts("SHL", "SAL", "SHR", "SAR")
def shift(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    where = ctx.location(insn.operands[0], write=True)
    width = where.width
    value = ctx.read(where)
    count = _count(ctx, insn, 1)
    count64 = b.zext(count, 64)
    # count - 1, for the last bit shifted out (kept below 64; unused when count is 0)
    count_less = b.and_(b.sub(count64, Const(1, 64)), Const(63, 64))
    name = insn.mnemonic
    if name in ("shl", "sal"):
        shifted = b.shl(b.zext(value, 64), count64)
        result = b.trunc(shifted, width)
        carry = _bit(ctx, shifted, Const(width, 64))
        overflow = b.xor(carry, _sign(ctx, result))
    else:
        wide = b.sext(value, 64) if name == "sar" else b.zext(value, 64)
        before_last = b.lshr(wide, count_less) if name == "shr" else b.ashr(wide, count_less)
        result = b.trunc(b.lshr(wide, count64) if name == "shr" else b.ashr(wide, count64), width)
        carry = b.trunc(before_last, 1)
        overflow = b.xor(_sign(ctx, b.trunc(before_last, width)), _sign(ctx, result))
    _finish(ctx, where, value, count, result, carry, overflow, arithmetic=True)


@lifts("ROL", "ROR")
def rotate(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    where = ctx.location(insn.operands[0], write=True)
    width = where.width
    value = ctx.read(where)
    count = _count(ctx, insn, 1)  # nonzero count decides whether flags change
    amount = b.zext(b.urem(count, Const(width, 8)) if width < 32 else count, 64)
    doubled = b.or_(b.shl(b.zext(value, 64), Const(width, 64)), b.zext(value, 64))
    if insn.mnemonic == "rol":
        result = b.trunc(b.lshr(doubled, b.sub(Const(width, 64), amount)), width)
        carry = b.trunc(result, 1)
        overflow = b.xor(_sign(ctx, result), carry)
    else:
        result = b.trunc(b.lshr(doubled, amount), width)
        carry = _sign(ctx, result)
        overflow = b.xor(carry, b.trunc(b.lshr(result, Const(width - 2, width)), 1))
    _finish(ctx, where, value, count, result, carry, overflow, arithmetic=False)


@lifts("RCL", "RCR")
def rotate_through_carry(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    where = ctx.location(insn.operands[0], write=True)
    width = where.width
    value = ctx.read(where)
    masked = _count(ctx, insn, 1)
    # A (width+1)-bit rotation; a count that is a multiple of width+1 changes nothing.
    count = b.urem(masked, Const(width + 1, 8)) if width < 32 else masked
    amount = b.zext(count, 64)
    joined = b.or_(b.shl(b.zext(flags.flag(ctx, "c"), 64), Const(width, 64)), b.zext(value, 64))
    span = width + 1
    if insn.mnemonic == "rcl":
        left = b.shl(joined, amount)
        right = b.lshr(joined, b.sub(Const(span, 64), amount))
    else:
        left = b.shl(joined, b.sub(Const(span, 64), amount))
        right = b.lshr(joined, amount)
    rotated = b.and_(b.or_(left, right), Const((1 << span) - 1, 64))
    result = b.trunc(rotated, width)
    carry = _bit(ctx, rotated, Const(width, 64))
    overflow = b.xor(_sign(ctx, value), _sign(ctx, result))
    _finish(ctx, where, value, count, result, carry, overflow, arithmetic=False)


@lifts("SHLD", "SHRD")
def double_shift(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    where = ctx.location(insn.operands[0], write=True)
    width = where.width
    value = ctx.read(where)
    fill = ctx.value(insn.operands[1])
    count = _count(ctx, insn, 2)
    count64 = b.zext(count, 64)
    if width == 32:
        if insn.mnemonic == "shld":
            joined = b.or_(b.shl(b.zext(value, 64), Const(32, 64)), b.zext(fill, 64))
        else:
            joined = b.or_(b.shl(b.zext(fill, 64), Const(32, 64)), b.zext(value, 64))
        span = 64
    else:
        # 16 bits: counts above 16 shift through value:fill:value, as hardware does.
        joined = b.or_(
            b.or_(b.shl(b.zext(value, 64), Const(32, 64)), b.shl(b.zext(fill, 64), Const(16, 64))),
            b.zext(value, 64),
        )
        span = 48
    if insn.mnemonic == "shld":
        # result: bits [32-count, 48-count) (16-bit) or [32-count, 64-count)
        top = span - width
        result = b.trunc(b.lshr(joined, b.sub(Const(top, 64), count64)), width)
        before_last = b.lshr(joined, b.and_(b.sub(Const(span, 64), count64), Const(63, 64)))
        carry = b.trunc(before_last, 1)
        overflow = b.xor(carry, _sign(ctx, result))
    else:
        result = b.trunc(b.lshr(joined, count64), width)
        before_last = b.lshr(joined, b.and_(b.sub(count64, Const(1, 64)), Const(63, 64)))
        carry = b.trunc(before_last, 1)
        overflow = b.xor(_sign(ctx, b.trunc(before_last, width)), _sign(ctx, result))
    _finish(ctx, where, value, count, result, carry, overflow, arithmetic=True)
