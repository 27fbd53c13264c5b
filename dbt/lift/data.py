"""Data movement: MOV and friends, exchanges, conversions, SETcc/CMOVcc, XLAT."""

from __future__ import annotations

from dbt.cpu.state import AF, CF, PF, SF, ZF
from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Value
from dbt.lift import flags
from dbt.lift.context import REGISTERS, LiftContext, Unsupported
from dbt.lift.registry import lifts


def condition_code(mnemonic: str, prefix: str) -> int:
    """x86 condition number from a mnemonic such as 'jne' or 'cmovbe'."""
    suffix = mnemonic[len(prefix):]
    return flags.CONDITIONS.index(suffix)


@lifts("MOV")
def mov(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    if (dst.kind is OperandKind.REG and dst.reg not in REGISTERS) or (
        src.kind is OperandKind.REG and src.reg not in REGISTERS
    ):
        from dbt.lift import system  # segment, control and debug registers

        system.mov_special(ctx, insn)
        return
    where = ctx.location(dst, write=True)
    ctx.write(where, ctx.value(src, where.width))


@lifts("MOVZX", "MOVSX")
def movx(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    value = ctx.value(src)
    width = dst.size * 8
    extended = ctx.b.zext(value, width) if insn.mnemonic.startswith("movz") else ctx.b.sext(value, width)
    ctx.write(ctx.location(dst, write=True), extended)


@lifts("XCHG")
def xchg(ctx: LiftContext, insn: Instruction) -> None:
    first, second = (ctx.location(op, write=True) for op in insn.operands)
    a, b = ctx.read(first), ctx.read(second)
    if first.register and first.register == second.register:
        return
    # Memory first: a fault leaves both registers untouched.
    if second.register is None:
        first, second, a, b = second, first, b, a
    ctx.write(first, b)
    ctx.write(second, a)


@lifts("NOP")
def nop(ctx: LiftContext, insn: Instruction) -> None:
    # Multi-byte NOPs (0F 1F /0) have a memory operand that is never accessed.
    return


@lifts("BSWAP")
def bswap(ctx: LiftContext, insn: Instruction) -> None:
    (op,) = insn.operands
    b = ctx.b
    value = ctx.value(op)
    if value.width == 16:
        # The SDM leaves BSWAP of a 16-bit register undefined; hardware and
        # QEMU clear it, and so does dbt.
        ctx.write_reg(op.reg, Const(0, 16))  # type: ignore[arg-type]
        return
    result: Value = Const(0, 32)
    for byte in range(4):
        part = b.and_(b.lshr(value, Const(8 * byte, 32)), Const(0xFF, 32))
        result = b.or_(result, b.shl(part, Const(8 * (3 - byte), 32)))
    ctx.write_reg(op.reg, result)  # type: ignore[arg-type]


@lifts("LEA")
def lea(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    if src.kind is not OperandKind.MEM:
        raise Unsupported("lea with a register source")
    _, offset = ctx.effective_address(src)
    width = dst.size * 8
    ctx.write_reg(dst.reg, ctx.b.trunc(offset, width) if width < 32 else offset)  # type: ignore[arg-type]


@lifts("CBW", "CWDE", "CWD", "CDQ")
def convert(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    name = insn.mnemonic
    if name == "cbw":
        ctx.write_reg("ax", b.sext(ctx.read_reg("al"), 16))
    elif name == "cwde":
        ctx.write_reg("eax", b.sext(ctx.read_reg("ax"), 32))
    elif name == "cwd":
        ctx.write_reg("dx", b.ashr(ctx.read_reg("ax"), Const(15, 16)))
    else:
        ctx.write_reg("edx", b.ashr(ctx.read_reg("eax"), Const(31, 32)))


@lifts("LAHF")
def lahf(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    bits = b.and_(flags.eflags_arith(ctx), Const(SF | ZF | AF | PF | CF, 32))
    ctx.write_reg("ah", b.trunc(b.or_(bits, Const(2, 32)), 8))


@lifts("SAHF")
def sahf(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    low = SF | ZF | AF | PF | CF
    ah = b.zext(ctx.read_reg("ah"), 32)
    old = flags.eflags_arith(ctx)
    new = b.or_(b.and_(old, Const(~low & 0xFFFFFFFF, 32)), b.and_(ah, Const(low, 32)))
    flags.write_arith_flags(ctx, new)


@lifts(*(f"SET{c.upper()}" for c in flags.CONDITIONS))
def setcc(ctx: LiftContext, insn: Instruction) -> None:
    (dst,) = insn.operands
    where = ctx.location(dst, write=True)
    value = flags.condition(ctx, condition_code(insn.mnemonic, "set"))
    ctx.write(where, ctx.b.zext(value, 8))


@lifts(*(f"CMOV{c.upper()}" for c in flags.CONDITIONS))
def cmovcc(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    value = ctx.value(src)  # read (and fault) whatever the condition
    old = ctx.read_reg(dst.reg)  # type: ignore[arg-type]
    taken = flags.condition(ctx, condition_code(insn.mnemonic, "cmov"))
    ctx.write_reg(dst.reg, ctx.b.select(taken, value, old))  # type: ignore[arg-type]


@lifts("XLATB")
def xlat(ctx: LiftContext, insn: Instruction) -> None:
    from dbt.cpu.state import Seg
    from dbt.lift.context import SEGMENTS

    b = ctx.b
    bits = ctx.address_bits
    base = ctx.read_reg("ebx" if bits == 32 else "bx")
    offset = b.zext(b.add(base, b.zext(ctx.read_reg("al"), bits)), 32)
    segment = SEGMENTS[insn.segment_override] if insn.segment_override else Seg.DS
    ctx.write_reg("al", ctx.load(segment, offset, 8))


@lifts("XADD")
def xadd(ctx: LiftContext, insn: Instruction) -> None:
    dst_op, src_op = insn.operands
    dst = ctx.location(dst_op, write=True)
    src = ctx.location(src_op, write=True)
    a, operand = ctx.read(dst), ctx.read(src)
    total = ctx.b.add(a, operand)
    ctx.write(src, a)
    ctx.write(dst, total)  # written last: XADD r, r with one register keeps the sum
    flags.set_add(ctx, total, a, operand)


@lifts("CMPXCHG")
def cmpxchg(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    dst_op, src_op = insn.operands
    width = dst_op.size * 8
    accumulator = ctx.reg_by_index(0, width)
    dst = ctx.location(dst_op, write=True)
    old = ctx.read(dst)
    acc = ctx.read_reg(accumulator)
    source = ctx.value(src_op)
    equal = b.eq(acc, old)
    # The destination is written whether or not the compare succeeds, as the
    # processor does (so a read-only page faults either way).
    ctx.write(dst, b.select(equal, source, old))
    ctx.write_reg(accumulator, b.select(equal, ctx.read_reg(accumulator), old))
    flags.set_sub(ctx, b.sub(acc, old), acc, old)


@lifts("CMPXCHG8B")
def cmpxchg8b(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    (op,) = insn.operands
    if op.kind is not OperandKind.MEM:
        raise Unsupported("cmpxchg8b with a register operand")
    where = ctx.location(op, write=True)
    assert where.linear is not None
    high_address = b.add(where.linear, Const(4, 32))
    low, high = b.load(32, where.linear), b.load(32, high_address)
    eax, edx = ctx.read_reg("eax"), ctx.read_reg("edx")
    equal = b.and_(b.eq(low, eax), b.eq(high, edx))
    b.store(32, where.linear, b.select(equal, ctx.read_reg("ebx"), low))
    b.store(32, high_address, b.select(equal, ctx.read_reg("ecx"), high))
    ctx.write_reg("eax", b.select(equal, eax, low))
    ctx.write_reg("edx", b.select(equal, edx, high))
    old = flags.eflags_arith(ctx)
    cleared = b.and_(old, Const(~ZF & 0xFFFFFFFF, 32))
    flags.write_arith_flags(ctx, b.or_(cleared, b.shl(b.zext(equal, 32), Const(6, 32))))
