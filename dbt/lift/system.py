"""System instructions as the hardware defines them: port I/O, segment
registers, and (with the virtual PC) the protection and control instructions.

Operations that consult descriptor tables or devices are helpers — plain
typed functions in ``dbt.vmm`` shared by every execution path; here they are
only called, and the block ends where the translation's assumptions (the
flags word) may have changed.
"""

from __future__ import annotations

from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Helper
from dbt.cpu.state import Slot
from dbt.lift.context import REGISTERS, SEGMENTS, LiftContext, Unsupported, seg_slot
from dbt.lift.registry import lifts

# Port I/O through the device bus; #GP when CPL > IOPL and the TSS I/O
# permission bitmap denies the port.
IO_IN = Helper("io_in", (32, 32), 32, may_fault=True)
IO_OUT = Helper("io_out", (32, 32, 32), None, may_fault=True)


def _port(ctx: LiftContext, op) -> Const | object:
    if op.kind is OperandKind.IMM:
        return Const(op.imm & 0xFF, 32)
    return ctx.b.zext(ctx.read_reg("dx"), 32)


def monitor_exit(ctx: LiftContext, insn: Instruction, reason: str) -> None:
    """End the block here and return to the monitor before the next instruction."""
    ctx.commit()
    ctx.b.exit_indirect(Const(insn.next_address, 32), reason)
    ctx.end_block()


@lifts("IN")
def in_(ctx: LiftContext, insn: Instruction) -> None:
    dst, port_op = insn.operands
    width = dst.size * 8
    value = ctx.call(IO_IN, _port(ctx, port_op), Const(width // 8, 32))  # type: ignore[arg-type]
    assert value is not None
    ctx.write_reg(dst.reg, ctx.b.trunc(value, width))  # type: ignore[arg-type]
    monitor_exit(ctx, insn, "io")


@lifts("OUT")
def out(ctx: LiftContext, insn: Instruction) -> None:
    port_op, src = insn.operands
    width = src.size * 8
    value = ctx.b.zext(ctx.read_reg(src.reg), 32)  # type: ignore[arg-type]
    ctx.call(IO_OUT, _port(ctx, port_op), value, Const(width // 8, 32))  # type: ignore[arg-type]
    monitor_exit(ctx, insn, "io")


def mov_special(ctx: LiftContext, insn: Instruction) -> None:
    """MOV to or from a segment, control or debug register."""
    dst, src = insn.operands
    if src.kind is OperandKind.REG and src.reg in SEGMENTS:
        selector = ctx.get_slot(seg_slot(SEGMENTS[src.reg], "sel"))
        if dst.kind is OperandKind.MEM:
            ctx.write(ctx.location(dst, write=True), ctx.b.trunc(selector, 16))
        elif dst.size == 4:
            ctx.write_reg(dst.reg, ctx.b.and_(selector, Const(0xFFFF, 32)))  # type: ignore[arg-type]
        else:
            ctx.write_reg(dst.reg, ctx.b.trunc(selector, 16))  # type: ignore[arg-type]
        return
    if dst.reg not in REGISTERS or src.reg not in REGISTERS:
        raise Unsupported(f"{insn.text}: this system register is not available")


def push_segment(ctx: LiftContext, name: str, width: int) -> None:
    selector = ctx.get_slot(seg_slot(SEGMENTS[name], "sel"))
    ctx.push(ctx.b.trunc(selector, 16) if width == 16 else selector)


def pop_segment(ctx: LiftContext, name: str, width: int) -> None:
    raise Unsupported(f"pop {name}: segment loads need the protected-mode platform")


def privileged(ctx: LiftContext) -> bool:
    """Privileged instructions raise #GP(0) above CPL 0.  False when the
    instruction became that raise (and nothing more is to be emitted)."""
    from dbt.lift.context import GP

    if ctx.env.cpl != 0:
        ctx.b.raise_(GP, 0)
        ctx.end_block()
        return False
    return True


@lifts("HLT")
def hlt(ctx: LiftContext, insn: Instruction) -> None:
    """The monitor sleeps until the next interrupt."""
    if privileged(ctx):
        monitor_exit(ctx, insn, "hlt")


# -- EFLAGS ------------------------------------------------------------------------------
@lifts("PUSHF", "PUSHFD")
def pushf(ctx: LiftContext, insn: Instruction) -> None:
    """Push EFLAGS with RF and VM cleared in the pushed image."""
    from dbt.cpu.state import RF, VM
    from dbt.lift import flags

    b = ctx.b
    image = b.and_(flags.read_eflags(ctx), Const(~(RF | VM) & 0xFFFFFFFF, 32))
    width = ctx.operand_bits
    ctx.push(b.trunc(image, 16) if width == 16 else image)


@lifts("POPF", "POPFD")
def popf(ctx: LiftContext, insn: Instruction) -> None:
    """Pop EFLAGS.  What may change depends on privilege, as the SDM lists:
    IOPL only at CPL 0, IF only at CPL <= IOPL; VM, VIP and VIF never; RF is
    cleared.  Anything else is silently kept, which is why POPF is sensitive."""
    from dbt.cpu.state import (
        AC, AF, ARITH_FLAGS, CF, DF, EFLAGS_FIXED_ONE, ID, IF, IOPL_MASK, NT, OF, PF, RF, SF, TF, ZF,
    )
    from dbt.lift import flags

    b = ctx.b
    width = ctx.operand_bits
    popped = b.zext(ctx.pop(width), 32)
    base = CF | PF | AF | ZF | SF | TF | DF | OF | NT
    if width == 32:
        base |= AC | ID
    old = flags.read_eflags(ctx)
    changeable: object
    if ctx.env.cpl == 0:
        changeable = Const(base | IF | IOPL_MASK, 32)
    else:
        iopl = b.lshr(b.and_(old, Const(IOPL_MASK, 32)), Const(12, 32))
        may_set_if = b.ule(Const(ctx.env.cpl, 32), iopl)
        changeable = b.or_(Const(base, 32), b.select(may_set_if, Const(IF, 32), Const(0, 32)))
    if width == 16:
        changeable = b.and_(changeable, Const(0xFFFF, 32))  # type: ignore[arg-type]
    kept = b.and_(old, b.not_(changeable))  # type: ignore[arg-type]
    new = b.or_(b.or_(kept, b.and_(popped, changeable)), Const(EFLAGS_FIXED_ONE, 32))  # type: ignore[arg-type]
    new = b.and_(new, Const(~RF & 0xFFFFFFFF, 32))
    ctx.set_slot(Slot.EFLAGS, new)
    ctx.cc.set_eflags(b.and_(new, Const(ARITH_FLAGS, 32)))
    # IF may have changed: let the monitor look for pending interrupts.
    monitor_exit(ctx, insn, "popf")
