"""Segment registers and far control flow: MOV/PUSH/POP of segment
registers, LDS..LSS, far JMP/CALL/RET, IRET, LAR/LSL/VERR/VERW, ARPL,
LLDT/LTR/SLDT/STR, SYSENTER/SYSEXIT.

Descriptor checks and privilege transfers are helpers implemented in
``dbt.vmm.protection``.  Far transfers end their block, since they may
change what the translation assumed (CPL, code size, flat segments); a data
segment load ends it only when it did change that.
"""

from __future__ import annotations

from dbt.cpu.state import ZF, Seg
from dbt.decode import Instruction, Operand, OperandKind
from dbt.ir import Const, Helper, Value
from dbt.lift import flags
from dbt.lift.context import SEGMENTS, LiftContext, Unsupported, seg_slot
from dbt.lift.registry import lifts
from dbt.lift.system import exit_to_eip, monitor_exit, privileged

# Nonzero when the load changed the translation flags word.
LOAD_SEGMENT = Helper("load_segment", (32, 32), 32, writes_state=True, may_fault=True)
FAR_JUMP = Helper("far_jump", (32, 32, 32), None, reads_state=True, writes_state=True, may_fault=True)
FAR_CALL = Helper("far_call", (32, 32, 32, 32), None, reads_state=True, writes_state=True, may_fault=True)
FAR_RETURN = Helper("far_return", (32, 32), None, reads_state=True, writes_state=True, may_fault=True)
IRET = Helper("iret", (32,), None, reads_state=True, writes_state=True, may_fault=True)
# Access rights or limit, with bit 32 set when the selector passed the checks.
LAR = Helper("lar", (32,), 64, may_fault=True)
LSL = Helper("lsl", (32,), 64, may_fault=True)
VERIFY = Helper("verify", (32, 32), 32, may_fault=True)
LLDT = Helper("lldt", (32,), None, may_fault=True)
LTR = Helper("ltr", (32,), None, may_fault=True)
SYSENTER = Helper("sysenter", (), None, reads_state=True, writes_state=True, may_fault=True)
SYSEXIT = Helper("sysexit", (), None, reads_state=True, writes_state=True, may_fault=True)


def _load(ctx: LiftContext, segment: int, selector) -> Value:  # type: ignore[no-untyped-def]
    changed = ctx.call(LOAD_SEGMENT, Const(segment, 32), ctx.b.zext(selector, 32))
    assert changed is not None
    return changed


def _after_load(ctx: LiftContext, insn: Instruction, segment: int, changed: Value) -> None:
    """A load of SS holds off interrupts for one instruction: the monitor
    must know.  Other loads return to it only when they changed what the
    rest of the block was translated for (flatness of DS or ES); reloading
    a flat selector, as every kernel entry and exit path does, goes on."""
    if segment == Seg.SS:
        monitor_exit(ctx, insn, "shadow")
        return
    ctx.commit()
    ctx.b.monitor_exit_if(ctx.b.ne(changed, Const(0, 32)), insn.next_address, "env")


def write_selector(ctx: LiftContext, dst: Operand, selector: Value) -> None:
    """Store a selector as MOV r/m, Sreg, SLDT and STR do: 16 bits to memory,
    zero-extended into a 32-bit register."""
    b = ctx.b
    if dst.kind is OperandKind.MEM:
        ctx.write(ctx.location(dst, write=True), b.trunc(selector, 16))
    elif dst.size == 4:
        ctx.write_reg(dst.reg, b.and_(selector, Const(0xFFFF, 32)))  # type: ignore[arg-type]
    else:
        ctx.write_reg(dst.reg, b.trunc(selector, 16))  # type: ignore[arg-type]


def store_selector(ctx: LiftContext, dst: Operand, name: str) -> None:
    """MOV r/m, Sreg."""
    write_selector(ctx, dst, ctx.get_slot(seg_slot(SEGMENTS[name], "sel")))


def mov_to_segment(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    segment = SEGMENTS[dst.reg]  # type: ignore[index]
    if segment == Seg.CS:
        raise Unsupported("MOV to CS")
    value = ctx.value(src)
    changed = _load(ctx, segment, ctx.b.trunc(value, 16) if value.width > 16 else value)
    _after_load(ctx, insn, segment, changed)


def push_segment(ctx: LiftContext, name: str, width: int) -> None:
    selector = ctx.get_slot(seg_slot(SEGMENTS[name], "sel"))
    ctx.push(ctx.b.trunc(selector, 16) if width == 16 else selector)


def pop_segment(ctx: LiftContext, name: str, width: int) -> None:
    segment = SEGMENTS[name]
    if segment == Seg.CS:
        raise Unsupported("POP CS")
    # The load may fault: ESP moves only after it succeeded.
    value = ctx.stack_read(0, width)
    changed = _load(ctx, segment, ctx.b.trunc(value, 16) if width == 32 else value)
    ctx.stack_release(width // 8)
    _after_load(ctx, ctx.insn, segment, changed)


@lifts("LDS", "LES", "LFS", "LGS", "LSS")
def load_far_pointer(ctx: LiftContext, insn: Instruction) -> None:
    dst, src = insn.operands
    if src.kind is not OperandKind.MEM:
        raise Unsupported(f"{insn.mnemonic} with a register operand")
    b = ctx.b
    width = dst.size * 8
    segment_number, offset_address = ctx.effective_address(src)
    offset = ctx.load(segment_number, offset_address, width)
    selector = ctx.load(segment_number, b.add(offset_address, Const(width // 8, 32)), 16)
    segment = SEGMENTS[insn.mnemonic[1:]]
    changed = _load(ctx, segment, selector)
    ctx.write_reg(dst.reg, offset)  # type: ignore[arg-type]
    _after_load(ctx, insn, segment, changed)


# -- far transfers -------------------------------------------------------------------
def far_pointer(ctx: LiftContext, insn: Instruction):  # type: ignore[no-untyped-def]
    """(selector, offset) of a far JMP/CALL: immediate ptr16:16/32 or m16:16/32."""
    b = ctx.b
    bits = ctx.operand_bits
    if len(insn.operands) == 2:
        selector_op, offset_op = insn.operands
        return Const(selector_op.imm & 0xFFFF, 32), Const(offset_op.imm & ((1 << bits) - 1), 32)
    (op,) = insn.operands
    if op.kind is not OperandKind.MEM:
        raise Unsupported("far transfer through a register")
    segment, address = ctx.effective_address(op)
    offset = b.zext(ctx.load(segment, address, bits), 32)
    selector = b.zext(ctx.load(segment, b.add(address, Const(bits // 8, 32)), 16), 32)
    return selector, offset


def is_far_indirect(insn: Instruction) -> bool:
    """FF /3 (CALL m16:32) and FF /5 (JMP m16:32), which Capstone names call/jmp."""
    return insn.opcode == b"\xff" and (insn.modrm >> 3) & 7 in (3, 5)


@lifts("LJMP")
def far_jump(ctx: LiftContext, insn: Instruction) -> None:
    selector, offset = far_pointer(ctx, insn)
    ctx.call(FAR_JUMP, selector, offset, Const(ctx.operand_bits, 32))
    exit_to_eip(ctx, "env")


@lifts("LCALL")
def far_call(ctx: LiftContext, insn: Instruction) -> None:
    selector, offset = far_pointer(ctx, insn)
    ctx.call(FAR_CALL, selector, offset, Const(ctx.operand_bits, 32), Const(insn.next_address, 32))
    exit_to_eip(ctx, "env")


@lifts("RETF")
def far_return(ctx: LiftContext, insn: Instruction) -> None:
    release = insn.operands[0].imm & 0xFFFF if insn.operands else 0
    ctx.call(FAR_RETURN, Const(ctx.operand_bits, 32), Const(release, 32))
    exit_to_eip(ctx, "env")


@lifts("IRET", "IRETD")
def iret(ctx: LiftContext, insn: Instruction) -> None:
    ctx.call(IRET, Const(ctx.operand_bits, 32))
    exit_to_eip(ctx, "iret")


@lifts("SYSENTER")
def sysenter(ctx: LiftContext, insn: Instruction) -> None:
    ctx.call(SYSENTER)
    exit_to_eip(ctx, "env")


@lifts("SYSEXIT")
def sysexit(ctx: LiftContext, insn: Instruction) -> None:
    if privileged(ctx):
        ctx.call(SYSEXIT)
        exit_to_eip(ctx, "env")


# -- descriptor queries -------------------------------------------------------------------
def set_zero_flag(ctx: LiftContext, condition) -> None:  # type: ignore[no-untyped-def]
    b = ctx.b
    old = flags.eflags_arith(ctx)
    cleared = b.and_(old, Const(~ZF & 0xFFFFFFFF, 32))
    flags.write_arith_flags(ctx, b.or_(cleared, b.shl(b.zext(condition, 32), Const(6, 32))))


@lifts("LAR", "LSL")
def lar_lsl(ctx: LiftContext, insn: Instruction) -> None:
    """Not privileged: any CPL can read descriptors' rights and limits."""
    descriptor_query(ctx, insn, LAR if insn.mnemonic == "lar" else LSL)


def descriptor_query(ctx: LiftContext, insn: Instruction, helper: Helper) -> None:
    """LAR or LSL through ``helper``: the destination and ZF by its answer."""
    b = ctx.b
    dst, src = insn.operands
    selector = b.zext(b.trunc(ctx.value(src), 16) if src.size > 2 else ctx.value(src), 32)
    answer = ctx.call(helper, selector)
    assert answer is not None
    valid = b.trunc(b.lshr(answer, Const(32, 64)), 1)
    width = dst.size * 8
    value = b.trunc(answer, width)
    ctx.write_reg(dst.reg, b.select(valid, value, ctx.read_reg(dst.reg)))  # type: ignore[arg-type]
    set_zero_flag(ctx, valid)


@lifts("VERR", "VERW")
def verify(ctx: LiftContext, insn: Instruction) -> None:
    b = ctx.b
    (op,) = insn.operands
    selector = b.zext(ctx.value(op), 32)
    answer = ctx.call(VERIFY, selector, Const(1 if insn.mnemonic == "verw" else 0, 32))
    assert answer is not None
    set_zero_flag(ctx, b.trunc(answer, 1))


@lifts("ARPL")
def arpl(ctx: LiftContext, insn: Instruction) -> None:
    """Raise the destination selector's RPL to the source's; ZF tells whether it did."""
    b = ctx.b
    dst_op, src_op = insn.operands
    where = ctx.location(dst_op, write=True)
    destination = ctx.read(where)
    source_rpl = b.and_(ctx.value(src_op), Const(3, 16))
    lower = b.ult(b.and_(destination, Const(3, 16)), source_rpl)
    raised = b.or_(b.and_(destination, Const(0xFFFC, 16)), source_rpl)
    ctx.write(where, b.select(lower, raised, destination))
    set_zero_flag(ctx, lower)


@lifts("LLDT", "LTR")
def load_system_segment(ctx: LiftContext, insn: Instruction) -> None:
    if not privileged(ctx):
        return
    selector = ctx.b.zext(ctx.value(insn.operands[0]), 32)
    ctx.call(LLDT if insn.mnemonic == "lldt" else LTR, selector)


@lifts("SLDT", "STR")
def store_system_selector(ctx: LiftContext, insn: Instruction) -> None:
    """Not privileged: any CPL can read the LDTR and TR selectors."""
    (op,) = insn.operands
    segment = Seg.LDTR if insn.mnemonic == "sldt" else Seg.TR
    write_selector(ctx, op, ctx.get_slot(seg_slot(segment, "sel")))

