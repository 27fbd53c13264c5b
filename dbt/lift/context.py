"""The lifter's view of one instruction: operands, registers, memory, stack.

Register writes are deferred: ``write_reg`` records the new value and
``commit`` emits the ``SET`` instructions when the instruction is complete.
Reads see earlier writes of the same instruction.  So every instruction
faults (on a load, a store, a raise) before it changes a register, which is
what makes exceptions precise without any undo machinery.

Values of state slots are cached across the block: a register read twice is
fetched once, and a register written is read back from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dbt.cpu.state import SEGMENT_FIELDS, Seg, Slot
from dbt.decode import Instruction, Operand, OperandKind
from dbt.ir import Builder, Const, Helper, Value
from dbt.lift.env import TranslationEnv
from dbt.lift.flags import CcState

# name -> (slot, bit offset, width)
REGISTERS: dict[str, tuple[int, int, int]] = {}
for _index, (_r32, _r16, _lo, _hi) in enumerate(
    [("eax", "ax", "al", "ah"), ("ecx", "cx", "cl", "ch"), ("edx", "dx", "dl", "dh"),
     ("ebx", "bx", "bl", "bh"), ("esp", "sp", None, None), ("ebp", "bp", None, None),
     ("esi", "si", None, None), ("edi", "di", None, None)]
):
    REGISTERS[_r32] = (_index, 0, 32)
    REGISTERS[_r16] = (_index, 0, 16)
    if _lo and _hi:
        REGISTERS[_lo] = (_index, 0, 8)
        REGISTERS[_hi] = (_index, 8, 8)

SEGMENTS = {name: Seg[name.upper()] for name in ("es", "cs", "ss", "ds", "fs", "gs")}

# Exception vectors.
DE, DB, NMI, BP, OF_VECTOR, BR, UD, NM, DF, TS, NP, SS_VECTOR, GP, PF, MF, AC = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17)


class Unsupported(Exception):
    """The instruction has no lifter (it raises #UD in the guest)."""


def seg_slot(segment: int, field: str) -> int:
    return Slot.ES_SEL + segment * len(SEGMENT_FIELDS) + SEGMENT_FIELDS.index(field)


@dataclass(slots=True)
class Location:
    """Where an operand lives: a register name or a linear memory address."""

    width: int
    register: str | None = None
    linear: Value | None = None


class LiftContext:
    def __init__(self, builder: Builder, env: TranslationEnv,
                 code_frame: Callable[[], int] | None = None) -> None:
        self.b = builder
        self.env = env
        # The physical page the block's first instruction was fetched from,
        # when the translator can say (a CR3 load compares it with the new mapping).
        self.code_frame = code_frame
        self.cc = CcState()
        self.insn: Instruction = None  # type: ignore[assignment]
        self.index = 0
        self.ended = False
        # The monitor-exit reason of an interrupt shadow the previous
        # instruction opened (STI): the block must not end right after it
        # without telling the monitor.
        self.shadow: str | None = None
        self.lift_errors: list[str] = []
        # The CPL privileged instructions are checked against: the real one,
        # or the guest's while the binary translator rewrites its kernel code.
        self.privilege_level = env.cpl
        # (address, rule name, operation) for each rule the translator applied.
        self.rules_fired: list[tuple[int, str, str]] = []
        self._pending: dict[int, Value] = {}
        self._slot_cache: dict[int, Value] = {}

    # -- instruction framing ----------------------------------------------------
    def begin(self, insn: Instruction | None, index: int, address: int) -> None:
        self.insn = insn  # type: ignore[assignment]
        self.index = index
        self.shadow = None  # this instruction is the one the shadow covers
        self._pending = {}
        self.cc.begin_instruction()
        self.b.insn(address, index, insn.size if insn else 0)

    def snapshot(self) -> tuple:
        """What ``restore`` needs to forget a partly lifted instruction."""
        cc = self.cc
        return (len(self.b.block.insts), dict(self._slot_cache),
                (cc.kind, cc.width, cc.dst, cc.src, cc.src2, cc.plain))

    def restore(self, mark: tuple) -> None:
        length, slot_cache, cc_fields = mark
        del self.b.block.insts[length:]
        self._slot_cache = slot_cache
        self._pending = {}
        cc = self.cc
        cc.kind, cc.width, cc.dst, cc.src, cc.src2, cc.plain = cc_fields
        cc.begin_instruction()

    def commit(self) -> None:
        """Emit the instruction's register writes (after everything that can fault)."""
        for slot, value in self.cc.pending_slots(self.b):
            self._pending[slot] = value
        for slot, value in self._pending.items():
            self.b.set(slot, value)
            self._slot_cache[slot] = value
        self._pending = {}

    def end_block(self) -> None:
        self.ended = True

    # -- state slots ------------------------------------------------------------
    def get_slot(self, slot: int) -> Value:
        if slot in self._pending:
            return self._pending[slot]
        cached = self._slot_cache.get(slot)
        if cached is None:
            cached = self.b.get(slot)
            self._slot_cache[slot] = cached
        return cached

    def set_slot(self, slot: int, value: Value) -> None:
        self._pending[slot] = value

    def call(self, helper: Helper, *args: Value) -> Value | None:
        """Call a helper; if it touches the state, flush this instruction's
        writes first and forget cached slots after."""
        if helper.reads_state or helper.writes_state:
            self.commit()
        result = self.b.call(helper, *args)
        if helper.writes_state:
            self._slot_cache.clear()
            self.cc.forget()
        return result

    # -- registers --------------------------------------------------------------
    def read_reg(self, name: str) -> Value:
        slot, shift, width = REGISTERS[name]
        full = self.get_slot(slot)
        if width == 32:
            return full
        if shift:
            full = self.b.lshr(full, Const(shift, 32))
        return self.b.trunc(full, width)

    def write_reg(self, name: str, value: Value) -> None:
        slot, shift, width = REGISTERS[name]
        if value.width != width:
            raise TypeError(f"write of {value.width} bits to {name}")
        if width == 32:
            self._pending[slot] = value
            return
        b = self.b
        full = self.get_slot(slot)
        keep = b.and_(full, Const(~(((1 << width) - 1) << shift) & 0xFFFFFFFF, 32))
        placed = b.zext(value, 32)
        if shift:
            placed = b.shl(placed, Const(shift, 32))
        self._pending[slot] = b.or_(keep, placed)

    def reg_by_index(self, index: int, width: int) -> str:
        """The name of general register ``index`` (0=eax .. 7=edi) at ``width`` bits."""
        names = {32: "eax ecx edx ebx esp ebp esi edi", 16: "ax cx dx bx sp bp si di",
                 8: "al cl dl bl ah ch dh bh"}[width].split()
        return names[index]

    # -- sizes --------------------------------------------------------------------
    @property
    def operand_bits(self) -> int:
        """Default operand size of the current instruction, prefixes applied."""
        bits = self.env.code_bits
        if self.insn.operand_size_prefix:
            bits = 48 - bits
        return bits

    @property
    def address_bits(self) -> int:
        return self.insn.address_size * 8

    def counter_reg(self) -> str:
        """ECX or CX, by address size (for LOOP, JECXZ and REP)."""
        return "ecx" if self.address_bits == 32 else "cx"

    # -- memory -----------------------------------------------------------------
    def effective_address(self, op: Operand) -> tuple[int, Value]:
        """(segment, offset) of a memory operand, address size applied."""
        b = self.b
        bits = self.address_bits
        offset: Value = Const(op.disp & ((1 << bits) - 1), bits)
        if op.base:
            offset = b.add(offset, self._address_reg(op.base, bits))
        if op.index:
            index = self._address_reg(op.index, bits)
            if op.scale > 1:
                index = b.shl(index, Const(op.scale.bit_length() - 1, bits))
            offset = b.add(offset, index)
        offset = b.zext(offset, 32)
        if op.segment:
            segment = SEGMENTS[op.segment]
        elif self.insn.segment_override:
            segment = SEGMENTS[self.insn.segment_override]
        elif op.base in ("esp", "ebp", "sp", "bp"):
            segment = Seg.SS
        else:
            segment = Seg.DS
        return segment, offset

    def _address_reg(self, name: str, bits: int) -> Value:
        if name == "eip":
            return Const(self.insn.next_address, 32)
        value = self.read_reg(name)
        if value.width != bits:
            raise Unsupported(f"{bits}-bit address with register {name}")
        return value

    def linear(self, segment: int, offset: Value, size_bytes: int, write: bool) -> Value:
        """Apply segmentation: the linear address, after the limit and rights check."""
        address = self._segmented(segment, offset, size_bytes, write)
        if self.env.align_check and size_bytes > 1:
            misaligned = self.b.and_(address, Const(min(size_bytes, 8) - 1, 32))
            self.b.raise_if(self.b.ne(misaligned, Const(0, 32)), AC, 0)
        return address

    def _segmented(self, segment: int, offset: Value, size_bytes: int, write: bool) -> Value:
        b = self.b
        if self.env.flat and segment in (Seg.CS, Seg.SS, Seg.DS, Seg.ES) and not (
            write and segment == Seg.CS
        ):
            return offset
        vector = SS_VECTOR if segment == Seg.SS else GP
        lo = self.get_slot(seg_slot(segment, "wlo" if write else "rlo"))
        hi = self.get_slot(seg_slot(segment, "whi" if write else "rhi"))
        last = b.add(offset, Const(size_bytes - 1, 32))
        outside = b.or_(b.or_(b.ult(offset, lo), b.ult(hi, last)), b.ult(last, offset))
        b.raise_if(outside, vector, 0)
        return b.add(offset, self.get_slot(seg_slot(segment, "base")))

    def load(self, segment: int, offset: Value, width: int) -> Value:
        return self.b.load(width, self.linear(segment, offset, width // 8, False))

    def store(self, segment: int, offset: Value, value: Value) -> None:
        self.b.store(value.width, self.linear(segment, offset, value.width // 8, True), value)

    # -- operands -----------------------------------------------------------------
    def location(self, op: Operand, write: bool = False) -> Location:
        width = op.size * 8
        if op.kind is OperandKind.REG:
            if op.reg not in REGISTERS:
                raise Unsupported(f"register operand {op.reg}")
            return Location(width, register=op.reg)
        if op.kind is OperandKind.MEM:
            segment, offset = self.effective_address(op)
            return Location(width, linear=self.linear(segment, offset, op.size, write))
        raise Unsupported("immediate used as a location")

    def read(self, where: Location) -> Value:
        if where.register:
            return self.read_reg(where.register)
        assert where.linear is not None
        return self.b.load(where.width, where.linear)

    def write(self, where: Location, value: Value) -> None:
        if where.register:
            self.write_reg(where.register, value)
        else:
            assert where.linear is not None
            self.b.store(where.width, where.linear, value)

    def value(self, op: Operand, width: int | None = None) -> Value:
        """Read an operand; an immediate is sign-extended to ``width`` bits if given."""
        if op.kind is OperandKind.IMM:
            bits = width or op.size * 8
            return Const(op.imm & ((1 << bits) - 1), bits)
        return self.read(self.location(op))

    # -- stack --------------------------------------------------------------------
    def _stack_pointer(self) -> str:
        return "esp" if self.env.stack_bits == 32 else "sp"

    def push(self, value: Value) -> None:
        """Push ``value`` (16 or 32 bits); ESP changes at commit, reads see it at once."""
        b = self.b
        sp_name = self._stack_pointer()
        sp = self.read_reg(sp_name)
        new_sp = b.sub(sp, Const(value.width // 8, sp.width))
        self.store(Seg.SS, b.zext(new_sp, 32), value)
        self.write_reg(sp_name, new_sp)

    def pop(self, width: int) -> Value:
        b = self.b
        sp_name = self._stack_pointer()
        sp = self.read_reg(sp_name)
        value = self.load(Seg.SS, b.zext(sp, 32), width)
        self.write_reg(sp_name, b.add(sp, Const(width // 8, sp.width)))
        return value

    def stack_release(self, size_bytes: int) -> None:
        """Move the stack pointer up by ``size_bytes`` (what a pop does after its read)."""
        sp_name = self._stack_pointer()
        sp = self.read_reg(sp_name)
        self.write_reg(sp_name, self.b.add(sp, Const(size_bytes, sp.width)))

    def stack_read(self, offset_bytes: int, width: int) -> Value:
        """Read the stack at SP+offset without moving SP."""
        b = self.b
        sp = self.read_reg(self._stack_pointer())
        address = b.add(sp, Const(offset_bytes, sp.width))
        return self.load(Seg.SS, b.zext(address, 32), width)

    # -- control ------------------------------------------------------------------
    def branch_target(self, target: Value) -> Value:
        """Check a near branch target against the CS limit (#GP at the branch)."""
        if self.operand_bits == 16:
            target = self.b.and_(target, Const(0xFFFF, 32))
        if not self.env.flat:
            limit = self.get_slot(seg_slot(Seg.CS, "limit"))
            self.b.raise_if(self.b.ult(limit, target), GP, 0)
        return target

    def direct_target(self, address: int) -> int:
        if self.operand_bits == 16:
            address &= 0xFFFF
        return address & 0xFFFFFFFF
