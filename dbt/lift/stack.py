"""Stack instructions: PUSH/POP (registers, memory, immediates), PUSHA/POPA,
ENTER/LEAVE.  Segment registers and EFLAGS go through ``dbt.lift.system``."""

from __future__ import annotations

from dbt.decode import Instruction, OperandKind
from dbt.ir import Const
from dbt.lift.context import SEGMENTS, LiftContext
from dbt.lift.registry import lifts


@lifts("PUSH")
def push(ctx: LiftContext, insn: Instruction) -> None:
    (op,) = insn.operands
    width = ctx.operand_bits
    if op.kind is OperandKind.REG and op.reg in SEGMENTS:
        from dbt.lift import segments

        segments.push_segment(ctx, op.reg, width)  # type: ignore[arg-type]
        return
    if op.kind is OperandKind.IMM:
        ctx.push(Const(op.imm & ((1 << width) - 1), width))
        return
    ctx.push(ctx.value(op))


@lifts("POP")
def pop(ctx: LiftContext, insn: Instruction) -> None:
    (op,) = insn.operands
    if op.kind is OperandKind.REG and op.reg in SEGMENTS:
        from dbt.lift import segments

        segments.pop_segment(ctx, op.reg, ctx.operand_bits)  # type: ignore[arg-type]
        return
    value = ctx.pop(op.size * 8)
    # The destination's address is computed with the incremented stack
    # pointer (POP [ESP+4] stores above the popped slot), and a store that
    # faults leaves ESP unchanged: ctx.pop's write is only pending.
    ctx.write(ctx.location(op, write=True), value)


_ORDER = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")


@lifts("PUSHAL", "PUSHAW")
def pusha(ctx: LiftContext, insn: Instruction) -> None:
    width = 32 if insn.mnemonic == "pushal" else 16
    names = [name if width == 32 else ctx.reg_by_index(i, 16) for i, name in enumerate(_ORDER)]
    values = [ctx.read_reg(name) for name in names]  # ESP as it was before the first push
    for value in values:
        ctx.push(value)


@lifts("POPAL", "POPAW")
def popa(ctx: LiftContext, insn: Instruction) -> None:
    width = 32 if insn.mnemonic == "popal" else 16
    popped = [ctx.pop(width) for _ in _ORDER]
    for index, value in zip(reversed(range(8)), popped, strict=True):
        if _ORDER[index] != "esp":  # the saved stack pointer is skipped
            ctx.write_reg(ctx.reg_by_index(index, width), value)


@lifts("ENTER")
def enter(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    size_op, level_op = insn.operands
    allocation = size_op.imm & 0xFFFF
    level = level_op.imm & 0x1F
    width = ctx.operand_bits
    frame_name = "ebp" if ctx.env.stack_bits == 32 else "bp"
    sp_name = "esp" if ctx.env.stack_bits == 32 else "sp"
    bp_value = ctx.read_reg(frame_name if width == ctx.env.stack_bits else ctx.reg_by_index(5, width))
    ctx.push(bp_value if bp_value.width == width else b.trunc(bp_value, width))
    frame = ctx.read_reg(sp_name)
    if level > 0:
        from dbt.cpu.state import Seg

        frame_pointer = ctx.read_reg(frame_name)
        for depth in range(1, level):
            address = b.sub(frame_pointer, Const(depth * width // 8, frame_pointer.width))
            ctx.push(ctx.load(Seg.SS, b.zext(address, 32), width))
        ctx.push(b.trunc(frame, width) if frame.width > width else b.zext(frame, width))
    ctx.write_reg(frame_name, frame)
    ctx.write_reg(sp_name, b.sub(ctx.read_reg(sp_name), Const(allocation, frame.width)))


@lifts("LEAVE")
def leave(ctx: LiftContext, insn: Instruction) -> None:
    frame_name = "ebp" if ctx.env.stack_bits == 32 else "bp"
    sp_name = "esp" if ctx.env.stack_bits == 32 else "sp"
    ctx.write_reg(sp_name, ctx.read_reg(frame_name))
    width = ctx.operand_bits
    value = ctx.pop(width)
    ctx.write_reg("ebp" if width == 32 else "bp", value)

