"""The binary translator's vocabulary: what a rule's ``bt`` operation turns
a sensitive instruction into, for guest kernel code (virtual CPL 0).

Inline operations read and write the virtual CPU's state slots (VIF, VIOPL,
VGDTR, VCR0, ...) inside the translated block.  Callouts call into the
monitor (``dbt.vmm.monitor``) and end the block with the exit reason
``callout:<operation>``, which the monitor counts.  Nothing here knows a
mnemonic's meaning beyond picking operands: the operations are the rules'
vocabulary, and ``translator_rules/`` says which instruction gets which.
"""

from __future__ import annotations

from collections.abc import Callable

from dbt.cpu.state import IF, IOPL_MASK, RF, VM, Seg, Slot
from dbt.decode import Instruction, OperandKind
from dbt.ir import Const, Helper
from dbt.lift import flags, segments, system
from dbt.lift.context import SEGMENTS, LiftContext, Unsupported, seg_slot
from dbt.lift.registry import LIFTERS

# Monitor operations on the virtual CPU (dbt.vmm.monitor implements them).
LOAD_TABLE = Helper("virtual_load_table", (32, 32, 32), None, may_fault=True)
LOAD_SYSTEM_SEGMENT = Helper("virtual_load_system_segment", (32, 32), None, may_fault=True)
WRITE_CR = Helper("virtual_write_cr", (32, 32), None, may_fault=True)
IO_IN = Helper("virtual_io_in", (32, 32, 32), 64, may_fault=True)
IO_OUT = Helper("virtual_io_out", (32, 32, 32, 32), 32, may_fault=True)
POP_FLAGS = Helper("virtual_pop_flags", (32, 32), None, reads_state=True, writes_state=True)
IRET = Helper("virtual_iret", (32,), None, reads_state=True, writes_state=True, may_fault=True)
FAR_JUMP = Helper("virtual_far_jump", (32, 32, 32), None, reads_state=True, writes_state=True,
                  may_fault=True)
FAR_CALL = Helper("virtual_far_call", (32, 32, 32, 32), None, reads_state=True, writes_state=True,
                  may_fault=True)
FAR_RETURN = Helper("virtual_far_return", (32, 32), None, reads_state=True, writes_state=True,
                    may_fault=True)
LOAD_SS = Helper("virtual_load_ss", (32,), None, may_fault=True)
LAR = Helper("virtual_lar", (32,), 64, may_fault=True)
LSL = Helper("virtual_lsl", (32,), 64, may_fault=True)
VERIFY = Helper("virtual_verify", (32, 32), 32, may_fault=True)

Operation = Callable[[LiftContext, Instruction], bool]


def _callout_exit(ctx: LiftContext, insn: Instruction, operation: str) -> None:
    system.monitor_exit(ctx, insn, f"callout:{operation}")


# -- inline operations ---------------------------------------------------------------------
def identity(ctx: LiftContext, insn: Instruction) -> bool:
    return False  # the hardware's lifter translates it


def nothing(ctx: LiftContext, insn: Instruction) -> bool:
    return True


def virtual_if_clear(ctx: LiftContext, insn: Instruction) -> bool:
    ctx.set_slot(Slot.VIF, Const(0, 32))
    return True


def virtual_flags_push(ctx: LiftContext, insn: Instruction) -> bool:
    b = ctx.b
    real = flags.read_eflags(ctx)
    image = b.and_(real, Const(~(IF | IOPL_MASK | RF | VM) & 0xFFFFFFFF, 32))
    image = b.or_(image, b.shl(ctx.get_slot(Slot.VIF), Const(9, 32)))
    image = b.or_(image, b.shl(ctx.get_slot(Slot.VIOPL), Const(12, 32)))
    width = ctx.operand_bits
    ctx.push(b.trunc(image, 16) if width == 16 else image)
    return True


def virtual_selector_read(ctx: LiftContext, insn: Instruction) -> bool:
    """CS or SS with RPL 0: what the guest's ring 0 would see."""
    b = ctx.b
    name = insn.operands[0].reg if insn.mnemonic == "push" else insn.operands[1].reg
    selector = b.and_(ctx.get_slot(seg_slot(SEGMENTS[name], "sel")), Const(0xFFFC, 32))  # type: ignore[index]
    if insn.mnemonic == "push":
        width = ctx.operand_bits
        ctx.push(b.trunc(selector, 16) if width == 16 else selector)
        return True
    segments.write_selector(ctx, insn.operands[0], selector)
    return True


_TABLE_SLOTS = {"sgdt": (Slot.VGDTR_BASE, Slot.VGDTR_LIMIT), "sidt": (Slot.VIDTR_BASE, Slot.VIDTR_LIMIT)}


def shadow_table_register_read(ctx: LiftContext, insn: Instruction) -> bool:
    if insn.mnemonic in _TABLE_SLOTS:
        system.write_table_register(ctx, insn, *_TABLE_SLOTS[insn.mnemonic])
        return True
    selector = ctx.get_slot(Slot.VLDTR_SEL if insn.mnemonic == "sldt" else Slot.VTR_SEL)
    segments.write_selector(ctx, insn.operands[0], selector)
    return True


def shadow_control_read(ctx: LiftContext, insn: Instruction) -> bool:
    """CR0 (and the MSW) of the virtual CPU; CR2, CR3 and CR4 are the real
    ones, which the monitor keeps equal to the guest's."""
    b = ctx.b
    if insn.mnemonic == "smsw":
        (op,) = insn.operands
        cr0 = ctx.get_slot(Slot.VCR0)
        if op.kind is OperandKind.MEM:
            ctx.write(ctx.location(op, write=True), b.trunc(cr0, 16))
        elif op.size == 4:
            ctx.write_reg(op.reg, cr0)  # type: ignore[arg-type]
        else:
            ctx.write_reg(op.reg, b.trunc(cr0, 16))  # type: ignore[arg-type]
        return True
    dst, src = insn.operands
    slot = {"cr0": Slot.VCR0, "cr2": Slot.CR2, "cr3": Slot.CR3, "cr4": Slot.CR4}.get(src.reg)  # type: ignore[arg-type]
    if slot is None:
        raise Unsupported(f"{insn.text}: no such register")
    ctx.write_reg(dst.reg, ctx.get_slot(slot))  # type: ignore[arg-type]
    return True


def virtual_descriptor_query(ctx: LiftContext, insn: Instruction) -> bool:
    b = ctx.b
    if insn.mnemonic in ("lar", "lsl"):
        segments.descriptor_query(ctx, insn, LAR if insn.mnemonic == "lar" else LSL)
        return True
    (op,) = insn.operands
    selector = b.zext(ctx.value(op), 32)
    answer = ctx.call(VERIFY, selector, Const(1 if insn.mnemonic == "verw" else 0, 32))
    assert answer is not None
    segments.set_zero_flag(ctx, b.trunc(answer, 1))
    return True


# -- callouts -----------------------------------------------------------------------------------
def virtual_if_set(ctx: LiftContext, insn: Instruction) -> bool:
    ctx.set_slot(Slot.VIF, Const(1, 32))
    system.interrupt_shadow(ctx, insn, "callout:virtual-if-set")
    return True


def virtual_flags_pop(ctx: LiftContext, insn: Instruction) -> bool:
    width = ctx.operand_bits
    popped = ctx.b.zext(ctx.pop(width), 32)
    ctx.call(POP_FLAGS, popped, Const(width, 32))
    _callout_exit(ctx, insn, "virtual-flags-pop")
    return True


def load_descriptor_table(ctx: LiftContext, insn: Instruction) -> bool:
    base, limit = system.table_register_operand(ctx, insn)
    which = 0 if insn.mnemonic == "lgdt" else 1
    ctx.call(LOAD_TABLE, Const(which, 32), base, limit)
    _callout_exit(ctx, insn, "load-descriptor-table")
    return True


def load_system_segment(ctx: LiftContext, insn: Instruction) -> bool:
    selector = ctx.b.zext(ctx.value(insn.operands[0]), 32)
    which = Seg.LDTR if insn.mnemonic == "lldt" else Seg.TR
    ctx.call(LOAD_SYSTEM_SEGMENT, Const(which, 32), selector)
    _callout_exit(ctx, insn, "load-system-segment")
    return True


def write_control_register(ctx: LiftContext, insn: Instruction) -> bool:
    b = ctx.b
    if insn.mnemonic == "clts":
        value = b.and_(ctx.get_slot(Slot.VCR0), Const(~(1 << 3) & 0xFFFFFFFF, 32))
        number = 0
    elif insn.mnemonic == "lmsw":
        msw = b.and_(b.zext(ctx.value(insn.operands[0]), 32), Const(0xF, 32))
        cr0 = ctx.get_slot(Slot.VCR0)
        value = b.or_(b.and_(cr0, Const(0xFFFFFFF0, 32)), b.or_(msw, b.and_(cr0, Const(1, 32))))
        number = 0
    else:
        dst, src = insn.operands
        number = int(dst.reg[2])  # type: ignore[index]
        value = ctx.read_reg(src.reg)  # type: ignore[arg-type]
        if number == 3:  # the monitor keeps nothing of its own in CR3
            system.load_page_directory(ctx, insn, value, "callout:write-control-register")
            return True
    ctx.call(WRITE_CR, Const(number, 32), value)
    _callout_exit(ctx, insn, "write-control-register")
    return True


def _native_then_exit(operation: str) -> Operation:
    """Callouts whose monitor action is the hardware operation itself (the
    helpers already run in the monitor): translate natively, end the block."""

    def rewrite(ctx: LiftContext, insn: Instruction) -> bool:
        if operation == "debug-register":
            _lift_debug_register(ctx, insn)
        else:
            LIFTERS[insn.id](ctx, insn)
        if not ctx.ended:
            _callout_exit(ctx, insn, operation)
        return True

    return rewrite


def _lift_debug_register(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    if src.reg and src.reg.startswith("dr"):
        value = ctx.call(system.READ_DR, Const(int(src.reg[2]), 32))
        assert value is not None
        ctx.write_reg(dst.reg, value)  # type: ignore[arg-type]
    else:
        ctx.call(system.WRITE_DR, Const(int(dst.reg[2]), 32), ctx.read_reg(src.reg))  # type: ignore[index, arg-type]


def port_io(ctx: LiftContext, insn: Instruction) -> bool:
    """IN/OUT at the virtual CPL and IOPL; string forms one element per exit."""
    name = insn.mnemonic
    if name in ("in", "out"):
        system.port_access(ctx, insn, IO_IN, IO_OUT, "callout:port-io")
        return True
    system.string_io(ctx, insn, IO_IN if name.startswith("ins") else IO_OUT, "callout:port-io")
    return True


def invalidate_page(ctx: LiftContext, insn: Instruction) -> bool:
    if system.privileged(ctx):
        system.invalidate_page(ctx, insn, "callout:invalidate-page")
    return True


def halt(ctx: LiftContext, insn: Instruction) -> bool:
    _callout_exit(ctx, insn, "halt")
    return True


def interrupt_return(ctx: LiftContext, insn: Instruction) -> bool:
    ctx.call(IRET, Const(ctx.operand_bits, 32))
    system.exit_to_eip(ctx, "callout:interrupt-return")
    return True


def software_interrupt(ctx: LiftContext, insn: Instruction) -> bool:
    # INT n raises the software exception as on hardware; the monitor then
    # delivers it through the guest's IDT (every delivery is virtual).
    LIFTERS[insn.id](ctx, insn)
    return True


def far_transfer(ctx: LiftContext, insn: Instruction) -> bool:
    bits = Const(ctx.operand_bits, 32)
    if insn.mnemonic == "retf":
        release = insn.operands[0].imm & 0xFFFF if insn.operands else 0
        ctx.call(FAR_RETURN, bits, Const(release, 32))
    else:
        selector, offset = segments.far_pointer(ctx, insn)
        if insn.mnemonic in ("lcall", "call"):
            ctx.call(FAR_CALL, selector, offset, bits, Const(insn.next_address, 32))
        else:
            ctx.call(FAR_JUMP, selector, offset, bits)
    system.exit_to_eip(ctx, "callout:far-transfer")
    return True


def load_stack_segment(ctx: LiftContext, insn: Instruction) -> bool:
    b = ctx.b
    if insn.mnemonic == "lss":
        dst, src = insn.operands
        width = dst.size * 8
        segment, address = ctx.effective_address(src)
        offset = ctx.load(segment, address, width)
        selector = ctx.load(segment, b.add(address, Const(width // 8, 32)), 16)
        ctx.call(LOAD_SS, b.zext(selector, 32))
        ctx.write_reg(dst.reg, offset)  # type: ignore[arg-type]
    elif insn.mnemonic == "pop":
        value = ctx.pop(ctx.operand_bits)
        ctx.call(LOAD_SS, b.zext(b.trunc(value, 16), 32))
    else:
        value = ctx.value(insn.operands[1])
        ctx.call(LOAD_SS, b.zext(b.trunc(value, 16) if value.width > 16 else value, 32))
    _callout_exit(ctx, insn, "load-stack-segment")
    return True


OPERATIONS: dict[str, Operation] = {
    "identity": identity,
    "nothing": nothing,
    "virtual-if-clear": virtual_if_clear,
    "virtual-flags-push": virtual_flags_push,
    "virtual-selector-read": virtual_selector_read,
    "shadow-table-register-read": shadow_table_register_read,
    "shadow-control-read": shadow_control_read,
    "virtual-descriptor-query": virtual_descriptor_query,
    "virtual-if-set": virtual_if_set,
    "virtual-flags-pop": virtual_flags_pop,
    "load-descriptor-table": load_descriptor_table,
    "load-system-segment": load_system_segment,
    "write-control-register": write_control_register,
    "debug-register": _native_then_exit("debug-register"),
    "invalidate-page": invalidate_page,
    "model-specific-register": _native_then_exit("model-specific-register"),
    "port-io": port_io,
    "halt": halt,
    "interrupt-return": interrupt_return,
    "software-interrupt": software_interrupt,
    "far-transfer": far_transfer,
    "load-stack-segment": load_stack_segment,
    "fast-system-call": _native_then_exit("fast-system-call"),
}
