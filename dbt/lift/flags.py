"""Lazy arithmetic flags: how each instruction family's CF/PF/AF/ZF/SF/OF are
derived from its result and operands, and how conditions are evaluated.

A flag-setting instruction records what kind of operation it was (``CcOp``)
and its operands; nothing is computed until a flag is read.  Inside a block
the lifter knows the kind statically (``CcState``), so ``cmp eax, ebx; jl``
becomes a single signed compare of the two operands.  At a block boundary
the kind and operands are in the state slots ``cc_op``/``cc_dst``/``cc_src``/
``cc_src2``, and a block that reads flags before setting them calls the
``flags_compute`` helper, whose per-kind bodies are built from the same
functions below (``flags_function``), so the formulas exist once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbt.cpu.state import AF, ARITH_FLAGS, CF, OF, PF, SF, ZF, CcOp, Slot, cc_op_for
from dbt.ir import Block, Builder, Const, Helper, Op, Temp, Value

if TYPE_CHECKING:
    from dbt.lift.context import LiftContext

KIND_EFLAGS, KIND_ADD, KIND_SUB, KIND_LOGIC, KIND_INC, KIND_DEC, KIND_RESULT = range(7)

# Condition codes in x86 encoding order.
CONDITIONS = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g")

FLAGS_COMPUTE = Helper("flags_compute", (32, 32, 32, 32), 32, pure=True)
# One flag from the lazy state, when a block reads it before setting any:
# (cc_op, dst, src, src2) -> 0 or 1.  Much smaller than all six for the hot
# tier, which inlines them.
FLAG_BITS = {"c": 0, "p": 2, "a": 4, "z": 6, "s": 7, "o": 11}
FLAG_HELPERS = {name: Helper(f"flag_{name}", (32, 32, 32, 32), 32, pure=True) for name in FLAG_BITS}


@dataclass(slots=True)
class CcState:
    """The lifter's static knowledge of the lazy flags at the current point.

    ``kind`` is None when unknown (at block entry, or after a helper changed
    the state); then the flags live only in the state slots.
    """

    kind: int | None = None
    width: int = 32
    # Single flags read from the state while ``kind`` is unknown.
    dynamic: dict[str, Value] = field(default_factory=dict)
    dst: Value | None = None  # result, or the materialised flag bits for KIND_EFLAGS
    src: Value | None = None
    src2: Value | None = None
    plain: bool = False  # ADD/SUB without carry-in: conditions compare operands directly
    _dirty: bool = False  # changed by the current instruction; to be written at commit
    _written: list[tuple[int, Value]] = field(default_factory=list)

    def begin_instruction(self) -> None:
        self._dirty = False

    def forget(self) -> None:
        self.dynamic = {}
        self.kind = None
        self.dst = self.src = self.src2 = None
        self._dirty = False

    def set(self, kind: int, width: int, dst: Value, src: Value | None = None,
            src2: Value | None = None, plain: bool = False) -> None:
        self.kind, self.width = kind, width
        self.dst, self.src, self.src2, self.plain = dst, src, src2, plain
        self.dynamic = {}
        self._dirty = True

    def set_eflags(self, arith_bits: Value) -> None:
        """The flags are now the given 32-bit value (only ARITH_FLAGS bits used)."""
        self.set(KIND_EFLAGS, 32, arith_bits)

    def pending_slots(self, b: Builder) -> list[tuple[int, Value]]:
        """The slot writes that record the current flags in the state (at commit).

        For KIND_EFLAGS the caller has already scheduled the eflags slot."""
        if not self._dirty:
            return []
        self._dirty = False
        assert self.kind is not None and self.dst is not None
        if self.kind == KIND_EFLAGS:
            return [(Slot.CC_OP, Const(CcOp.EFLAGS, 32))]
        # Operands the kind does not use are written too (as 0): that makes
        # the previous instruction's flag operands dead, so computing them
        # (a carry read from an unknown state, say) can be dropped.
        zero = Const(0, 32)
        return [(Slot.CC_OP, Const(cc_op_for(self.kind, self.width), 32)),
                (Slot.CC_DST, b.zext(self.dst, 32)),
                (Slot.CC_SRC, zero if self.src is None else b.zext(self.src, 32)),
                (Slot.CC_SRC2, zero if self.src2 is None else b.zext(self.src2, 32))]


def _bit(b: Builder, value: Value, bit: int) -> Value:
    """Bit ``bit`` of ``value`` as a 1-bit value."""
    return b.trunc(b.lshr(value, Const(bit, value.width)), 1)


def _sign(b: Builder, value: Value) -> Value:
    return _bit(b, value, value.width - 1)


def _place(b: Builder, flag: Value, bit_mask: int) -> Value:
    """A 1-bit flag moved to its EFLAGS position in a 32-bit value."""
    return b.shl(b.zext(flag, 32), Const(bit_mask.bit_length() - 1, 32))


def _narrow(b: Builder, value: Value, width: int) -> Value:
    return b.trunc(value, width) if value.width > width else value


def _parity(b: Builder, result: Value) -> Value:
    low = _narrow(b, result, 8)
    return b.eq(b.and_(b.ctpop(low), Const(1, 8)), Const(0, 8))


# -- one flag at a time, for a known kind ----------------------------------------
def _carry(b: Builder, kind: int, dst: Value, src: Value | None, src2: Value | None) -> Value:
    if kind == KIND_ADD:
        a, bb = src2, src  # carries out of each bit: (a & b) | ((a | b) & ~res)
        carries = b.or_(b.and_(a, bb), b.and_(b.or_(a, bb), b.not_(dst)))  # type: ignore[arg-type]
        return _sign(b, carries)
    if kind == KIND_SUB:
        a, bb = src2, src  # borrows: (~a & b) | (~(a ^ b) & res)
        borrows = b.or_(b.and_(b.not_(a), bb), b.and_(b.not_(b.xor(a, bb)), dst))  # type: ignore[arg-type]
        return _sign(b, borrows)
    if kind == KIND_LOGIC:
        return Const(0, 1)
    if kind in (KIND_INC, KIND_DEC):
        return _bit(b, src, 0)  # type: ignore[arg-type]
    if kind == KIND_RESULT:
        return _bit(b, src, 0)  # type: ignore[arg-type]
    return _bit(b, dst, 0)  # KIND_EFLAGS


def _overflow(b: Builder, kind: int, dst: Value, src: Value | None, src2: Value | None) -> Value:
    width = dst.width
    if kind == KIND_ADD:
        return _sign(b, b.and_(b.xor(src2, dst), b.xor(src, dst)))  # type: ignore[arg-type]
    if kind == KIND_SUB:
        return _sign(b, b.and_(b.xor(src2, src), b.xor(src2, dst)))  # type: ignore[arg-type]
    if kind == KIND_LOGIC:
        return Const(0, 1)
    if kind == KIND_INC:
        return b.eq(dst, Const(1 << (width - 1), width))
    if kind == KIND_DEC:
        return b.eq(dst, Const((1 << (width - 1)) - 1, width))
    if kind == KIND_RESULT:
        return _bit(b, src, 11)  # type: ignore[arg-type]
    return _bit(b, dst, 11)


def _adjust(b: Builder, kind: int, dst: Value, src: Value | None, src2: Value | None) -> Value:
    if kind in (KIND_ADD, KIND_SUB):
        return _bit(b, b.xor(b.xor(src2, src), dst), 4)  # type: ignore[arg-type]
    if kind == KIND_LOGIC:
        return Const(0, 1)
    if kind == KIND_INC:
        return b.eq(b.and_(dst, Const(0xF, dst.width)), Const(0, dst.width))
    if kind == KIND_DEC:
        return b.eq(b.and_(dst, Const(0xF, dst.width)), Const(0xF, dst.width))
    if kind == KIND_RESULT:
        return _bit(b, src, 4)  # type: ignore[arg-type]
    return _bit(b, dst, 4)


def _flag(b: Builder, kind: int, name: str, dst: Value, src: Value | None, src2: Value | None) -> Value:
    if kind == KIND_EFLAGS:
        bit = {"c": 0, "p": 2, "a": 4, "z": 6, "s": 7, "o": 11}[name]
        return _bit(b, dst, bit)
    if name == "c":
        return _carry(b, kind, dst, src, src2)
    if name == "o":
        return _overflow(b, kind, dst, src, src2)
    if name == "a":
        return _adjust(b, kind, dst, src, src2)
    if name == "z":
        return b.eq(dst, Const(0, dst.width))
    if name == "s":
        return _sign(b, dst)
    return _parity(b, dst)


def arith_flags(b: Builder, kind: int, dst: Value, src: Value | None, src2: Value | None) -> Value:
    """All six arithmetic flags as a 32-bit value with the bits in their places."""
    if kind == KIND_EFLAGS:
        return b.and_(dst, Const(ARITH_FLAGS, 32))
    result: Value = Const(0, 32)
    for name, bit_mask in (("c", CF), ("p", PF), ("a", AF), ("z", ZF), ("s", SF), ("o", OF)):
        result = b.or_(result, _place(b, _flag(b, kind, name, dst, src, src2), bit_mask))
    return result


def _flag_function(cc_op: int, body: Callable[[Builder, int, Value, Value | None, Value | None], Value],
                   ) -> tuple[Block, tuple[Temp, Temp, Temp], Value]:
    """An IR function (dst, src, src2) -> ``body`` of the operands narrowed to
    the width of ``cc_op`` (0 for ``CcOp.EFLAGS``: materialised flags live in
    the eflags slot)."""
    block = Block(address=0)
    b = Builder(block)
    params = (b.temp(32), b.temp(32), b.temp(32))
    if cc_op == CcOp.EFLAGS:
        return block, params, Const(0, 32)
    kind, size_index = divmod(cc_op, 4)
    width = (8, 16, 32)[size_index]
    dst, src = (_narrow(b, p, width) for p in params[:2])
    src2: Value | None = _narrow(b, params[2], width)
    if kind in (KIND_INC, KIND_DEC, KIND_RESULT):
        src2 = None
        src = params[1]
    return block, params, body(b, kind, dst, src, src2)


def flags_function(cc_op: int) -> tuple[Block, tuple[Temp, Temp, Temp], Value]:
    """Arithmetic flag bits for one ``cc_op`` value: the body of the
    ``flags_compute`` helper in every backend."""
    return _flag_function(cc_op, arith_flags)


def flag_function(cc_op: int, name: str) -> tuple[Block, tuple[Temp, Temp, Temp], Value]:
    """One flag (0 or 1, 32 bits) for one ``cc_op``: the body of the
    ``flag_<name>`` helpers."""
    return _flag_function(
        cc_op, lambda b, kind, dst, src, src2: b.zext(_flag(b, kind, name, dst, src, src2), 32))


# -- reading flags from the lifter ----------------------------------------------------
def _dynamic_flag(ctx: LiftContext, name: str) -> Value:
    """One flag of a lazy state this block did not set."""
    cc = ctx.cc
    cached = cc.dynamic.get(name)
    if cached is None:
        b = ctx.b
        cc_op = ctx.get_slot(Slot.CC_OP)
        computed = b.call(FLAG_HELPERS[name], cc_op, ctx.get_slot(Slot.CC_DST),
                          ctx.get_slot(Slot.CC_SRC), ctx.get_slot(Slot.CC_SRC2))
        held = _bit(b, ctx.get_slot(Slot.EFLAGS), FLAG_BITS[name])
        is_eflags = b.eq(cc_op, Const(CcOp.EFLAGS, 32))
        cached = b.select(is_eflags, held, b.trunc(computed, 1))  # type: ignore[arg-type]
        cc.dynamic[name] = cached
    return cached


def _known(ctx: LiftContext) -> CcState:
    """Make the flags statically known, computing them from the state if need be."""
    cc = ctx.cc
    if cc.kind is None:
        b = ctx.b
        computed = b.call(
            FLAGS_COMPUTE,
            ctx.get_slot(Slot.CC_OP), ctx.get_slot(Slot.CC_DST),
            ctx.get_slot(Slot.CC_SRC), ctx.get_slot(Slot.CC_SRC2),
        )
        # flags_compute gives 0 for CcOp.EFLAGS; the bits are then in the eflags slot.
        is_eflags = b.eq(ctx.get_slot(Slot.CC_OP), Const(CcOp.EFLAGS, 32))
        held = b.and_(ctx.get_slot(Slot.EFLAGS), Const(ARITH_FLAGS, 32))
        value = b.select(is_eflags, held, computed)  # type: ignore[arg-type]
        cc.kind, cc.width, cc.dst, cc.src, cc.src2, cc.plain = KIND_EFLAGS, 32, value, None, None, False
    return cc


def flag(ctx: LiftContext, name: str) -> Value:
    """One arithmetic flag ('c', 'p', 'a', 'z', 's', 'o') as a 1-bit value."""
    cc = ctx.cc
    if cc.kind is None:
        return _dynamic_flag(ctx, name)
    if name == "c" and cc.plain and cc.kind == KIND_SUB:
        return ctx.b.ult(cc.src2, cc.src)  # type: ignore[arg-type]
    if name == "c" and cc.plain and cc.kind == KIND_ADD:
        return ctx.b.ult(cc.dst, cc.src2)  # type: ignore[arg-type]
    return _flag(ctx.b, cc.kind, name, cc.dst, cc.src, cc.src2)  # type: ignore[arg-type]


def eflags_arith(ctx: LiftContext) -> Value:
    """The six arithmetic flags, as EFLAGS bits in a 32-bit value."""
    cc = _known(ctx)
    return arith_flags(ctx.b, cc.kind, cc.dst, cc.src, cc.src2)  # type: ignore[arg-type]


def read_eflags(ctx: LiftContext) -> Value:
    """The whole EFLAGS register."""
    b = ctx.b
    other = b.and_(ctx.get_slot(Slot.EFLAGS), Const(~ARITH_FLAGS & 0xFFFFFFFF, 32))
    return b.or_(other, eflags_arith(ctx))


def write_arith_flags(ctx: LiftContext, arith_bits: Value) -> None:
    """Set the six arithmetic flags from the EFLAGS bits of ``arith_bits``."""
    b = ctx.b
    other = b.and_(ctx.get_slot(Slot.EFLAGS), Const(~ARITH_FLAGS & 0xFFFFFFFF, 32))
    bits = b.and_(arith_bits, Const(ARITH_FLAGS, 32))
    ctx.set_slot(Slot.EFLAGS, b.or_(other, bits))
    ctx.cc.set_eflags(bits)


def condition(ctx: LiftContext, code: int) -> Value:
    """Condition ``code`` (0..15, x86 order) as a 1-bit value."""
    b = ctx.b
    base = _base_condition(ctx, code & ~1)
    return b.not1(base) if code & 1 else base


def _base_condition(ctx: LiftContext, code: int) -> Value:
    b = ctx.b
    cc = ctx.cc
    name = CONDITIONS[code]
    if cc.plain and cc.kind == KIND_SUB:  # compare the operands themselves
        a, s = cc.src2, cc.src
        direct = {"b": Op.ULT, "e": Op.EQ, "be": Op.ULE, "l": Op.SLT, "le": Op.SLE}
        if name in direct:
            return b.compare(direct[name], a, s)  # type: ignore[arg-type]
    if cc.kind == KIND_LOGIC:
        zero = Const(0, cc.width)
        if name in ("b", "o"):
            return Const(0, 1)
        if name == "e":
            return b.eq(cc.dst, zero)  # type: ignore[arg-type]
        if name in ("s", "l"):
            return b.slt(cc.dst, zero)  # type: ignore[arg-type]
        if name in ("be",):
            return b.eq(cc.dst, zero)  # type: ignore[arg-type]
        if name == "le":
            return b.sle(cc.dst, zero)  # type: ignore[arg-type]
    if name == "o":
        return flag(ctx, "o")
    if name == "b":
        return flag(ctx, "c")
    if name == "e":
        return flag(ctx, "z")
    if name == "be":
        return b.or_(flag(ctx, "c"), flag(ctx, "z"))
    if name == "s":
        return flag(ctx, "s")
    if name == "p":
        return flag(ctx, "p")
    if name == "l":
        return b.xor(flag(ctx, "s"), flag(ctx, "o"))
    assert name == "le"
    return b.or_(flag(ctx, "z"), b.xor(flag(ctx, "s"), flag(ctx, "o")))


# -- setting flags from the lifter -------------------------------------------------------
def set_add(ctx: LiftContext, result: Value, a: Value, operand: Value, carry_in: bool = False) -> None:
    ctx.cc.set(KIND_ADD, result.width, result, operand, a, plain=not carry_in)


def set_sub(ctx: LiftContext, result: Value, a: Value, operand: Value, borrow_in: bool = False) -> None:
    ctx.cc.set(KIND_SUB, result.width, result, operand, a, plain=not borrow_in)


def set_logic(ctx: LiftContext, result: Value) -> None:
    ctx.cc.set(KIND_LOGIC, result.width, result)


def set_incdec(ctx: LiftContext, result: Value, increment: bool) -> None:
    carry = ctx.b.zext(flag(ctx, "c"), 32)
    ctx.cc.set(KIND_INC if increment else KIND_DEC, result.width, result, carry)


def set_result(ctx: LiftContext, result: Value, carry: Value, overflow: Value,
               adjust: Value | None = None) -> None:
    """SF/ZF/PF from ``result``; CF, OF (and AF, else 0) given as 1-bit values."""
    b = ctx.b
    bits = b.or_(_place(b, carry, CF), _place(b, overflow, OF))
    if adjust is not None:
        bits = b.or_(bits, _place(b, adjust, AF))
    ctx.cc.set(KIND_RESULT, result.width, result, bits)

