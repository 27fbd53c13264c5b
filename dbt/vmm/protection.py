"""Protected-mode segmentation and privilege transfers, as the SDM defines them.

Segment-register loads, far JMP/CALL/RET (call gates, returns to an outer
level), interrupt and exception delivery through the IDT, IRET, LAR/LSL/
VERR/VERW, SYSENTER/SYSEXIT.  Every operation checks first, then writes the
stack, and only then changes registers, so a fault in the middle leaves the
CPU as it was (the restarted instruction rewrites the same stack bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dbt.cpu.state import (
    CR0_PE,
    IF,
    IOPL_MASK,
    NT,
    RF,
    SEGMENT_FIELDS,
    TF,
    VIF,
    VIP,
    VM,
    Seg,
    Slot,
)
from dbt.lift.env import ATTR_DB, ATTR_P
from dbt.memory.mmu import SUPERVISOR, USER
from dbt.vmm.descriptors import (
    CALL_GATE16,
    CALL_GATE32,
    GP,
    INTERRUPT_GATE16,
    INTERRUPT_GATE32,
    LDT,
    NP,
    SS_FAULT,
    TASK_GATE,
    TRAP_GATE16,
    TRAP_GATE32,
    TS,
    TSS16_AVAILABLE,
    TSS16_BUSY,
    TSS32_AVAILABLE,
    TSS32_BUSY,
    Descriptor,
    DescriptorTables,
    selector_error,
)
from dbt.vmm.faults import GuestFault
from dbt.vmm.modes import PrivilegeView

if TYPE_CHECKING:
    from dbt.vmm.machine import Machine

DATA_SEGMENTS = (Seg.ES, Seg.DS, Seg.FS, Seg.GS)


class Unsupported(Exception):
    """The guest asked for something dbt does not implement (a task switch,
    virtual-8086 mode, real mode); the run stops with this message."""


def _first(segment: int) -> int:
    return Slot.ES_SEL + segment * len(SEGMENT_FIELDS)


@dataclass
class StackFrame:
    """Pushes and pops on a stack that is only committed at the end."""

    protection: Protection
    base: int
    pointer: int
    big: bool  # 32-bit stack pointer
    window: tuple[int, int]  # valid offsets [low, high] for writes and reads
    privilege: int  # memory access rights used (supervisor or user)

    def _offset(self, value: int) -> int:
        return value & (0xFFFFFFFF if self.big else 0xFFFF)

    def _check(self, offset: int, size: int) -> None:
        low, high = self.window
        if offset < low or offset + size - 1 > high:
            raise GuestFault(SS_FAULT, 0)

    def push(self, value: int, size: int) -> None:
        pointer = self._offset(self.pointer - size)
        self._check(pointer, size)
        self.protection.write(self.base + pointer, size, value & ((1 << (8 * size)) - 1), self.privilege)
        self.pointer = pointer

    def pop(self, size: int) -> int:
        pointer = self._offset(self.pointer)
        self._check(pointer, size)
        value = self.protection.read(self.base + pointer, size, self.privilege)
        self.pointer = self._offset(pointer + size)
        return value

    def release(self, size: int) -> None:
        self.pointer = self._offset(self.pointer + size)

    def esp(self, old_esp: int) -> int:
        """The new ESP: the whole register for a 32-bit stack, else only SP."""
        return self.pointer if self.big else (old_esp & 0xFFFF0000) | self.pointer


class Protection:
    """``view`` (dbt.vmm.modes) says how the guest's descriptors and flags
    look to the real CPU.  Operations named ``virtual`` are the monitor's
    emulation on the guest's behalf (binary-translation callouts, trap
    handlers): they also translate selectors and EFLAGS between the guest's
    view and the real CPU's, where hardware execution does not."""

    def __init__(self, machine: Machine, view: PrivilegeView) -> None:
        self.machine = machine
        self.slots = machine.slots
        self.view = view
        self.tables = DescriptorTables(self.slots, self.read_system, self.write_system, view)

    # -- memory ---------------------------------------------------------------------
    def read(self, linear: int, size: int, privilege: int) -> int:
        return self.machine.mmu.read(linear & 0xFFFFFFFF, size, privilege)

    def write(self, linear: int, size: int, value: int, privilege: int) -> None:
        self.machine.mmu.write(linear & 0xFFFFFFFF, size, value, privilege)

    def read_system(self, linear: int, size: int) -> int:
        return self.read(linear, size, SUPERVISOR)

    def write_system(self, linear: int, size: int, value: int) -> None:
        self.write(linear, size, value, SUPERVISOR)

    # -- state ------------------------------------------------------------------------
    @property
    def cpl(self) -> int:
        return self.slots[Slot.CPL]

    def protected(self) -> bool:
        return bool(self.slots[Slot.CR0] & CR0_PE)

    def load_cache(self, segment: int, selector: int, descriptor: Descriptor | None) -> None:
        """Fill a segment register from a descriptor (None: an unusable null segment)."""
        slots = self.slots
        window = (slots[Slot.CS_BASE], slots[Slot.CS_LIMIT])
        if descriptor is None:
            self.machine.set_segment_cache(segment, selector, 0, 0, 0)
        else:
            self.machine.set_segment_cache(segment, selector, descriptor.base, descriptor.limit,
                                           descriptor.cache_attr)
        if segment == Seg.CS and (slots[Slot.CS_BASE], slots[Slot.CS_LIMIT]) != window:
            self.machine.cache.forget_virtual()  # EIP now means another linear address

    def stack(self, esp: int | None = None) -> StackFrame:
        slots = self.slots
        first = _first(Seg.SS)
        big = bool(slots[first + 3] & ATTR_DB)
        return StackFrame(
            self, slots[first + 1], slots[Slot.ESP] if esp is None else esp, big,
            (slots[first + 6], slots[first + 7]), USER if self.vcpl == 3 else SUPERVISOR,
        )

    def _stack_for(self, descriptor: Descriptor, pointer: int, privilege: int) -> StackFrame:
        from dbt.vmm.machine import offset_window

        return StackFrame(self, descriptor.base, pointer, descriptor.big,
                          offset_window(descriptor.attr, descriptor.limit), privilege)

    @property
    def vcpl(self) -> int:
        """The guest's idea of its CPL (the real CPL when not deprivileged)."""
        return self.slots[Slot.VCPL]

    def set_cpl(self, cpl: int, virtual: int | None = None, transition: bool = False) -> None:
        """``transition``: the monitor performs this change of privilege
        for the guest (not the hardware on its own), so the view moves the
        guest's IF and IOPL between the virtual and the real CPU."""
        old = self.slots[Slot.VCPL]
        self.slots[Slot.CPL] = cpl
        new = cpl if virtual is None else virtual
        self.slots[Slot.VCPL] = new
        if transition and old != new:
            self.view.transition(old, new)

    # -- segment-register loads ----------------------------------------------------------
    def load_data_segment(self, segment: int, selector: int) -> None:
        """MOV/POP/LDS... to DS, ES, FS or GS."""
        selector &= 0xFFFF
        if not selector & 0xFFFC:
            self.load_cache(segment, selector, None)
            return
        descriptor = self.tables.fetch(selector)
        rpl = selector & 3
        if descriptor.system or not descriptor.readable:
            raise GuestFault(GP, selector_error(selector))
        if not descriptor.conforming and (rpl > descriptor.dpl or self.cpl > descriptor.dpl):
            raise GuestFault(GP, selector_error(selector))
        if not descriptor.present:
            raise GuestFault(NP, selector_error(selector))
        self.tables.set_accessed(descriptor)
        self.load_cache(segment, selector, descriptor)

    def check_stack_segment(self, selector: int, cpl: int, vector: int = GP) -> Descriptor:
        """The checks for loading SS at privilege ``cpl``; the descriptor."""
        if not selector & 0xFFFC:
            raise GuestFault(vector, 0)
        descriptor = self.tables.fetch(selector, vector)
        if selector & 3 != cpl or descriptor.system or not descriptor.writable or descriptor.dpl != cpl:
            raise GuestFault(vector, selector_error(selector))
        if not descriptor.present:
            raise GuestFault(SS_FAULT if vector == GP else vector, selector_error(selector))
        return descriptor

    def load_stack_segment(self, selector: int, virtual: bool = False) -> None:
        """MOV/POP/LSS to SS (``virtual``: the guest's selector, whose RPL
        names its own level, for the monitor to load at the real one)."""
        selector &= 0xFFFF
        if virtual:
            selector = self.view.real_selector(selector)
        descriptor = self.check_stack_segment(selector, self.cpl)
        self.tables.set_accessed(descriptor)
        self.load_cache(Seg.SS, selector, descriptor)

    def load_segment(self, segment: int, selector: int, virtual: bool = False) -> int:
        """Load a segment register; 1 if the translation flags word changed
        (code after the load was translated for the old one), else 0."""
        if segment == Seg.SS:
            self.load_stack_segment(selector, virtual)
        elif segment == Seg.CS:
            raise GuestFault(6)  # MOV to CS is invalid
        else:
            self.load_data_segment(segment, selector)
        before = self.machine.flags
        self.machine.env_changed()
        return int(self.machine.flags != before)

    # -- far transfers -----------------------------------------------------------------
    def _code_target(self, selector: int, cpl: int) -> Descriptor:
        """Checks shared by far JMP and CALL to a code segment at the same level."""
        descriptor = self.tables.fetch(selector)
        if descriptor.system:
            return descriptor
        if not descriptor.code:
            raise GuestFault(GP, selector_error(selector))
        if descriptor.conforming:
            if descriptor.dpl > cpl:
                raise GuestFault(GP, selector_error(selector))
        elif selector & 3 > cpl or descriptor.dpl != cpl:
            raise GuestFault(GP, selector_error(selector))
        if not descriptor.present:
            raise GuestFault(NP, selector_error(selector))
        return descriptor

    def _enter_code(self, selector: int, descriptor: Descriptor, offset: int, cpl: int,
                    transition: bool = False, virtual_level: int | None = None) -> None:
        if offset > descriptor.limit:
            raise GuestFault(GP, 0)
        self.tables.set_accessed(descriptor)
        self.load_cache(Seg.CS, (selector & 0xFFFC) | cpl, descriptor)
        self.slots[Slot.EIP] = offset
        if not self.view.deprivileged:
            virtual = cpl
        elif virtual_level is not None:
            virtual = virtual_level
        elif cpl == self.cpl or descriptor.conforming:
            virtual = self.vcpl  # the privilege level does not change
        else:
            virtual = descriptor.guest_dpl
        self.set_cpl(cpl, virtual, transition)

    def _gate_target(self, gate: Descriptor, selector: int) -> tuple[int, Descriptor]:
        """The checked code segment a call gate leads to."""
        cpl = self.cpl
        if gate.dpl < cpl or gate.dpl < selector & 3:
            raise GuestFault(GP, selector_error(selector))
        if not gate.present:
            raise GuestFault(NP, selector_error(selector))
        code_selector = gate.gate_selector
        if not code_selector & 0xFFFC:
            raise GuestFault(GP, 0)
        code = self.tables.fetch(code_selector)
        if not code.code or code.dpl > cpl:
            raise GuestFault(GP, selector_error(code_selector))
        if not code.present:
            raise GuestFault(NP, selector_error(code_selector))
        return code_selector, code

    def far_jump(self, selector: int, offset: int, operand_bits: int) -> None:
        if not self.protected():
            raise Unsupported("far jump outside protected mode")
        selector &= 0xFFFF
        if not selector & 0xFFFC:
            raise GuestFault(GP, 0)
        cpl = self.cpl
        descriptor = self._code_target(selector, cpl)
        if not descriptor.system:
            self._enter_code(selector, descriptor, offset, cpl)
        elif descriptor.type in (CALL_GATE16, CALL_GATE32):
            code_selector, code = self._gate_target(descriptor, selector)
            if not code.conforming and code.dpl != cpl:
                raise GuestFault(GP, selector_error(code_selector))
            target = descriptor.gate_offset
            self._enter_code(code_selector, code, target, cpl)
        elif descriptor.type in (TASK_GATE, TSS16_AVAILABLE, TSS32_AVAILABLE):
            raise Unsupported("far jump to a task (hardware task switching)")
        else:
            raise GuestFault(GP, selector_error(selector))
        self.machine.env_changed()

    def far_call(self, selector: int, offset: int, operand_bits: int, return_eip: int,
                 virtual: bool = False) -> None:
        if not self.protected():
            raise Unsupported("far call outside protected mode")
        selector &= 0xFFFF
        if not selector & 0xFFFC:
            raise GuestFault(GP, 0)
        slots = self.slots
        cpl = self.cpl
        size = operand_bits // 8
        descriptor = self._code_target(selector, cpl)
        old_cs = slots[Slot.CS_SEL]
        if virtual:
            old_cs = self.view.virtual_selector(old_cs, self.vcpl)
        if not descriptor.system:
            if offset > descriptor.limit:
                raise GuestFault(GP, 0)
            stack = self.stack()
            stack.push(old_cs, size)
            stack.push(return_eip, size)
            slots[Slot.ESP] = stack.esp(slots[Slot.ESP])
            self._enter_code(selector, descriptor, offset, cpl)
        elif descriptor.type in (CALL_GATE16, CALL_GATE32):
            self._call_gate(descriptor, selector, return_eip, virtual)
        elif descriptor.type in (TASK_GATE, TSS16_AVAILABLE, TSS32_AVAILABLE):
            raise Unsupported("far call to a task (hardware task switching)")
        else:
            raise GuestFault(GP, selector_error(selector))
        self.machine.env_changed()

    def _call_gate(self, gate: Descriptor, selector: int, return_eip: int, virtual: bool) -> None:
        slots = self.slots
        cpl = self.cpl
        code_selector, code = self._gate_target(gate, selector)
        size = 4 if gate.gate_is_32 else 2
        target = gate.gate_offset
        if target > code.limit:
            raise GuestFault(GP, 0)
        old_cs, old_esp, old_ss = slots[Slot.CS_SEL], slots[Slot.ESP], slots[Slot.SS_SEL]
        if virtual or self.view.deprivileged:
            old_cs = self.view.virtual_selector(old_cs, self.vcpl)
            old_ss = self.view.virtual_selector(old_ss, self.vcpl)
        if self._inward(code, virtual):
            # To a more privileged level: the new stack comes from the TSS.
            new_cpl = code.dpl
            new_ss, new_esp = self._tss_stack(code.guest_dpl)
            new_ss = self.view.real_selector(new_ss)
            ss_descriptor = self.check_stack_segment(new_ss, new_cpl, TS)
            new_stack = self._stack_for(ss_descriptor, new_esp, SUPERVISOR)
            old_stack = self.stack()
            count = gate.parameter_count
            parameters = [old_stack.pop(size) for _ in range(count)]
            new_stack.push(old_ss, size)
            new_stack.push(old_esp, size)
            for value in reversed(parameters):
                new_stack.push(value, size)
            new_stack.push(old_cs, size)
            new_stack.push(return_eip, size)
            self.tables.set_accessed(ss_descriptor)
            self.load_cache(Seg.SS, (new_ss & 0xFFFC) | new_cpl, ss_descriptor)
            slots[Slot.ESP] = new_stack.esp(old_esp)
            self._enter_code(code_selector, code, target, new_cpl, transition=virtual,
                             virtual_level=code.guest_dpl)
        else:
            stack = self.stack()
            stack.push(old_cs, size)
            stack.push(return_eip, size)
            slots[Slot.ESP] = stack.esp(old_esp)
            self._enter_code(code_selector, code, target, cpl)

    def _inward(self, code: Descriptor, virtual: bool) -> bool:
        """Whether entering ``code`` raises the privilege level.  The monitor
        (``virtual``) decides by the guest's levels: under the 0/3 model its
        kernel and user code share the real CPL 3."""
        if code.conforming:
            return False
        if virtual and self.view.deprivileged:
            return code.guest_dpl < self.vcpl
        return code.dpl < self.cpl

    def _tss_stack(self, level: int) -> tuple[int, int]:
        """SS and ESP for the guest's privilege ``level`` from its TSS."""
        slots = self.slots
        base, limit = slots[Slot.TR_BASE], slots[Slot.TR_LIMIT]
        tss32 = (slots[Slot.TR_ATTR] & 0xF) in (TSS32_AVAILABLE, TSS32_BUSY)
        if not slots[Slot.TR_SEL] & 0xFFFC or not slots[Slot.TR_ATTR] & ATTR_P:
            raise GuestFault(TS, 0)
        if tss32:
            offset = 4 + level * 8
            if offset + 7 > limit:
                raise GuestFault(TS, selector_error(slots[Slot.TR_SEL]))
            esp = self.read_system(base + offset, 4)
            ss = self.read_system(base + offset + 4, 2)
        else:
            offset = 2 + level * 4
            if offset + 3 > limit:
                raise GuestFault(TS, selector_error(slots[Slot.TR_SEL]))
            esp = self.read_system(base + offset, 2)
            ss = self.read_system(base + offset + 2, 2)
        return ss, esp

    def far_return(self, operand_bits: int, release_bytes: int, virtual: bool = False) -> None:
        """RETF [imm16]: to the same level, or to an outer one (then SS:ESP too)."""
        if not self.protected():
            raise Unsupported("far return outside protected mode")
        slots = self.slots
        cpl = self.cpl
        size = operand_bits // 8
        stack = self.stack()
        eip = stack.pop(size)
        selector = stack.pop(size) & 0xFFFF
        level = selector & 3  # the level returned to, as the frame names it
        outward = level > self.vcpl if virtual and self.view.deprivileged else level > cpl
        if virtual:
            selector = self.view.real_selector(selector)
        rpl = selector & 3
        code = self._return_code_segment(selector, rpl, cpl, level if virtual else None)
        stack.release(release_bytes)
        if eip > code.limit:
            raise GuestFault(GP, 0)
        if not outward:
            slots[Slot.ESP] = stack.esp(slots[Slot.ESP])
            self._enter_code(selector, code, eip, rpl, transition=virtual)
        else:
            new_esp = stack.pop(size)
            new_ss = stack.pop(size) & 0xFFFF
            if virtual:
                new_ss = self.view.real_selector(new_ss)
            ss_descriptor = self.check_stack_segment(new_ss, rpl)
            self.tables.set_accessed(ss_descriptor)
            self._enter_code(selector, code, eip, rpl, transition=virtual,
                             virtual_level=level if virtual else None)
            self.load_cache(Seg.SS, new_ss, ss_descriptor)
            outer = self._stack_for(ss_descriptor, new_esp, USER if level == 3 else SUPERVISOR)
            outer.release(release_bytes)
            slots[Slot.ESP] = outer.esp(new_esp) if ss_descriptor.big else outer.esp(slots[Slot.ESP])
            self._drop_inaccessible_segments(rpl)
        self.machine.env_changed()

    def _return_code_segment(self, selector: int, rpl: int, cpl: int,
                             guest_level: int | None = None) -> Descriptor:
        """The checked code segment of a far return or IRET frame
        (``guest_level``: the frame's level as the guest named it, when the
        monitor returns on its behalf)."""
        if not selector & 0xFFFC:
            raise GuestFault(GP, 0)
        code = self.tables.fetch(selector)
        inward = guest_level < self.vcpl if guest_level is not None else rpl < cpl
        if not code.code or inward:
            raise GuestFault(GP, selector_error(selector))
        if code.conforming:
            if code.dpl > rpl:
                raise GuestFault(GP, selector_error(selector))
        elif code.dpl != rpl:
            raise GuestFault(GP, selector_error(selector))
        if not code.present:
            raise GuestFault(NP, selector_error(selector))
        return code

    def _drop_inaccessible_segments(self, cpl: int) -> None:
        """On a return to an outer level, data segments the new level may not
        use are loaded with null (so the outer code cannot keep kernel access)."""
        slots = self.slots
        for segment in DATA_SEGMENTS:
            first = _first(segment)
            attr = slots[first + 3]
            dpl = (attr >> 5) & 3
            is_code = attr & 0x8
            conforming_code = is_code and attr & 0x4
            if (attr & 0x10) and not conforming_code and dpl < cpl:
                self.load_cache(segment, 0, None)

    # -- interrupts and exceptions ----------------------------------------------------------
    def interrupt(self, vector: int, error_code: int | None, return_eip: int,
                  software: bool, external: bool) -> None:
        """Deliver ``vector`` through the guest's IDT.  ``software``: INT n/
        INT3/INTO (gate DPL checked against the guest's CPL); ``external``:
        a hardware interrupt or an exception caused by one (EXT in error
        codes).  When the guest runs deprivileged the frame holds what the
        guest would see (its selectors' RPLs, its IF and IOPL)."""
        if not self.protected():
            raise Unsupported("interrupt outside protected mode (real mode is not supported)")
        slots = self.slots
        view = self.view
        ext = 1 if external else 0
        idt_error = vector * 8 + 2 + ext
        idt_base, idt_limit = view.idt()
        if vector * 8 + 7 > idt_limit:
            raise GuestFault(GP, idt_error)
        address = (idt_base + vector * 8) & 0xFFFFFFFF
        gate = Descriptor(self.read_system(address, 4), self.read_system(address + 4, 4), address)
        if gate.type == TASK_GATE and gate.system:
            raise Unsupported(f"vector {vector} goes through a task gate (hardware task switching)")
        if not gate.system or gate.type not in (INTERRUPT_GATE16, INTERRUPT_GATE32, TRAP_GATE16, TRAP_GATE32):
            raise GuestFault(GP, idt_error)
        cpl, vcpl = self.cpl, self.vcpl
        if software and gate.dpl < vcpl:
            raise GuestFault(GP, idt_error)
        if not gate.present:
            raise GuestFault(NP, idt_error)
        code_selector = gate.gate_selector
        if not code_selector & 0xFFFC:
            raise GuestFault(GP, ext)
        code = self.tables.fetch(code_selector, GP, selector_error(code_selector) + ext)
        if not code.code or code.dpl > cpl:
            raise GuestFault(GP, selector_error(code_selector) + ext)
        if not code.present:
            raise GuestFault(NP, selector_error(code_selector) + ext)
        size = 4 if gate.gate_is_32 else 2
        target = gate.gate_offset
        eflags = self.machine.eflags()
        if eflags & VM:
            raise Unsupported("interrupt in virtual-8086 mode")
        old_cs, old_ss, old_esp = slots[Slot.CS_SEL], slots[Slot.SS_SEL], slots[Slot.ESP]
        new_level = vcpl
        if self._inward(code, True):
            new_cpl = code.dpl
            new_level = code.guest_dpl
            new_ss, new_esp = self._tss_stack(code.guest_dpl)
            new_ss = view.real_selector(new_ss)
            ss_descriptor = self.check_stack_segment(new_ss, new_cpl, TS)
            stack = self._stack_for(ss_descriptor, new_esp, SUPERVISOR)
            stack.push(view.virtual_selector(old_ss, vcpl), size)
            stack.push(old_esp, size)
        else:
            new_cpl = cpl
            ss_descriptor = None
            stack = self.stack()
        if target > code.limit:
            raise GuestFault(GP, ext)
        stack.push(view.eflags_image(eflags), size)
        stack.push(view.virtual_selector(old_cs, vcpl), size)
        stack.push(return_eip, size)
        if error_code is not None:
            stack.push(error_code, size)
        # Committed from here on.
        if ss_descriptor is not None:
            self.tables.set_accessed(ss_descriptor)
            self.load_cache(Seg.SS, (new_ss & 0xFFFC) | new_cpl, ss_descriptor)
            slots[Slot.ESP] = stack.esp(new_esp)
        else:
            slots[Slot.ESP] = stack.esp(old_esp)
        self.machine.set_eflags(eflags & ~(TF | NT | RF | VM))
        self._enter_code(code_selector, code, target, new_cpl, transition=True, virtual_level=new_level)
        if gate.type in (INTERRUPT_GATE16, INTERRUPT_GATE32):
            view.clear_interrupt_flag()
        self.machine.env_changed()

    def iret(self, operand_bits: int, virtual: bool = False) -> None:
        """IRET as the hardware executes it, or (``virtual``) as the monitor
        emulates it for a deprivileged guest: the popped selectors name the
        guest's levels and the popped IF and IOPL go to the virtual CPU."""
        slots = self.slots
        view = self.view
        if not self.protected():
            raise Unsupported("IRET outside protected mode")
        eflags_now = self.machine.eflags()
        if eflags_now & NT:
            raise Unsupported("IRET with NT set (a return from a nested task)")
        size = operand_bits // 8
        cpl = self.cpl
        stack = self.stack()
        eip = stack.pop(size)
        selector = stack.pop(size) & 0xFFFF
        popped = stack.pop(size)
        if size == 2:
            popped = (eflags_now & 0xFFFF0000) | popped
        if popped & VM and cpl == 0:
            raise Unsupported("IRET to virtual-8086 mode")
        level = selector & 3  # the level returned to, as the frame names it
        outward = level > self.vcpl if virtual and view.deprivileged else level > cpl
        if virtual:
            selector = view.real_selector(selector)
        rpl = selector & 3
        code = self._return_code_segment(selector, rpl, cpl, level if virtual else None)
        if eip > code.limit:
            raise GuestFault(GP, 0)
        if virtual:
            guest_flags = self._iret_flags(view.eflags_image(eflags_now), popped, self.vcpl, size)
            new_eflags = (eflags_now & (IF | IOPL_MASK)) | (guest_flags & ~(IF | IOPL_MASK))
        else:
            new_eflags = self._iret_flags(eflags_now, popped, cpl, size)
        ss_descriptor = None
        if outward:
            new_esp = stack.pop(size)
            new_ss = stack.pop(size) & 0xFFFF
            if virtual:
                new_ss = view.real_selector(new_ss)
            ss_descriptor = self.check_stack_segment(new_ss, rpl)
        # Committed from here on.
        self.machine.set_eflags(new_eflags)
        if virtual:
            slots[Slot.VIF] = 1 if guest_flags & IF else 0
            slots[Slot.VIOPL] = (guest_flags & IOPL_MASK) >> 12
        if ss_descriptor is None:
            slots[Slot.ESP] = stack.esp(slots[Slot.ESP])
            self._enter_code(selector, code, eip, rpl, transition=virtual)
        else:
            self.tables.set_accessed(ss_descriptor)
            self._enter_code(selector, code, eip, rpl, transition=virtual,
                             virtual_level=level if virtual else None)
            self.load_cache(Seg.SS, new_ss, ss_descriptor)
            slots[Slot.ESP] = new_esp if ss_descriptor.big else (slots[Slot.ESP] & 0xFFFF0000) | (new_esp & 0xFFFF)
            self._drop_inaccessible_segments(rpl)
        self.machine.env_changed()

    @staticmethod
    def _iret_flags(current: int, popped: int, cpl: int, size: int) -> int:
        """What IRET may change: IOPL only at CPL 0, IF only at CPL <= IOPL,
        VIF/VIP only at CPL 0; VM is never set here (handled above)."""
        changeable = 0x3F7FD5 & ~(VM | IOPL_MASK | IF | VIF | VIP)
        if cpl == 0:
            changeable |= IOPL_MASK | VIF | VIP
        if cpl <= (current & IOPL_MASK) >> 12:
            changeable |= IF
        if size == 2:
            changeable &= 0xFFFF
        return (current & ~changeable) | (popped & changeable)

    # -- LAR, LSL, VERR, VERW ------------------------------------------------------------------
    def _visible(self, selector: int) -> Descriptor | None:
        """The descriptor, or None when the selector is null or outside its table."""
        if not selector & 0xFFFC:
            return None
        try:
            return self.tables.fetch(selector)
        except GuestFault as fault:
            if fault.vector == GP:
                return None
            raise

    def _privilege_allows(self, descriptor: Descriptor, selector: int, virtual: bool) -> bool:
        if descriptor.conforming:
            return True
        if virtual:
            return descriptor.guest_dpl >= self.vcpl and descriptor.guest_dpl >= selector & 3
        return descriptor.dpl >= self.cpl and descriptor.dpl >= selector & 3

    def lar(self, selector: int, virtual: bool = False) -> int | None:
        """Access rights (high dword & 0x00F0FF00: limit 19:16 reads as zero),
        or None: ZF=0.  ``virtual``: as the guest's own descriptor and CPL say."""
        descriptor = self._visible(selector & 0xFFFF)
        if descriptor is None:
            return None
        if descriptor.system and descriptor.type not in (1, 2, 3, 4, 5, 9, 0xB, 0xC):
            return None
        if not self._privilege_allows(descriptor, selector, virtual):
            return None
        high = descriptor.guest_high if virtual else descriptor.high
        return high & 0x00F0FF00

    def lsl(self, selector: int, virtual: bool = False) -> int | None:
        descriptor = self._visible(selector & 0xFFFF)
        if descriptor is None:
            return None
        if descriptor.system and descriptor.type not in (1, 2, 3, 9, 0xB):
            return None
        if not self._privilege_allows(descriptor, selector, virtual):
            return None
        return descriptor.limit

    def verify(self, selector: int, write: bool, virtual: bool = False) -> bool:
        descriptor = self._visible(selector & 0xFFFF)
        if descriptor is None or descriptor.system:
            return False
        dpl, cpl = (descriptor.guest_dpl, self.vcpl) if virtual else (descriptor.dpl, self.cpl)
        if write:
            return descriptor.writable and dpl >= max(cpl, selector & 3)
        if not descriptor.readable:
            return False
        return self._privilege_allows(descriptor, selector, virtual)

    # -- LLDT and LTR ----------------------------------------------------------------------------
    def lldt(self, selector: int) -> None:
        selector &= 0xFFFF
        if not selector & 0xFFFC:
            self.machine.set_segment_cache(Seg.LDTR, selector, 0, 0, 0)
            return
        descriptor = self.tables.fetch_gdt(selector)
        if not descriptor.system or descriptor.type != LDT:
            raise GuestFault(GP, selector_error(selector))
        if not descriptor.present:
            raise GuestFault(NP, selector_error(selector))
        self.machine.set_segment_cache(Seg.LDTR, selector, descriptor.base, descriptor.limit, descriptor.attr)

    def ltr(self, selector: int) -> None:
        selector &= 0xFFFF
        if not selector & 0xFFFC:
            raise GuestFault(GP, 0)
        descriptor = self.tables.fetch_gdt(selector)
        if not descriptor.system or descriptor.type not in (TSS16_AVAILABLE, TSS32_AVAILABLE):
            raise GuestFault(GP, selector_error(selector))
        if not descriptor.present:
            raise GuestFault(NP, selector_error(selector))
        self.tables.set_busy(descriptor, True)
        busy = TSS32_BUSY if descriptor.type == TSS32_AVAILABLE else TSS16_BUSY
        self.machine.set_segment_cache(Seg.TR, selector, descriptor.base, descriptor.limit,
                                       (descriptor.attr & ~0xF) | busy)

    # -- SYSENTER and SYSEXIT ----------------------------------------------------------------------
    def sysenter(self) -> None:
        """To the guest's ring 0 (the deprivileged level when virtualized)."""
        slots = self.slots
        cs = slots[Slot.SYSENTER_CS] & 0xFFFC
        if not self.protected() or not cs:
            raise GuestFault(GP, 0)
        level = self.view.real_level(0)
        eflags = self.machine.eflags()
        self.machine.set_eflags(eflags & ~(VM | RF | (0 if self.view.deprivileged else IF)))
        self.view.clear_interrupt_flag()
        self._flat(Seg.CS, cs | level, level, code=True)
        self._flat(Seg.SS, (cs + 8) | level, level, code=False)
        slots[Slot.ESP] = slots[Slot.SYSENTER_ESP]
        slots[Slot.EIP] = slots[Slot.SYSENTER_EIP]
        self.set_cpl(level, 0)
        self.machine.env_changed()

    def sysexit(self) -> None:
        slots = self.slots
        cs = slots[Slot.SYSENTER_CS] & 0xFFFC
        if not self.protected() or not cs or self.vcpl != 0:
            raise GuestFault(GP, 0)
        self._flat(Seg.CS, (cs + 16) | 3, 3, code=True)
        self._flat(Seg.SS, (cs + 24) | 3, 3, code=False)
        slots[Slot.ESP] = slots[Slot.ECX]
        slots[Slot.EIP] = slots[Slot.EDX]
        self.set_cpl(3, 3)
        self.machine.env_changed()

    def _flat(self, segment: int, selector: int, dpl: int, code: bool) -> None:
        """SYSENTER/SYSEXIT load fixed flat descriptors, not the GDT's."""
        from dbt.lift.env import ATTR_G, ATTR_S

        kind = 0xB if code else 0x3
        guest_dpl = 0 if dpl == self.view.kernel_level else dpl
        attr = kind | ATTR_S | (dpl << 5) | ATTR_P | ATTR_DB | ATTR_G | (guest_dpl << 16)
        self.machine.set_segment_cache(segment, selector, 0, 0xFFFFFFFF, attr)
        if segment == Seg.CS:
            self.machine.cache.forget_virtual()
