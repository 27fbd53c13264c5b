"""dbt's intermediate representation: linear, typed, three-address.

A translated block is a flat list of ``Inst``.  Values are ``Temp`` (defined
once, by one instruction) or ``Const``; every value has a width in bits
(1, 8, 16, 32 or 64) and is unsigned: signedness belongs to the operation
(``SLT``, ``ASHR``, ``SEXT``, ``SDIV``), never to the value.  There are no
internal branches.  Control leaves a block only through exit instructions
(``EXIT``, ``EXIT_IF``, ``EXIT_INDIRECT``, ``MONITOR_EXIT_IF``) and faults (``RAISE``,
``RAISE_IF``, or a ``LOAD``/``STORE``/``CALL`` that faults), so a backend
lowers the list in one pass.

Conventions the lifter guarantees and backends rely on:

* ``INSN`` opens every guest instruction; within one instruction all ``SET``
  instructions come after every instruction that can fault.  So at any fault
  the guest registers still hold their values from before the instruction.
* Shift counts are less than the operand width; divisors are non-zero and
  quotients fit (the lifter raises #DE first).
* The state is an array of 32-bit slots (``dbt.cpu.state.Slot``); ``GET`` and
  ``SET`` move whole slots.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WIDTHS = (1, 8, 16, 32, 64)

# How an exception relates to its instruction: a FAULT reports the address
# of the instruction (which did not happen); a TRAP the address after it (it
# completed); a SOFTWARE interrupt (INT n, INT3, INTO) is a trap that is also
# subject to the gate's DPL check.
FAULT, TRAP, SOFTWARE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Temp:
    index: int
    width: int

    def __str__(self) -> str:
        return f"t{self.index}"


@dataclass(frozen=True, slots=True)
class Const:
    value: int
    width: int

    def __post_init__(self) -> None:
        if not 0 <= self.value < (1 << self.width):
            raise ValueError(f"constant {self.value:#x} does not fit in {self.width} bits")

    def __str__(self) -> str:
        return f"{self.value:#x}" if self.value > 9 else str(self.value)


Value = Temp | Const


class Op(enum.Enum):
    # state
    GET = "get"  # dst:32 <- slot aux
    SET = "set"  # slot aux <- a:32
    # arithmetic, all operands and result of one width, wrapping
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    AND = "and"
    OR = "or"
    XOR = "xor"
    SHL = "shl"  # count < width
    LSHR = "lshr"
    ASHR = "ashr"
    UDIV = "udiv"  # divisor != 0
    UREM = "urem"
    SDIV = "sdiv"  # truncating toward zero, divisor != 0, no overflow
    SREM = "srem"
    NOT = "not"
    NEG = "neg"
    CTPOP = "ctpop"  # population count, result of the operand's width
    CTTZ = "cttz"  # count of trailing zeros; width when the operand is 0
    CTLZ = "ctlz"  # count of leading zeros; width when the operand is 0
    # width changes: aux is the destination width
    ZEXT = "zext"
    SEXT = "sext"
    TRUNC = "trunc"
    # comparisons, result width 1
    EQ = "eq"
    NE = "ne"
    ULT = "ult"
    ULE = "ule"
    SLT = "slt"
    SLE = "sle"
    SELECT = "select"  # dst <- a ? b : c
    # guest memory through segmentation-free linear addresses (the MMU)
    LOAD = "load"  # dst:aux <- [a:32]
    STORE = "store"  # [a:32] <- b:aux
    # out-of-line code
    CALL = "call"  # dst? <- helper aux(args)
    # control
    INSN = "insn"  # aux = (guest address, index in block, length)
    RAISE = "raise"  # aux = (vector, error code or None, flavor: FAULT, TRAP or SOFTWARE)
    RAISE_IF = "raise_if"  # if a: raise aux
    EXIT = "exit"  # jump to constant guest address aux (a chainable link)
    EXIT_IF = "exit_if"  # if a: jump to constant guest address aux (a link)
    EXIT_INDIRECT = "exit_indirect"  # jump to a; aux = reason or None (never chained)
    # if a: return to the monitor, to go on at constant address aux[0]; aux[1] = reason
    MONITOR_EXIT_IF = "monitor_exit_if"


BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.AND, Op.OR, Op.XOR, Op.SHL, Op.LSHR,
                    Op.ASHR, Op.UDIV, Op.UREM, Op.SDIV, Op.SREM})
UNARY = frozenset({Op.NOT, Op.NEG, Op.CTPOP, Op.CTTZ, Op.CTLZ})
CONVERT = frozenset({Op.ZEXT, Op.SEXT, Op.TRUNC})
COMPARE = frozenset({Op.EQ, Op.NE, Op.ULT, Op.ULE, Op.SLT, Op.SLE})
PURE = BINARY | UNARY | CONVERT | COMPARE | {Op.SELECT}
TERMINATORS = frozenset({Op.EXIT, Op.EXIT_INDIRECT, Op.RAISE})


@dataclass(frozen=True, slots=True)
class Helper:
    """An out-of-line operation a block may call.

    Helpers implement what is not instruction arithmetic: system
    operations that consult tables in guest memory, devices, CPUID.  A helper
    that reads or writes the CPU state sees it in the state struct, so a
    backend writes its cached registers back before the call and reloads them
    after.
    """

    name: str
    arg_widths: tuple[int, ...]
    result_width: int | None
    reads_state: bool = False
    writes_state: bool = False
    may_fault: bool = False
    pure: bool = False  # depends on its arguments only: removable when unused


@dataclass(slots=True)
class Inst:
    op: Op
    dst: Temp | None
    args: tuple[Value, ...]
    aux: Any = None

    def __str__(self) -> str:
        args = ", ".join(str(a) for a in self.args)
        op = self.op
        if op is Op.INSN:
            address, index, length = self.aux
            return f"---- {address:#010x} insn {index} ({length} bytes)"
        if op is Op.GET:
            return f"{self.dst}:{self.dst.width} = get {_slot_name(self.aux)}"  # type: ignore[union-attr]
        if op is Op.SET:
            return f"set {_slot_name(self.aux)}, {args}"
        if op is Op.STORE:
            return f"store.{self.aux} [{self.args[0]}], {self.args[1]}"
        if op is Op.CALL:
            call = f"call {self.aux.name}({args})"
            return f"{self.dst}:{self.dst.width} = {call}" if self.dst else call
        if op in (Op.RAISE, Op.RAISE_IF):
            vector, code, flavor = self.aux
            what = f"#{vector}" + (f"({code:#x})" if code is not None else "")
            what += {FAULT: "", TRAP: " trap", SOFTWARE: " int"}[flavor]
            return f"raise_if {args}, {what}" if op is Op.RAISE_IF else f"raise {what}"
        if op is Op.EXIT:
            return f"exit {self.aux:#010x}"
        if op is Op.EXIT_IF:
            return f"exit_if {args}, {self.aux:#010x}"
        if op is Op.EXIT_INDIRECT:
            return f"exit_indirect {args}" + (f" ({self.aux})" if self.aux else "")
        if op is Op.MONITOR_EXIT_IF:
            return f"monitor_exit_if {args}, {self.aux[0]:#010x} ({self.aux[1]})"
        suffix = f".{self.aux}" if op in CONVERT or op is Op.LOAD else ""
        return f"{self.dst}:{self.dst.width} = {op.value}{suffix} {args}"  # type: ignore[union-attr]


def _slot_name(slot: int) -> str:
    from dbt.cpu.state import SLOT_NAMES

    return SLOT_NAMES[slot]


def mask(width: int) -> int:
    return (1 << width) - 1


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


def _sdiv(a: int, b: int, width: int) -> int:
    sa, sb = _signed(a, width), _signed(b, width)
    quotient = abs(sa) // abs(sb)
    return (-quotient if (sa < 0) != (sb < 0) else quotient) & mask(width)


def _srem(a: int, b: int, width: int) -> int:
    sa, sb = _signed(a, width), _signed(b, width)
    remainder = abs(sa) % abs(sb)
    return (-remainder if sa < 0 else remainder) & mask(width)


# Constant folding: the meaning of each pure operation on Python integers.
_FOLD: dict[Op, Callable[..., int]] = {
    Op.ADD: lambda w, a, b: (a + b) & mask(w),
    Op.SUB: lambda w, a, b: (a - b) & mask(w),
    Op.MUL: lambda w, a, b: (a * b) & mask(w),
    Op.AND: lambda w, a, b: a & b,
    Op.OR: lambda w, a, b: a | b,
    Op.XOR: lambda w, a, b: a ^ b,
    Op.SHL: lambda w, a, b: (a << b) & mask(w),
    Op.LSHR: lambda w, a, b: a >> b,
    Op.ASHR: lambda w, a, b: (_signed(a, w) >> b) & mask(w),
    Op.UDIV: lambda w, a, b: a // b,
    Op.UREM: lambda w, a, b: a % b,
    Op.SDIV: lambda w, a, b: _sdiv(a, b, w),
    Op.SREM: lambda w, a, b: _srem(a, b, w),
    Op.NOT: lambda w, a: a ^ mask(w),
    Op.NEG: lambda w, a: -a & mask(w),
    Op.CTPOP: lambda w, a: a.bit_count(),
    Op.CTTZ: lambda w, a: (a & -a).bit_length() - 1 if a else w,
    Op.CTLZ: lambda w, a: w - a.bit_length(),
    Op.EQ: lambda w, a, b: int(a == b),
    Op.NE: lambda w, a, b: int(a != b),
    Op.ULT: lambda w, a, b: int(a < b),
    Op.ULE: lambda w, a, b: int(a <= b),
    Op.SLT: lambda w, a, b: int(_signed(a, w) < _signed(b, w)),
    Op.SLE: lambda w, a, b: int(_signed(a, w) <= _signed(b, w)),
}


def evaluate(op: Op, width: int, args: tuple[int, ...], aux: Any = None) -> int:
    """The value of a pure operation on constants (``width``: operand width)."""
    if op is Op.SELECT:
        return args[1] if args[0] else args[2]
    if op is Op.ZEXT:
        return args[0]
    if op is Op.SEXT:
        return _signed(args[0], width) & mask(aux)
    if op is Op.TRUNC:
        return args[0] & mask(aux)
    return _FOLD[op](width, *args)


@dataclass
class Block:
    """The IR of one translated block and what the lifter learned about it."""

    address: int
    insts: list[Inst] = field(default_factory=list)
    insn_count: int = 0
    size_bytes: int = 0
    temp_count: int = 0

    def listing(self) -> str:
        lines = []
        for inst in self.insts:
            lines.append(str(inst) if inst.op is Op.INSN else f"    {inst}")
        return "\n".join(lines)


# A comparison's negation: (operation, operands swapped).
_INVERSE = {
    Op.EQ: (Op.NE, False), Op.NE: (Op.EQ, False),
    Op.ULT: (Op.ULE, True), Op.ULE: (Op.ULT, True),
    Op.SLT: (Op.SLE, True), Op.SLE: (Op.SLT, True),
}


# Instructions after which the state may be observed (an exit, a fault, a
# helper): a SET before them is live.
_OBSERVERS = frozenset({Op.LOAD, Op.STORE, Op.CALL, Op.RAISE, Op.RAISE_IF, Op.EXIT, Op.EXIT_IF,
                        Op.EXIT_INDIRECT, Op.MONITOR_EXIT_IF})


def eliminate_dead_code(block: Block) -> int:
    """Remove SETs that a later SET of the same slot overwrites before
    anything can observe the state, then pure instructions (and GETs and
    pure helper calls) whose results nobody uses; returns how many went."""
    overwritten: set[int] = set()  # slots set later with no observer in between
    live_insts: list[Inst] = []
    removed = 0
    for inst in reversed(block.insts):
        if inst.op is Op.SET:
            if inst.aux in overwritten:
                removed += 1
                continue
            overwritten.add(inst.aux)
        elif inst.op is Op.GET:
            overwritten.discard(inst.aux)
        elif inst.op in _OBSERVERS and not (inst.op is Op.CALL and inst.aux.pure):
            overwritten.clear()
        live_insts.append(inst)
    live_insts.reverse()
    used: set[int] = set()
    kept: list[Inst] = []
    for inst in reversed(live_insts):
        removable = inst.op in PURE or inst.op is Op.GET or (inst.op is Op.CALL and inst.aux.pure)
        if removable and inst.dst is not None and inst.dst.index not in used:
            removed += 1
            continue
        for arg in inst.args:
            if isinstance(arg, Temp):
                used.add(arg.index)
        kept.append(inst)
    kept.reverse()
    block.insts = kept
    return removed


class Builder:
    """Appends instructions to a block; folds operations on constants."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self._definitions: dict[int, Inst] = {}

    # -- values -------------------------------------------------------------
    def temp(self, width: int) -> Temp:
        temp = Temp(self.block.temp_count, width)
        self.block.temp_count += 1
        return temp

    @staticmethod
    def const(value: int, width: int) -> Const:
        return Const(value & mask(width), width)

    def _emit(self, op: Op, width: int | None, args: tuple[Value, ...], aux: Any = None) -> Temp | None:
        dst = self.temp(width) if width is not None else None
        inst = Inst(op, dst, args, aux)
        self.block.insts.append(inst)
        if dst is not None:
            self._definitions[dst.index] = inst
        return dst

    def _pure(self, op: Op, width: int, args: tuple[Value, ...], aux: Any = None) -> Value:
        operand_width = args[-1].width if op is Op.SELECT else args[0].width
        if all(isinstance(a, Const) for a in args):
            value = evaluate(op, operand_width, tuple(a.value for a in args), aux)  # type: ignore[union-attr]
            return Const(value, width)
        if op in BINARY or op in COMPARE:
            if args[0].width != args[1].width:
                raise TypeError(f"{op.value}: operand widths {args[0].width} and {args[1].width}")
        simplified = self._simplify(op, width, args)
        if simplified is not None:
            return simplified
        result = self._emit(op, width, args, aux)
        assert result is not None
        return result

    @staticmethod
    def _simplify(op: Op, width: int, args: tuple[Value, ...]) -> Value | None:
        """Identities that keep generated code short; never changes a value."""
        if op is Op.SELECT and isinstance(args[0], Const):
            return args[1] if args[0].value else args[2]
        if len(args) != 2:
            return None
        a, b = args
        if isinstance(b, Const):
            if b.value == 0 and op in (Op.ADD, Op.SUB, Op.OR, Op.XOR, Op.SHL, Op.LSHR, Op.ASHR):
                return a
            if b.value == mask(width) and op is Op.AND:
                return a
            if b.value == 0 and op is Op.AND:
                return Const(0, width)
        if isinstance(a, Const) and a.value == 0 and op in (Op.ADD, Op.OR, Op.XOR):
            return b
        return None

    # -- operations ---------------------------------------------------------
    def get(self, slot: int) -> Temp:
        result = self._emit(Op.GET, 32, (), int(slot))
        assert result is not None
        return result

    def set(self, slot: int, value: Value) -> None:
        if value.width != 32:
            raise TypeError(f"set of a {value.width}-bit value to a 32-bit slot")
        self._emit(Op.SET, None, (value,), int(slot))

    def binary(self, op: Op, a: Value, b: Value) -> Value:
        return self._pure(op, a.width, (a, b))

    def add(self, a: Value, b: Value) -> Value:
        return self._pure(Op.ADD, a.width, (a, b))

    def sub(self, a: Value, b: Value) -> Value:
        return self._pure(Op.SUB, a.width, (a, b))

    def mul(self, a: Value, b: Value) -> Value:
        return self._pure(Op.MUL, a.width, (a, b))

    def and_(self, a: Value, b: Value) -> Value:
        return self._pure(Op.AND, a.width, (a, b))

    def or_(self, a: Value, b: Value) -> Value:
        return self._pure(Op.OR, a.width, (a, b))

    def xor(self, a: Value, b: Value) -> Value:
        return self._pure(Op.XOR, a.width, (a, b))

    def shl(self, a: Value, b: Value) -> Value:
        return self._pure(Op.SHL, a.width, (a, b))

    def lshr(self, a: Value, b: Value) -> Value:
        return self._pure(Op.LSHR, a.width, (a, b))

    def ashr(self, a: Value, b: Value) -> Value:
        return self._pure(Op.ASHR, a.width, (a, b))

    def udiv(self, a: Value, b: Value) -> Value:
        return self._pure(Op.UDIV, a.width, (a, b))

    def urem(self, a: Value, b: Value) -> Value:
        return self._pure(Op.UREM, a.width, (a, b))

    def sdiv(self, a: Value, b: Value) -> Value:
        return self._pure(Op.SDIV, a.width, (a, b))

    def srem(self, a: Value, b: Value) -> Value:
        return self._pure(Op.SREM, a.width, (a, b))

    def not_(self, a: Value) -> Value:
        return self._pure(Op.NOT, a.width, (a,))

    def neg(self, a: Value) -> Value:
        return self._pure(Op.NEG, a.width, (a,))

    def ctpop(self, a: Value) -> Value:
        return self._pure(Op.CTPOP, a.width, (a,))

    def cttz(self, a: Value) -> Value:
        return self._pure(Op.CTTZ, a.width, (a,))

    def ctlz(self, a: Value) -> Value:
        return self._pure(Op.CTLZ, a.width, (a,))

    def zext(self, a: Value, width: int) -> Value:
        if a.width == width:
            return a
        if a.width > width:
            raise TypeError(f"zext from {a.width} to {width} bits")
        return self._pure(Op.ZEXT, width, (a,), width)

    def sext(self, a: Value, width: int) -> Value:
        if a.width == width:
            return a
        if a.width > width:
            raise TypeError(f"sext from {a.width} to {width} bits")
        return self._pure(Op.SEXT, width, (a,), width)

    def trunc(self, a: Value, width: int) -> Value:
        if a.width == width:
            return a
        if a.width < width:
            raise TypeError(f"trunc from {a.width} to {width} bits")
        return self._pure(Op.TRUNC, width, (a,), width)

    def compare(self, op: Op, a: Value, b: Value) -> Value:
        return self._pure(op, 1, (a, b))

    def eq(self, a: Value, b: Value) -> Value:
        return self._pure(Op.EQ, 1, (a, b))

    def ne(self, a: Value, b: Value) -> Value:
        return self._pure(Op.NE, 1, (a, b))

    def ult(self, a: Value, b: Value) -> Value:
        return self._pure(Op.ULT, 1, (a, b))

    def ule(self, a: Value, b: Value) -> Value:
        return self._pure(Op.ULE, 1, (a, b))

    def slt(self, a: Value, b: Value) -> Value:
        return self._pure(Op.SLT, 1, (a, b))

    def sle(self, a: Value, b: Value) -> Value:
        return self._pure(Op.SLE, 1, (a, b))

    def not1(self, cond: Value) -> Value:
        """The negation of a 1-bit value; a comparison is inverted instead."""
        if isinstance(cond, Temp):
            inst = self._definitions.get(cond.index)
            if inst is not None and inst.op in _INVERSE:
                inverse, swap = _INVERSE[inst.op]
                a, b = inst.args
                return self.compare(inverse, *((b, a) if swap else (a, b)))
        return self.xor(cond, Const(1, 1))

    def select(self, cond: Value, a: Value, b: Value) -> Value:
        if cond.width != 1 or a.width != b.width:
            raise TypeError("select needs a 1-bit condition and equal-width values")
        return self._pure(Op.SELECT, a.width, (cond, a, b))

    def load(self, width: int, address: Value) -> Temp:
        result = self._emit(Op.LOAD, width, (address,), width)
        assert result is not None
        return result

    def store(self, width: int, address: Value, value: Value) -> None:
        if value.width != width:
            raise TypeError(f"store.{width} of a {value.width}-bit value")
        self._emit(Op.STORE, None, (address, value), width)

    def call(self, helper: Helper, *args: Value) -> Value | None:
        if tuple(a.width for a in args) != helper.arg_widths:
            raise TypeError(f"call {helper.name}: argument widths {[a.width for a in args]}")
        return self._emit(Op.CALL, helper.result_width, tuple(args), helper)

    def insn(self, address: int, index: int, length: int) -> None:
        self._emit(Op.INSN, None, (), (address, index, length))

    def raise_(self, vector: int, error_code: int | None = None, flavor: int = FAULT) -> None:
        self._emit(Op.RAISE, None, (), (vector, error_code, flavor))

    def raise_if(self, cond: Value, vector: int, error_code: int | None = None,
                 flavor: int = FAULT) -> None:
        if isinstance(cond, Const):
            if cond.value:
                self.raise_(vector, error_code, flavor)
            return
        self._emit(Op.RAISE_IF, None, (cond,), (vector, error_code, flavor))

    def exit(self, target: int) -> None:
        self._emit(Op.EXIT, None, (), target & 0xFFFFFFFF)

    def exit_if(self, cond: Value, target: int) -> None:
        if isinstance(cond, Const):
            if cond.value:
                self.exit(target)
            return
        self._emit(Op.EXIT_IF, None, (cond,), target & 0xFFFFFFFF)

    def exit_indirect(self, target: Value, reason: str | None = None) -> None:
        self._emit(Op.EXIT_INDIRECT, None, (target,), reason)

    def monitor_exit_if(self, cond: Value, target: int, reason: str) -> None:
        """If ``cond``: return to the monitor (``reason``), which goes on at ``target``."""
        if isinstance(cond, Const):
            if cond.value:
                self.exit_indirect(Const(target & 0xFFFFFFFF, 32), reason)
            return
        self._emit(Op.MONITOR_EXIT_IF, None, (cond,), (target & 0xFFFFFFFF, reason))
