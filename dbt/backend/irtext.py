"""LLVM IR written as text: the builder the hot tier's region compiler uses.

llvmlite's IR objects (``llvmlite.ir``) make an object per instruction,
operand and name, and render them with ``str()``; for the region modules
of the compute guest that cost 15 µs a line, 0.2 s of its 0.76 s of
compiling.  This builder keeps the shape of ``llvmlite.ir.IRBuilder`` (a
function of basic blocks, a builder standing at the end of one) for the
small subset regions need, but every instruction is formatted into its
line as it is built.  The text goes to ``llvmlite.binding.parse_assembly``
as before.

Pointers are LLVM's opaque ``ptr``; a pointer value still carries the type
it points to, so ``load`` knows its result type and ``bitcast`` between
pointer types is free (no instruction).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class Type:
    """An LLVM type: an integer of ``width`` bits, a pointer to ``pointee``,
    or a function type (``result``, ``params``)."""

    __slots__ = ("name", "width", "pointee", "result", "params", "_pointer")

    def __init__(self, name: str, width: int = 0, pointee: Type | None = None,
                 result: Type | None = None, params: tuple[Type, ...] = ()) -> None:
        self.name = name
        self.width = width
        self.pointee = pointee
        self.result = result
        self.params = params
        self._pointer: Type | None = None

    def as_pointer(self) -> Type:
        if self._pointer is None:
            self._pointer = Type("ptr", pointee=self)
        return self._pointer

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Type({self.name})"


def int_type(width: int) -> Type:
    return Type(f"i{width}", width=width)


def function_type(result: Type, params: Sequence[Type]) -> Type:
    return Type(f"{result} ({', '.join(map(str, params))})", result=result, params=tuple(params))


I1, I8, I16, I32, I64 = (int_type(width) for width in (1, 8, 16, 32, 64))
INT = {1: I1, 8: I8, 16: I16, 32: I32, 64: I64}


class Value:
    """An operand: its type and how it is written (``%t3``, ``42``, a
    constant expression)."""

    __slots__ = ("type", "ref")

    def __init__(self, type: Type, ref: str) -> None:
        self.type = type
        self.ref = ref

    def __str__(self) -> str:
        return f"{self.type.name} {self.ref}"


def const(type: Type, value: int) -> Value:
    return Value(type, str(value))


def pointer_const(address: int, pointee: Type) -> Value:
    """A host address as a pointer constant."""
    return Value(pointee.as_pointer(), f"inttoptr (i64 {address} to ptr)")


def external(name: str, pointee: Type, declarations: set[str], convention: str = "") -> Value:
    """A function the module leaves to the linker: its declaration (of type
    ``pointee``, in ``convention``) joins ``declarations``, which the module
    carries."""
    assert pointee.result is not None
    cc = f"{convention} " if convention else ""
    declarations.add(f"declare {cc}{pointee.result} @{name}({', '.join(map(str, pointee.params))})")
    return Value(pointee.as_pointer(), f"@{name}")


class Block:
    """A basic block: its phis (whose incoming edges may come later), its
    other instructions, and whether a terminator ended it."""

    __slots__ = ("name", "phis", "lines", "is_terminated")

    def __init__(self, name: str) -> None:
        self.name = name
        self.phis: list[Phi] = []
        self.lines: list[str | Switch] = []  # a switch is rendered with the text: its cases come later
        self.is_terminated = False

    @property
    def ref(self) -> str:
        return f"%{self.name}"


class Phi(Value):
    __slots__ = ("incoming",)

    def __init__(self, type: Type, ref: str) -> None:
        super().__init__(type, ref)
        self.incoming: list[tuple[Value, Block]] = []

    def add_incoming(self, value: Value, block: Block) -> None:
        self.incoming.append((value, block))

    def line(self) -> str:
        edges = ", ".join(f"[ {value.ref}, {block.ref} ]" for value, block in self.incoming)
        return f"  {self.ref} = phi {self.type} {edges}"


class Switch:
    """A switch terminator whose cases are added after it is built."""

    __slots__ = ("value", "default", "cases")

    def __init__(self, value: Value, default: Block) -> None:
        self.value = value
        self.default = default
        self.cases: list[tuple[str, Block]] = []

    def add_case(self, value: int | Value, block: Block) -> None:
        self.cases.append((value.ref if isinstance(value, Value) else str(value), block))

    def __str__(self) -> str:
        type_name = self.value.type.name
        cases = " ".join(f"{type_name} {value}, label {block.ref}" for value, block in self.cases)
        return f"  switch {self.value}, label {self.default.ref} [{cases}]"


class Function:
    """A function definition (or, with no blocks, a declaration)."""

    def __init__(self, name: str, type: Type, linkage: str = "", attributes: str = "", convention: str = "") -> None:
        assert type.result is not None
        self.name = name
        self.type = type
        self.linkage = linkage
        self.attributes = attributes
        self.convention = convention  # a calling convention (its callers must name it too)
        self.args = [Value(param, f"%a{index}") for index, param in enumerate(type.params)]
        self.blocks: list[Block] = []
        self._names: dict[str, int] = {}  # blocks and named values share one namespace
        self._values = 0

    @property
    def ref(self) -> str:
        return f"@{self.name}"

    def unique(self, name: str) -> str:
        """``name``, or ``name.N`` if it is taken."""
        seen = self._names.get(name, 0)
        self._names[name] = seen + 1
        return name if not seen else f"{name}.{seen}"

    def append_basic_block(self, name: str) -> Block:
        block = Block(self.unique(name))
        self.blocks.append(block)
        return block

    def fresh(self) -> str:
        self._values += 1
        return f"%t{self._values}"

    def text(self) -> str:
        assert self.type.result is not None
        params = ", ".join(f"{arg.type} {arg.ref}" for arg in self.args)
        head = " ".join(part for part in ("define", self.linkage, self.convention, str(self.type.result)) if part)
        attributes = f" {self.attributes}" if self.attributes else ""
        lines = [f"{head} @{self.name}({params}){attributes} {{"]
        for block in self.blocks:
            lines.append(f"{block.name}:")
            lines.extend(phi.line() for phi in block.phis)
            lines.extend(str(line) for line in block.lines)
        lines.append("}")
        return "\n".join(lines)


class Builder:
    """Appends instructions at the end of one block of a function."""

    def __init__(self, function: Function, block: Block, intrinsics: set[str] | None = None) -> None:
        self.function = function
        self.block = block
        # Declarations of the intrinsics and external functions used, for the module to carry.
        self.intrinsics: set[str] = set() if intrinsics is None else intrinsics

    def position_at_end(self, block: Block) -> None:
        self.block = block

    def _line(self, line: str | Switch) -> None:
        self.block.lines.append(line)

    def _value(self, type: Type, text: str) -> Value:
        ref = self.function.fresh()
        self.block.lines.append(f"  {ref} = {text}")
        return Value(type, ref)

    def _terminate(self, line: str | Switch) -> None:
        self._line(line)
        self.block.is_terminated = True

    # -- arithmetic and comparisons ----------------------------------------------------
    def _binary(self, op: str, a: Value, b: Value) -> Value:
        return self._value(a.type, f"{op} {a}, {b.ref}")

    def add(self, a: Value, b: Value) -> Value:
        return self._binary("add", a, b)

    def sub(self, a: Value, b: Value) -> Value:
        return self._binary("sub", a, b)

    def mul(self, a: Value, b: Value) -> Value:
        return self._binary("mul", a, b)

    def and_(self, a: Value, b: Value) -> Value:
        return self._binary("and", a, b)

    def or_(self, a: Value, b: Value) -> Value:
        return self._binary("or", a, b)

    def xor(self, a: Value, b: Value) -> Value:
        return self._binary("xor", a, b)

    def shl(self, a: Value, b: Value) -> Value:
        return self._binary("shl", a, b)

    def lshr(self, a: Value, b: Value) -> Value:
        return self._binary("lshr", a, b)

    def ashr(self, a: Value, b: Value) -> Value:
        return self._binary("ashr", a, b)

    def udiv(self, a: Value, b: Value) -> Value:
        return self._binary("udiv", a, b)

    def urem(self, a: Value, b: Value) -> Value:
        return self._binary("urem", a, b)

    def sdiv(self, a: Value, b: Value) -> Value:
        return self._binary("sdiv", a, b)

    def srem(self, a: Value, b: Value) -> Value:
        return self._binary("srem", a, b)

    _UNSIGNED = {"==": "eq", "!=": "ne", "<": "ult", "<=": "ule", ">": "ugt", ">=": "uge"}
    _SIGNED = {"==": "eq", "!=": "ne", "<": "slt", "<=": "sle", ">": "sgt", ">=": "sge"}

    def icmp_unsigned(self, op: str, a: Value, b: Value) -> Value:
        return self._value(I1, f"icmp {self._UNSIGNED[op]} {a}, {b.ref}")

    def icmp_signed(self, op: str, a: Value, b: Value) -> Value:
        return self._value(I1, f"icmp {self._SIGNED[op]} {a}, {b.ref}")

    def not_(self, value: Value) -> Value:
        return self._value(value.type, f"xor {value}, -1")

    def select(self, condition: Value, a: Value, b: Value) -> Value:
        return self._value(a.type, f"select {condition}, {a}, {b}")

    def _intrinsic(self, name: str, value: Value, *extra: Value) -> Value:
        width = value.type.name
        full = f"llvm.{name}.{width}"
        params = ", ".join([width] + [str(v.type) for v in extra])
        self.intrinsics.add(f"declare {width} @{full}({params})")
        arguments = ", ".join(str(v) for v in (value, *extra))
        return self._value(value.type, f"call {width} @{full}({arguments})")

    def ctpop(self, value: Value) -> Value:
        return self._intrinsic("ctpop", value)

    def cttz(self, value: Value, zero_undefined: Value) -> Value:
        return self._intrinsic("cttz", value, zero_undefined)

    def ctlz(self, value: Value, zero_undefined: Value) -> Value:
        return self._intrinsic("ctlz", value, zero_undefined)

    # -- conversions -------------------------------------------------------------------------
    def _cast(self, op: str, value: Value, type: Type) -> Value:
        return self._value(type, f"{op} {value} to {type}")

    def zext(self, value: Value, type: Type) -> Value:
        return self._cast("zext", value, type)

    def sext(self, value: Value, type: Type) -> Value:
        return self._cast("sext", value, type)

    def trunc(self, value: Value, type: Type) -> Value:
        return self._cast("trunc", value, type)

    def bitcast(self, value: Value, type: Type) -> Value:
        """Between pointer types (all ``ptr``): the same value, retyped."""
        assert value.type.pointee is not None and type.pointee is not None
        return Value(type, value.ref)

    # -- memory --------------------------------------------------------------------------------
    def alloca(self, type: Type, name: str) -> Value:
        ref = f"%{self.function.unique(name)}"
        self._line(f"  {ref} = alloca {type}")
        return Value(type.as_pointer(), ref)

    def gep(self, pointer: Value, indices: Iterable[Value]) -> Value:
        """The address of element ``index`` of the array ``pointer`` points into."""
        (index,) = indices
        pointee = pointer.type.pointee
        assert pointee is not None
        return self._value(pointer.type, f"getelementptr {pointee}, ptr {pointer.ref}, {index}")

    def load(self, pointer: Value, align: int | None = None) -> Value:
        pointee = pointer.type.pointee
        assert pointee is not None
        aligned = f", align {align}" if align else ""
        return self._value(pointee, f"load {pointee}, ptr {pointer.ref}{aligned}")

    def store(self, value: Value, pointer: Value, align: int | None = None) -> None:
        aligned = f", align {align}" if align else ""
        self._line(f"  store {value}, ptr {pointer.ref}{aligned}")

    # -- control -------------------------------------------------------------------------------
    def call(self, callee: Value | Function, arguments: Sequence[Value], convention: str = "") -> Value:
        signature = callee.type.pointee if isinstance(callee, Value) else callee.type
        assert signature is not None and signature.result is not None
        cc = f"{convention} " if convention else ""
        text = f"call {cc}{signature.result} {callee.ref}({', '.join(str(a) for a in arguments)})"
        return self._value(signature.result, text)

    def phi(self, type: Type, name: str | None = None) -> Phi:
        phi = Phi(type, f"%{self.function.unique(name)}" if name else self.function.fresh())
        self.block.phis.append(phi)
        return phi

    def branch(self, target: Block) -> None:
        self._terminate(f"  br label {target.ref}")

    def cbranch(self, condition: Value, if_true: Block, if_false: Block) -> None:
        self._terminate(f"  br {condition}, label {if_true.ref}, label {if_false.ref}")

    def switch(self, value: Value, default: Block) -> Switch:
        switch = Switch(value, default)
        self._terminate(switch)
        return switch

    def ret(self, value: Value) -> None:
        self._terminate(f"  ret {value}")

    def unreachable(self) -> None:
        self._terminate("  unreachable")
