"""The cold tier: IR becomes Python source, compiled once with ``compile()``.

Guest registers, EFLAGS and the lazy-flag slots live in Python locals named
after them while a block runs; other state slots are read and written in the
state struct (``R``, a uint32 memoryview).  A block function returns the
index of the exit it took; direct exits are links the translation cache
chains, and an indirect exit has stored the new EIP first.

Faults are Python exceptions (``GuestFault``).  The block's handler finds the
faulting line, writes back the registers that instructions before it had
changed (the lifter guarantees an instruction changes none before it can
fault), records the instruction index, and re-raises.  The normal path pays
nothing for this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbt.cpu.state import SLOT_NAMES, Slot
from dbt.ir import COMPARE, CONVERT, Block, Const, Helper, Inst, Op, Temp, Value, mask
from dbt.vmm.faults import BlockInterrupted, GuestFault

# Slots kept in locals inside a block.
CACHED_SLOTS = frozenset(
    list(range(8)) + [Slot.EFLAGS, Slot.CC_OP, Slot.CC_DST, Slot.CC_SRC, Slot.CC_SRC2]
)


@dataclass(frozen=True, slots=True)
class Exit:
    """One way out of a block: ``target`` for a direct (linkable) exit, or None
    when the block stored EIP itself; ``insns`` retired when taking it."""

    target: int | None
    insns: int
    reason: str | None = None


@dataclass
class CompiledBlock:
    function: Callable[[], int]
    source: str
    exits: list[Exit]
    line_info: dict[int, tuple[int, tuple[tuple[int, str], ...]]] = field(repr=False, default_factory=dict)


def _local(slot: int) -> str:
    return SLOT_NAMES[slot]


class _Emitter:
    def __init__(self, block: Block, comments: dict[int, str] | None) -> None:
        self.block = block
        self.comments = comments or {}
        self.lines: list[str] = []
        self.exits: list[Exit] = []
        self.helpers: dict[str, Helper] = {}
        self.accessors: set[str] = set()  # ld8 .. st32 used by the block
        self.line_info: dict[int, tuple[int, tuple[tuple[int, str], ...]]] = {}
        self.index = 0  # current guest instruction
        # Per cached slot: "clean" (local equals the struct), "dirty" (local is
        # newer) or absent (local not valid; read the struct).
        self.status: dict[int, str] = {}
        self._dirty: tuple[tuple[int, str], ...] = ()

    # -- helpers ------------------------------------------------------------------
    def emit(self, text: str, indent: int = 2) -> None:
        self.lines.append("    " * indent + text)
        # Line numbers are 1-based and the source starts with the def line.
        self.line_info[len(self.lines) + 1] = (self.index, self._dirty)

    def _mark(self, slot: int, state: str | None) -> None:
        """Change a slot's status (None: forget it) and the dirty set with it."""
        if state is None:
            self.status.pop(slot, None)
        else:
            self.status[slot] = state
        self._dirty = tuple((s, _local(s)) for s, st in sorted(self.status.items()) if st == "dirty")

    def value(self, v: Value) -> str:
        if isinstance(v, Const):
            return hex(v.value) if v.value > 9 else str(v.value)
        return f"t{v.index}"

    def writeback(self, indent: int = 2) -> None:
        for slot, state in sorted(self.status.items()):
            if state == "dirty":
                self.emit(f"R[{slot}] = {_local(slot)}", indent)

    # -- lowering -------------------------------------------------------------------
    def lower(self, inst: Inst) -> bool:
        """Emit one IR instruction; False after a terminator."""
        op, dst, args = inst.op, inst.dst, inst.args
        a = [self.value(x) for x in args]
        if op is Op.INSN:
            address, index, _ = inst.aux
            self.index = index
            comment = self.comments.get(index, "")
            self.lines.append(f"        # {address:#010x}: {comment}".rstrip())
            return True
        if op is Op.GET:
            slot = inst.aux
            if slot in CACHED_SLOTS:
                if slot not in self.status:
                    self.emit(f"{_local(slot)} = R[{slot}]")
                    self._mark(slot, "clean")
                self.emit(f"{dst} = {_local(slot)}")
            else:
                self.emit(f"{dst} = R[{slot}]  # {_local(slot)}")
            return True
        if op is Op.SET:
            slot = inst.aux
            if slot in CACHED_SLOTS:
                self.emit(f"{_local(slot)} = {a[0]}")
                if self.status.get(slot) != "dirty":
                    self._mark(slot, "dirty")
            else:
                self.emit(f"R[{slot}] = {a[0]}  # {_local(slot)}")
            return True
        if op is Op.LOAD:
            self.accessors.add(f"ld{inst.aux}")
            self.emit(f"{dst} = ld{inst.aux}({a[0]})")
            return True
        if op is Op.STORE:
            self.accessors.add(f"st{inst.aux}")
            self.emit(f"st{inst.aux}({a[0]}, {a[1]})")
            return True
        if op is Op.CALL:
            return self._call(inst, a)
        if op is Op.RAISE:
            self.emit(self._raise(inst.aux))
            return False
        if op is Op.RAISE_IF:
            self.emit(f"if {a[0]}: {self._raise(inst.aux)}")
            return True
        if op is Op.EXIT:
            self._exit(Exit(inst.aux, self.index + 1), None)
            return False
        if op is Op.EXIT_IF:
            self.emit(f"if {a[0]}:")
            self._exit(Exit(inst.aux, self.index + 1), None, indent=3)
            return True
        if op is Op.EXIT_INDIRECT:
            self._exit(Exit(None, self.index + 1, inst.aux), a[0])
            return False
        if op is Op.MONITOR_EXIT_IF:
            target, reason = inst.aux
            self.emit(f"if {a[0]}:")
            self._exit(Exit(None, self.index + 1, reason), str(target), indent=3)
            return True
        assert dst is not None
        self.emit(f"{dst} = {self._expression(inst, a)}")
        return True

    def _raise(self, aux: tuple[int, int | None, int]) -> str:
        vector, code, flavor = aux
        return f"raise GuestFault({vector}, {code}, {flavor})"

    def _exit(self, exit_: Exit, target: str | None, indent: int = 2) -> None:
        # An exit leaves the locals in the struct.
        for slot, state in sorted(self.status.items()):
            if state == "dirty":
                self.emit(f"R[{slot}] = {_local(slot)}", indent)
        if target is not None:
            self.emit(f"R[{Slot.EIP}] = {target}", indent)
        self.emit(f"return {len(self.exits)}", indent)
        self.exits.append(exit_)

    def _call(self, inst: Inst, a: list[str]) -> bool:
        helper: Helper = inst.aux
        self.helpers[helper.name] = helper
        if helper.reads_state or helper.writes_state:
            self.writeback()
            for slot in list(self.status):
                self._mark(slot, "clean")
        call = f"H_{helper.name}({', '.join(a)})"
        self.emit(f"{inst.dst} = {call}" if inst.dst is not None else call)
        if helper.writes_state:
            for slot in list(self.status):
                self._mark(slot, None)
        return True

    def _expression(self, inst: Inst, a: list[str]) -> str:
        op = inst.op
        width = inst.args[-1].width if op is Op.SELECT else inst.args[0].width
        m = hex(mask(width))
        sign = hex(1 << (width - 1)) if width > 1 else "1"
        if op is Op.ADD:
            return f"({a[0]} + {a[1]}) & {m}"
        if op is Op.SUB:
            return f"({a[0]} - {a[1]}) & {m}"
        if op is Op.MUL:
            return f"({a[0]} * {a[1]}) & {m}"
        if op is Op.AND:
            return f"{a[0]} & {a[1]}"
        if op is Op.OR:
            return f"{a[0]} | {a[1]}"
        if op is Op.XOR:
            return f"{a[0]} ^ {a[1]}"
        if op is Op.SHL:
            return f"({a[0]} << {a[1]}) & {m}"
        if op is Op.LSHR:
            return f"{a[0]} >> {a[1]}"
        if op is Op.ASHR:
            return f"((({a[0]} ^ {sign}) - {sign}) >> {a[1]}) & {m}"
        if op is Op.UDIV:
            return f"{a[0]} // {a[1]}"
        if op is Op.UREM:
            return f"{a[0]} % {a[1]}"
        if op is Op.SDIV:
            return f"_sdiv({a[0]}, {a[1]}, {width})"
        if op is Op.SREM:
            return f"_srem({a[0]}, {a[1]}, {width})"
        if op is Op.NOT:
            return f"{a[0]} ^ {m}"
        if op is Op.NEG:
            return f"-{a[0]} & {m}"
        if op is Op.CTPOP:
            return f"{a[0]}.bit_count()"
        if op is Op.CTTZ:
            return f"(({a[0]} & -{a[0]}).bit_length() - 1) if {a[0]} else {width}"
        if op is Op.CTLZ:
            return f"{width} - {a[0]}.bit_length()"
        if op in CONVERT:
            target = inst.aux
            if op is Op.ZEXT:
                return f"+{a[0]}" if width == 1 else a[0]
            if op is Op.TRUNC:
                return f"{a[0]} & {hex(mask(target))}"
            return f"(({a[0]} ^ {sign}) - {sign}) & {hex(mask(target))}"
        if op in COMPARE:
            if op in (Op.SLT, Op.SLE):
                symbol = "<" if op is Op.SLT else "<="
                return f"({a[0]} ^ {sign}) {symbol} ({a[1]} ^ {sign})"
            symbol = {Op.EQ: "==", Op.NE: "!=", Op.ULT: "<", Op.ULE: "<="}[op]
            return f"{a[0]} {symbol} {a[1]}"
        if op is Op.SELECT:
            return f"{a[1]} if {a[0]} else {a[2]}"
        raise AssertionError(f"no Python lowering for {op}")


@dataclass(frozen=True)
class Runtime:
    """What generated code refers to by name: the state view, memory
    accessors and helper implementations."""

    slots: Any  # memoryview of the CPU state as uint32
    loads: dict[int, Callable[[int], int]]
    stores: dict[int, Callable[[int, int], None]]
    helpers: dict[str, Callable[..., Any]]


def _sdiv(a: int, b: int, width: int) -> int:
    from dbt.ir import evaluate

    return evaluate(Op.SDIV, width, (a, b))


def _srem(a: int, b: int, width: int) -> int:
    from dbt.ir import evaluate

    return evaluate(Op.SREM, width, (a, b))


def compile_block(block: Block, runtime: Runtime, comments: dict[int, str] | None = None) -> CompiledBlock:
    """Generate, compile and bind the Python function for ``block``."""
    emitter = _Emitter(block, comments)
    for inst in block.insts:
        if not emitter.lower(inst):
            break
    name = f"block_{block.address:08x}"
    defaults = ["R=R"]
    defaults += [f"{name}={name}" for name in sorted(emitter.accessors)]
    defaults += [f"H_{h}=H_{h}" for h in sorted(emitter.helpers)]
    header = f"def {name}({', '.join(defaults)}):"
    body = ["    try:"] + emitter.lines + [
        "    except BlockInterrupted as fault:",
        "        fault.locate(R, locals(), LINES)",
        "        raise",
    ]
    source = "\n".join([header] + body) + "\n"
    namespace: dict[str, Any] = {
        "R": runtime.slots,
        "GuestFault": GuestFault,
        "BlockInterrupted": BlockInterrupted,
        "LINES": emitter.line_info,
        "_sdiv": _sdiv,
        "_srem": _srem,
    }
    for width in (8, 16, 32):
        namespace[f"ld{width}"] = runtime.loads[width]
        namespace[f"st{width}"] = runtime.stores[width]
    for helper_name in emitter.helpers:
        namespace[f"H_{helper_name}"] = runtime.helpers[helper_name]
    # The try line shifts the body by one; line_info keys were computed for
    # the body without it.
    emitter.line_info = {line + 1: info for line, info in emitter.line_info.items()}
    namespace["LINES"] = emitter.line_info
    code = compile(source, f"<dbt {name}>", "exec")
    exec(code, namespace)
    return CompiledBlock(namespace[name], source, emitter.exits, emitter.line_info)


def compile_function(block: Block, params: tuple[Temp, ...], result: Value, name: str) -> Callable[..., int]:
    """Compile an IR function (no state access) to a Python function."""
    emitter = _Emitter(block, None)
    for inst in block.insts:
        emitter.lower(inst)
    args = ", ".join(str(p) for p in params)
    lines = [f"def {name}({args}):"] + [line[4:] for line in emitter.lines]
    lines.append(f"    return {emitter.value(result)}")
    namespace: dict[str, Any] = {"_sdiv": _sdiv, "_srem": _srem}
    exec(compile("\n".join(lines) + "\n", f"<dbt {name}>", "exec"), namespace)
    return namespace[name]
