"""System instructions as the hardware defines them: port I/O, segment
registers, and (with the virtual PC) the protection and control instructions.

Operations that consult descriptor tables or devices are helpers — plain
typed functions in ``dbt.vmm`` shared by every execution path; here they are
only called, and the block ends where the translation's assumptions (the
flags word) may have changed.
"""

from __future__ import annotations

from dbt.cpu.state import (
    AC,
    AF,
    ARITH_FLAGS,
    CF,
    CR0_TS,
    DF,
    EFLAGS_FIXED_ONE,
    ID,
    IF,
    IOPL_MASK,
    NT,
    OF,
    PF,
    RF,
    SF,
    TF,
    VM,
    ZF,
    Seg,
    Slot,
)
from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Helper, Value
from dbt.lift import flags
from dbt.lift.context import GP, SEGMENTS, LiftContext, Unsupported, seg_slot
from dbt.lift.registry import lifts
from dbt.lift.string import begin_repeat, end_repeat, index_registers, source_segment, step

# Port I/O through the device bus; #GP when CPL > IOPL and the TSS I/O
# permission bitmap denies the port.
# The last argument is the instruction's index in its block, so that devices
# see the exact virtual time of the access.  The answer says whether the
# access left the monitor something to do before the next instruction: bit
# 32 of IN's (above the value read), bit 0 of OUT's.
IO_IN = Helper("io_in", (32, 32, 32), 64, may_fault=True)
IO_OUT = Helper("io_out", (32, 32, 32, 32), 32, may_fault=True)
# Control and debug registers, MSRs and TLB control: checks and side effects
# (TLB flushes, translation-mode changes) live in dbt.vmm.system.
WRITE_CR = Helper("write_cr", (32, 32), None, may_fault=True)
READ_DR = Helper("read_dr", (32,), 32, may_fault=True)
WRITE_DR = Helper("write_dr", (32, 32), None, may_fault=True)
RDMSR = Helper("rdmsr", (), None, reads_state=True, writes_state=True, may_fault=True)
WRMSR = Helper("wrmsr", (), None, reads_state=True, may_fault=True)
# (linear address, next EIP) -> nonzero if the rest of the block may have been remapped
INVLPG = Helper("invlpg", (32, 32), 32)
# (page directory, next EIP, the physical page its code was translated from)
# -> nonzero if the next instruction's code maps elsewhere now, or not at all
WRITE_CR3 = Helper("write_cr3", (32, 32, 32), 32, may_fault=True)


def port_value(ctx: LiftContext, op) -> Value:
    if op.kind is OperandKind.IMM:
        return Const(op.imm & 0xFF, 32)
    return ctx.b.zext(ctx.read_reg("dx"), 32)


def monitor_exit(ctx: LiftContext, insn: Instruction, reason: str) -> None:
    """End the block here and return to the monitor before the next instruction."""
    ctx.commit()
    ctx.b.exit_indirect(Const(insn.next_address, 32), reason)
    ctx.end_block()


def exit_to_eip(ctx: LiftContext, reason: str) -> None:
    """End the block after a helper set EIP (a far transfer, IRET)."""
    ctx.commit()
    ctx.b.exit_indirect(ctx.get_slot(Slot.EIP), reason)
    ctx.end_block()


@lifts("IN", "OUT")
def in_out(ctx: LiftContext, insn: Instruction) -> None:
    port_access(ctx, insn, IO_IN, IO_OUT, "io")


def port_access(ctx: LiftContext, insn: Instruction, read: Helper, write: Helper, reason: str) -> None:
    """IN or OUT through the port helpers; the block goes on after it unless
    the helper says the monitor must look first (an interrupt requested, a
    device event moved closer, a reset...)."""
    b = ctx.b
    if insn.mnemonic == "in":
        dst, port_op = insn.operands
        width = dst.size * 8
        answer = ctx.call(read, port_value(ctx, port_op), Const(width // 8, 32), Const(ctx.index, 32))
        assert answer is not None
        ctx.write_reg(dst.reg, b.trunc(answer, width))  # type: ignore[arg-type]
        wanted = b.trunc(b.lshr(answer, Const(32, 64)), 1)
    else:
        port_op, src = insn.operands
        width = src.size * 8
        value = b.zext(ctx.read_reg(src.reg), 32)  # type: ignore[arg-type]
        answer = ctx.call(write, port_value(ctx, port_op), value, Const(width // 8, 32), Const(ctx.index, 32))
        assert answer is not None
        wanted = b.trunc(answer, 1)
    ctx.commit()
    b.monitor_exit_if(wanted, insn.next_address, reason)


def privileged(ctx: LiftContext) -> bool:
    """Privileged instructions raise #GP(0) above CPL 0.  False when the
    instruction became that raise (and nothing more is to be emitted).  The
    binary translator's callouts check the guest's CPL, not the real one."""
    if ctx.privilege_level != 0:
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
    b = ctx.b
    image = b.and_(flags.read_eflags(ctx), Const(~(RF | VM) & 0xFFFFFFFF, 32))
    width = ctx.operand_bits
    ctx.push(b.trunc(image, 16) if width == 16 else image)


@lifts("POPF", "POPFD")
def popf(ctx: LiftContext, insn: Instruction) -> None:
    """Pop EFLAGS.  What may change depends on privilege, as the SDM lists:
    IOPL only at CPL 0, IF only at CPL <= IOPL; VM, VIP and VIF never; RF is
    cleared.  Anything else is silently kept, which is why POPF is sensitive."""
    b = ctx.b
    width = ctx.operand_bits
    popped = b.zext(ctx.pop(width), 32)
    base = CF | PF | AF | ZF | SF | TF | DF | OF | NT
    if width == 32:
        base |= AC | ID
    old = flags.read_eflags(ctx)
    changeable: Value
    if ctx.env.cpl == 0:
        changeable = Const(base | IF | IOPL_MASK, 32)
    else:
        iopl = b.lshr(b.and_(old, Const(IOPL_MASK, 32)), Const(12, 32))
        may_set_if = b.ule(Const(ctx.env.cpl, 32), iopl)
        changeable = b.or_(Const(base, 32), b.select(may_set_if, Const(IF, 32), Const(0, 32)))
    if width == 16:
        changeable = b.and_(changeable, Const(0xFFFF, 32))
    kept = b.and_(old, b.not_(changeable))
    new = b.or_(b.or_(kept, b.and_(popped, changeable)), Const(EFLAGS_FIXED_ONE, 32))
    new = b.and_(new, Const(~RF & 0xFFFFFFFF, 32))
    ctx.set_slot(Slot.EFLAGS, new)
    ctx.cc.set_eflags(b.and_(new, Const(ARITH_FLAGS, 32)))
    # IF may have changed: let the monitor look for pending interrupts.
    monitor_exit(ctx, insn, "popf")


def _iopl_check(ctx: LiftContext) -> None:
    """#GP(0) unless CPL <= IOPL (CLI, STI)."""
    if ctx.env.cpl == 0:
        return
    b = ctx.b
    iopl = b.lshr(b.and_(ctx.get_slot(Slot.EFLAGS), Const(IOPL_MASK, 32)), Const(12, 32))
    b.raise_if(b.ult(iopl, Const(ctx.env.cpl, 32)), GP, 0)


@lifts("CLI")
def cli(ctx: LiftContext, insn: Instruction) -> None:
    _iopl_check(ctx)
    eflags = ctx.get_slot(Slot.EFLAGS)
    ctx.set_slot(Slot.EFLAGS, ctx.b.and_(eflags, Const(~IF & 0xFFFFFFFF, 32)))


@lifts("STI")
def sti(ctx: LiftContext, insn: Instruction) -> None:
    """Interrupts are recognized only after the next instruction (the STI shadow)."""
    _iopl_check(ctx)
    eflags = ctx.get_slot(Slot.EFLAGS)
    ctx.set_slot(Slot.EFLAGS, ctx.b.or_(eflags, Const(IF, 32)))
    interrupt_shadow(ctx, insn, "sti")


def interrupt_shadow(ctx: LiftContext, insn: Instruction, reason: str) -> None:
    """IF was just set.  If an interrupt is requested, return to the monitor,
    which takes it after the next instruction (the shadow); if not, go on:
    nothing can be taken before the monitor next looks (a device event is
    a deadline, and an I/O access that requests an interrupt returns to the
    monitor).  A block that would end right after this instruction ends
    with this exit instead (lift_block)."""
    ctx.commit()
    requested = ctx.b.ne(ctx.get_slot(Slot.INTR), Const(0, 32))
    ctx.b.monitor_exit_if(requested, insn.next_address, reason)
    ctx.shadow = reason


# -- string I/O ------------------------------------------------------------------------
@lifts("INSB", "INSW", "INSD", "OUTSB", "OUTSW", "OUTSD")
def string_port_io(ctx: LiftContext, insn: Instruction) -> None:
    string_io(ctx, insn, IO_IN if insn.mnemonic.startswith("ins") else IO_OUT, "io")


def string_io(ctx: LiftContext, insn: Instruction, port_helper: Helper, reason: str) -> None:
    """INS (port to ES:EDI) or OUTS (DS:ESI to port) through ``port_helper``,
    one element per execution; with REP the instruction loops on itself."""
    b = ctx.b
    inward = insn.mnemonic.startswith("ins")
    width = insn.operands[0 if inward else 1].size * 8
    source, destination = index_registers(ctx)
    begin_repeat(ctx, insn)
    port = b.zext(ctx.read_reg("dx"), 32)
    index = ctx.read_reg(destination if inward else source)
    if inward:
        value = ctx.call(port_helper, port, Const(width // 8, 32), Const(ctx.index, 32))
        assert value is not None
        ctx.store(Seg.ES, b.zext(index, 32), b.trunc(value, width))
    else:
        value = ctx.load(source_segment(insn), b.zext(index, 32), width)
        ctx.call(port_helper, port, b.zext(value, 32), Const(width // 8, 32), Const(ctx.index, 32))
    ctx.write_reg(destination if inward else source, b.add(index, step(ctx, width // 8)))
    end_repeat(ctx, insn, compares=False)
    monitor_exit(ctx, insn, reason)


# -- control registers, debug registers, MSRs -----------------------------------------------
_CONTROL = {"cr0": Slot.CR0, "cr2": Slot.CR2, "cr3": Slot.CR3, "cr4": Slot.CR4}


def mov_special(ctx: LiftContext, insn: Instruction) -> None:
    """MOV to or from a segment, control or debug register."""
    from dbt.lift import segments

    dst, src = insn.operands
    if src.kind is OperandKind.REG and src.reg in SEGMENTS:
        segments.store_selector(ctx, dst, src.reg)  # type: ignore[arg-type]
        return
    if dst.kind is OperandKind.REG and dst.reg in SEGMENTS:
        segments.mov_to_segment(ctx, insn)
        return
    if not privileged(ctx):
        return
    if src.reg in _CONTROL:
        ctx.write_reg(dst.reg, ctx.get_slot(_CONTROL[src.reg]))  # type: ignore[index, arg-type]
    elif dst.reg in _CONTROL:
        number = int(dst.reg[2])  # type: ignore[index]
        written = ctx.read_reg(src.reg)  # type: ignore[arg-type]
        if number == 3:
            load_page_directory(ctx, insn, written, "env")
        else:
            ctx.call(WRITE_CR, Const(number, 32), written)
            monitor_exit(ctx, insn, "env")
    elif src.reg and src.reg.startswith("dr"):
        value = ctx.call(READ_DR, Const(int(src.reg[2]), 32))
        assert value is not None
        ctx.write_reg(dst.reg, value)  # type: ignore[arg-type]
    elif dst.reg and dst.reg.startswith("dr"):
        ctx.call(WRITE_DR, Const(int(dst.reg[2]), 32), ctx.read_reg(src.reg))  # type: ignore[arg-type]
    else:
        raise Unsupported(f"{insn.text}: no such register")


def load_page_directory(ctx: LiftContext, insn: Instruction, value: Value, reason: str) -> None:
    """MOV to CR3 (privilege already checked).  Every linear page may map
    elsewhere now, and the next instruction is fetched through the new
    mapping: the block ends here.  It returns to the monitor only when the
    next instruction's page no longer maps to the physical page this block
    came from; otherwise a direct exit goes on to the next block, and the
    link that exit takes stays valid (the same code at the same EIP)."""
    frame = ctx.code_frame() if ctx.code_frame is not None else None
    same_page = (insn.address >> 12) == (insn.next_address >> 12) == (ctx.b.block.address >> 12)
    if frame is None or not ctx.env.flat or not same_page:
        ctx.call(WRITE_CR, Const(3, 32), value)
        monitor_exit(ctx, insn, reason)
        return
    remapped = ctx.call(WRITE_CR3, value, Const(insn.next_address, 32), Const(frame, 32))
    assert remapped is not None
    ctx.commit()
    ctx.b.monitor_exit_if(ctx.b.ne(remapped, Const(0, 32)), insn.next_address, reason)
    ctx.b.exit(insn.next_address)
    ctx.end_block()


@lifts("CLTS")
def clts(ctx: LiftContext, insn: Instruction) -> None:
    if privileged(ctx):
        ctx.set_slot(Slot.CR0, ctx.b.and_(ctx.get_slot(Slot.CR0), Const(~CR0_TS & 0xFFFFFFFF, 32)))


@lifts("LMSW")
def lmsw(ctx: LiftContext, insn: Instruction) -> None:
    """Loads CR0 bits 0-3; PE can be set but not cleared."""
    if not privileged(ctx):
        return
    b = ctx.b
    value = b.and_(b.zext(ctx.value(insn.operands[0]), 32), Const(0xF, 32))
    cr0 = ctx.get_slot(Slot.CR0)
    new = b.or_(b.and_(cr0, Const(0xFFFFFFF0, 32)), b.or_(value, b.and_(cr0, Const(1, 32))))
    ctx.call(WRITE_CR, Const(0, 32), new)
    monitor_exit(ctx, insn, "env")


@lifts("SMSW")
def smsw(ctx: LiftContext, insn: Instruction) -> None:
    """Not privileged: any CPL reads the machine status word (a sensitive leak)."""
    (op,) = insn.operands
    cr0 = ctx.get_slot(Slot.CR0)
    if op.kind is OperandKind.MEM:
        ctx.write(ctx.location(op, write=True), ctx.b.trunc(cr0, 16))
    elif op.size == 4:
        ctx.write_reg(op.reg, cr0)  # type: ignore[arg-type]
    else:
        ctx.write_reg(op.reg, ctx.b.trunc(cr0, 16))  # type: ignore[arg-type]


@lifts("INVLPG")
def invlpg(ctx: LiftContext, insn: Instruction) -> None:
    if not privileged(ctx):
        return
    invalidate_page(ctx, insn, "env")


def invalidate_page(ctx: LiftContext, insn: Instruction, reason: str) -> None:
    """INVLPG (privilege already checked).  The block goes on unless the page
    holds its own remaining code: other pages' translations are found again
    through their new mapping at their next look-up."""
    (op,) = insn.operands
    segment, offset = ctx.effective_address(op)
    linear = ctx.b.add(offset, ctx.get_slot(seg_slot(segment, "base")))
    remapped = ctx.call(INVLPG, linear, Const(insn.next_address, 32))
    assert remapped is not None
    ctx.commit()
    ctx.b.monitor_exit_if(ctx.b.ne(remapped, Const(0, 32)), insn.next_address, reason)


@lifts("WBINVD", "INVD")
def cache_control(ctx: LiftContext, insn: Instruction) -> None:
    """Privileged; there are no caches to write back or drop."""
    privileged(ctx)


@lifts("RDMSR")
def rdmsr(ctx: LiftContext, insn: Instruction) -> None:
    if privileged(ctx):
        ctx.call(RDMSR)


@lifts("WRMSR")
def wrmsr(ctx: LiftContext, insn: Instruction) -> None:
    if privileged(ctx):
        ctx.call(WRMSR)
        monitor_exit(ctx, insn, "env")


# -- descriptor-table registers ------------------------------------------------------------
_TABLES = {"gdt": (Slot.GDTR_BASE, Slot.GDTR_LIMIT), "idt": (Slot.IDTR_BASE, Slot.IDTR_LIMIT)}


def table_register_operand(ctx: LiftContext, insn: Instruction) -> tuple[Value, Value]:
    """The (base, limit) LGDT or LIDT reads from memory: a 16-bit limit and
    a base (24 bits with a 16-bit operand size)."""
    b = ctx.b
    (op,) = insn.operands
    if op.kind is not OperandKind.MEM:
        raise Unsupported("lgdt/lidt with a register operand")
    segment, offset = ctx.effective_address(op)
    limit = ctx.load(segment, offset, 16)
    base = ctx.load(segment, b.add(offset, Const(2, 32)), 32)
    if ctx.operand_bits == 16:
        base = b.and_(base, Const(0xFFFFFF, 32))
    return base, b.zext(limit, 32)


@lifts("LGDT", "LIDT")
def load_table_register(ctx: LiftContext, insn: Instruction) -> None:
    """A 16-bit limit and a base (24 bits with a 16-bit operand size)."""
    if not privileged(ctx):
        return
    base, limit = table_register_operand(ctx, insn)
    base_slot, limit_slot = _TABLES[insn.mnemonic[1:]]
    ctx.set_slot(base_slot, base)
    ctx.set_slot(limit_slot, limit)


@lifts("SGDT", "SIDT")
def store_table_register(ctx: LiftContext, insn: Instruction) -> None:
    """Not privileged: any CPL can read where the tables are (a sensitive leak)."""
    write_table_register(ctx, insn, *_TABLES[insn.mnemonic[1:]])


def write_table_register(ctx: LiftContext, insn: Instruction, base_slot: Slot, limit_slot: Slot) -> None:
    """SGDT/SIDT: the 16-bit limit, then the 32-bit base, to memory."""
    b = ctx.b
    (op,) = insn.operands
    if op.kind is not OperandKind.MEM:
        raise Unsupported(f"{insn.mnemonic} with a register operand")
    segment, offset = ctx.effective_address(op)
    ctx.store(segment, offset, b.trunc(ctx.get_slot(limit_slot), 16))
    ctx.store(segment, b.add(offset, Const(2, 32)), ctx.get_slot(base_slot))

