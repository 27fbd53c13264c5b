"""Integer arithmetic: ADD/ADC/SUB/SBB/CMP/INC/DEC/NEG, MUL/IMUL, DIV/IDIV,
the logic group, and the decimal adjustments."""

from __future__ import annotations

from dbt.decode import Instruction
from dbt.ir import Const, Value, mask
from dbt.lift import flags
from dbt.lift.context import DE, LiftContext
from dbt.lift.registry import lifts


@lifts("ADD", "ADC", "SUB", "SBB", "CMP")
def add_sub(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    name = insn.mnemonic
    dst_op, src_op = insn.operands
    dst = ctx.location(dst_op, write=name != "cmp")
    a = ctx.read(dst)
    operand = ctx.value(src_op, dst.width)
    with_carry = name in ("adc", "sbb")
    carry = b.zext(flags.flag(ctx, "c"), dst.width) if with_carry else Const(0, dst.width)
    if name in ("add", "adc"):
        result = b.add(b.add(a, operand), carry)
        flags.set_add(ctx, result, a, operand, carry_in=with_carry)
    else:
        result = b.sub(b.sub(a, operand), carry)
        flags.set_sub(ctx, result, a, operand, borrow_in=with_carry)
    if name != "cmp":
        ctx.write(dst, result)


@lifts("INC", "DEC")
def inc_dec(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    (op,) = insn.operands
    where = ctx.location(op, write=True)
    value = ctx.read(where)
    one = Const(1, where.width)
    result = b.add(value, one) if insn.mnemonic == "inc" else b.sub(value, one)
    flags.set_incdec(ctx, result, insn.mnemonic == "inc")
    ctx.write(where, result)


@lifts("NEG")
def neg(ctx: LiftContext, insn: Instruction) -> None:
    (op,) = insn.operands
    where = ctx.location(op, write=True)
    value = ctx.read(where)
    zero = Const(0, where.width)
    result = ctx.b.sub(zero, value)
    flags.set_sub(ctx, result, zero, value)
    ctx.write(where, result)


@lifts("AND", "OR", "XOR", "TEST")
def logic(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    name = insn.mnemonic
    dst_op, src_op = insn.operands
    dst = ctx.location(dst_op, write=name != "test")
    a = ctx.read(dst)
    operand = ctx.value(src_op, dst.width)
    if name == "xor" and dst_op == src_op and dst.register:
        result: Value = Const(0, dst.width)  # the zeroing idiom needs no data dependency
    elif name in ("and", "test"):
        result = b.and_(a, operand)
    elif name == "or":
        result = b.or_(a, operand)
    else:
        result = b.xor(a, operand)
    flags.set_logic(ctx, result)
    if name != "test":
        ctx.write(dst, result)


@lifts("NOT")
def not_(ctx: LiftContext, insn: Instruction) -> None:
    (op,) = insn.operands
    where = ctx.location(op, write=True)
    ctx.write(where, ctx.b.not_(ctx.read(where)))


def _accumulator_pair(width: int) -> tuple[str, str]:
    """Registers holding the low and high halves of a MUL/DIV double-width value."""
    return {8: ("al", "ah"), 16: ("ax", "dx"), 32: ("eax", "edx")}[width]


@lifts("MUL")
def mul(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    (op,) = insn.operands
    operand = ctx.value(op)
    width = operand.width
    low_name, high_name = _accumulator_pair(width)
    product = b.mul(b.zext(ctx.read_reg(low_name), 2 * width), b.zext(operand, 2 * width))
    low = b.trunc(product, width)
    high = b.trunc(b.lshr(product, Const(width, 2 * width)), width)
    if width == 8:
        ctx.write_reg("ax", b.trunc(product, 16))
    else:
        ctx.write_reg(low_name, low)
        ctx.write_reg(high_name, high)
    overflow = b.ne(high, Const(0, width))
    flags.set_result(ctx, low, overflow, overflow)


@lifts("IMUL")
def imul(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    if len(insn.operands) == 1:
        operand = ctx.value(insn.operands[0])
        width = operand.width
        low_name, high_name = _accumulator_pair(width)
        factor = ctx.read_reg(low_name)
        dst_name = None
    else:
        dst_name = insn.operands[0].reg
        width = insn.operands[0].size * 8
        if len(insn.operands) == 2:
            factor, operand = ctx.read_reg(dst_name), ctx.value(insn.operands[1])  # type: ignore[arg-type]
        else:
            factor, operand = ctx.value(insn.operands[1]), ctx.value(insn.operands[2], width)
    product = b.mul(b.sext(factor, 2 * width), b.sext(operand, 2 * width))
    low = b.trunc(product, width)
    overflow = b.ne(b.sext(low, 2 * width), product)
    if dst_name is not None:
        ctx.write_reg(dst_name, low)
    elif width == 8:
        ctx.write_reg("ax", b.trunc(product, 16))
    else:
        ctx.write_reg(low_name, low)
        ctx.write_reg(high_name, b.trunc(b.lshr(product, Const(width, 2 * width)), width))
    flags.set_result(ctx, low, overflow, overflow)


@lifts("DIV", "IDIV")
def div(ctx: LiftContext, insn: Instruction) -> None:
    """Quotient and remainder; #DE for a zero divisor or a quotient that does not fit.
    The flags are undefined and dbt leaves them unchanged."""
    b = ctx.b
    (op,) = insn.operands
    divisor = ctx.value(op)
    width = divisor.width
    if isinstance(divisor, Const) and divisor.value == 0:
        # A divisor known to be zero (a register just loaded with 0): the #DE
        # is certain, and folding the division of a known dividend would divide by zero.
        b.raise_(DE)
        ctx.end_block()
        return
    wide = 2 * width
    signed = insn.mnemonic == "idiv"
    if width == 8:
        dividend = ctx.read_reg("ax")
    else:
        low_name, high_name = _accumulator_pair(width)
        dividend = b.or_(
            b.shl(b.zext(ctx.read_reg(high_name), wide), Const(width, wide)),
            b.zext(ctx.read_reg(low_name), wide),
        )
    b.raise_if(b.eq(divisor, Const(0, width)), DE)
    if signed:
        wide_divisor = b.sext(divisor, wide)
        # The one quotient that overflows even the double width: MIN / -1.
        b.raise_if(
            b.and_(b.eq(dividend, Const(1 << (wide - 1), wide)), b.eq(wide_divisor, Const(mask(wide), wide))),
            DE,
        )
        quotient = b.sdiv(dividend, wide_divisor)
        remainder = b.srem(dividend, wide_divisor)
        b.raise_if(b.ne(b.sext(b.trunc(quotient, width), wide), quotient), DE)
    else:
        wide_divisor = b.zext(divisor, wide)
        quotient = b.udiv(dividend, wide_divisor)
        remainder = b.urem(dividend, wide_divisor)
        b.raise_if(b.ult(Const(mask(width), wide), quotient), DE)
    if width == 8:
        ctx.write_reg("al", b.trunc(quotient, 8))
        ctx.write_reg("ah", b.trunc(remainder, 8))
    else:
        ctx.write_reg(low_name, b.trunc(quotient, width))
        ctx.write_reg(high_name, b.trunc(remainder, width))


# -- decimal arithmetic ------------------------------------------------------------
def _greater(ctx: LiftContext, value: Value, limit: int) -> Value:
    return ctx.b.ult(Const(limit, value.width), value)


@lifts("DAA", "DAS")
def daa_das(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    subtract = insn.mnemonic == "das"
    al = ctx.read_reg("al")
    old_cf = flags.flag(ctx, "c")
    low_adjust = b.or_(_greater(ctx, b.and_(al, Const(0xF, 8)), 9), flags.flag(ctx, "a"))
    six = b.select(low_adjust, Const(6, 8), Const(0, 8))
    stepped = b.sub(al, six) if subtract else b.add(al, six)
    high_adjust = b.or_(_greater(ctx, al, 0x99), old_cf)
    sixty = b.select(high_adjust, Const(0x60, 8), Const(0, 8))
    result = b.sub(stepped, sixty) if subtract else b.add(stepped, sixty)
    carry = high_adjust
    if subtract:  # DAS also keeps the borrow out of the low adjustment
        carry = b.or_(carry, b.and_(low_adjust, b.ult(al, Const(6, 8))))
    ctx.write_reg("al", result)
    flags.set_result(ctx, result, carry, Const(0, 1), low_adjust)


@lifts("AAA", "AAS")
def aaa_aas(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    subtract = insn.mnemonic == "aas"
    ax = ctx.read_reg("ax")
    al = b.trunc(ax, 8)
    adjust = b.or_(_greater(ctx, b.and_(al, Const(0xF, 8)), 9), flags.flag(ctx, "a"))
    step = b.select(adjust, Const(0x106, 16), Const(0, 16))
    if subtract:
        # AX - 6, then AH - 1: a borrow out of AL also reaches AH.
        adjusted = b.sub(ax, step)
    else:
        adjusted = b.add(ax, step)
    result = b.and_(adjusted, Const(0xFF0F, 16))
    ctx.write_reg("ax", result)
    flags.set_result(ctx, b.trunc(result, 8), adjust, Const(0, 1), adjust)


@lifts("AAM")
def aam(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    base = Const(insn.operands[0].imm & 0xFF, 8) if insn.operands else Const(10, 8)
    if base.value == 0:
        # AAM 0 always raises #DE (and folding AL / 0 for a known AL would divide by zero).
        b.raise_(DE)
        ctx.end_block()
        return
    al = ctx.read_reg("al")
    remainder = b.urem(al, base)
    ctx.write_reg("ah", b.udiv(al, base))
    ctx.write_reg("al", remainder)
    flags.set_logic(ctx, remainder)


@lifts("AAD")
def aad(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    base = Const(insn.operands[0].imm & 0xFF, 8) if insn.operands else Const(10, 8)
    result = b.add(ctx.read_reg("al"), b.mul(ctx.read_reg("ah"), base))
    ctx.write_reg("ax", b.zext(result, 16))
    flags.set_logic(ctx, result)
