"""The monitor's operations on the virtual CPU of a deprivileged guest.

These are what binary-translation callouts call and what the trap handlers
run (a trap handler executes the faulting instruction's rule operation, so
both paths share them).  Each keeps the guest's view (its IF and IOPL, its
descriptor-table registers, its CR0) in the shadow slots and sets the real
CPU up so that the guest keeps running deprivileged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbt.cpu.state import (
    AC,
    AF,
    CF,
    DF,
    EFLAGS_FIXED_ONE,
    ID,
    IF,
    IOPL_MASK,
    NT,
    OF,
    PF,
    SF,
    TF,
    ZF,
    Seg,
    Slot,
)
from dbt.vmm.modes import MONITOR_CR0_BITS, MONITOR_GDT_BASE, MONITOR_IDT_BASE, MONITOR_IDT_LIMIT

if TYPE_CHECKING:
    from dbt.vmm.machine import Machine

# EFLAGS bits POPF may change for the guest besides IF and IOPL.
_POPF_BITS = CF | PF | AF | ZF | SF | TF | DF | OF | NT | AC | ID


def _answer(value: int | None) -> int:
    return 0 if value is None else (1 << 32) | value


class Monitor:
    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.slots = machine.slots

    def helpers(self) -> dict[str, Callable[..., Any]]:
        protection = self.machine.system.protection
        return {
            "virtual_load_table": self.load_table,
            "virtual_load_system_segment": self.load_system_segment,
            "virtual_write_cr": self.write_cr,
            # The guest's ring 0 is at or below any IOPL: no permission check.
            "virtual_io_in": self.machine.port_in,
            "virtual_io_out": self.machine.port_out,
            "virtual_pop_flags": self.pop_flags,
            "virtual_iret": lambda bits: protection.iret(bits, virtual=True),
            "virtual_far_jump": lambda sel, off, bits: protection.far_jump(sel, off, bits),
            "virtual_far_call": lambda sel, off, bits, ret: protection.far_call(sel, off, bits, ret, virtual=True),
            "virtual_far_return": lambda bits, release: protection.far_return(bits, release, virtual=True),
            "virtual_load_ss": lambda sel: protection.load_segment(Seg.SS, sel, virtual=True),
            "virtual_lar": lambda sel: _answer(protection.lar(sel, virtual=True)),
            "virtual_lsl": lambda sel: _answer(protection.lsl(sel, virtual=True)),
            "virtual_verify": lambda sel, write: int(protection.verify(sel, bool(write), virtual=True)),
        }

    # -- entering a deprivileged guest ----------------------------------------------------
    def enter(self) -> None:
        """Set the real CPU up for a guest that was just reset into its ring 0:
        its code runs at the deprivileged level, with the monitor's tables,
        IOPL 0 and interrupts on; its own IF, IOPL and tables are virtual."""
        machine = self.machine
        slots = self.slots
        level = machine.view.kernel_level
        first_cs = Slot.CS_SEL
        for segment in (Seg.CS, Seg.SS):
            first = first_cs + (segment - Seg.CS) * 8
            slots[first] = (slots[first] & 0xFFFC) | level  # selector RPL
            slots[first + 3] = (slots[first + 3] & ~(3 << 5)) | (level << 5)  # DPL, guest DPL 0 above
        slots[Slot.CPL] = level
        slots[Slot.VCPL] = 0
        slots[Slot.VIF] = 1 if slots[Slot.EFLAGS] & IF else 0
        slots[Slot.VIOPL] = (slots[Slot.EFLAGS] & IOPL_MASK) >> 12
        slots[Slot.EFLAGS] = (slots[Slot.EFLAGS] | IF) & ~IOPL_MASK
        slots[Slot.VCR0] = slots[Slot.CR0]
        slots[Slot.CR0] |= MONITOR_CR0_BITS
        slots[Slot.VGDTR_BASE], slots[Slot.VGDTR_LIMIT] = slots[Slot.GDTR_BASE], slots[Slot.GDTR_LIMIT]
        slots[Slot.VIDTR_BASE], slots[Slot.VIDTR_LIMIT] = slots[Slot.IDTR_BASE], slots[Slot.IDTR_LIMIT]
        slots[Slot.GDTR_BASE] = MONITOR_GDT_BASE
        slots[Slot.IDTR_BASE], slots[Slot.IDTR_LIMIT] = MONITOR_IDT_BASE, MONITOR_IDT_LIMIT
        machine.env_changed()

    # -- callouts ---------------------------------------------------------------------------
    def load_table(self, which: int, base: int, limit: int) -> None:
        """LGDT (0) or LIDT (1): the guest's table becomes what the shadow
        mirrors; the real GDTR keeps the monitor's base with the guest's limit."""
        slots = self.slots
        if which == 0:
            slots[Slot.VGDTR_BASE], slots[Slot.VGDTR_LIMIT] = base, limit
            slots[Slot.GDTR_BASE], slots[Slot.GDTR_LIMIT] = MONITOR_GDT_BASE, limit
        else:
            slots[Slot.VIDTR_BASE], slots[Slot.VIDTR_LIMIT] = base, limit

    def load_system_segment(self, which: int, selector: int) -> None:
        protection = self.machine.system.protection
        if which == Seg.LDTR:
            protection.lldt(selector)
            self.slots[Slot.VLDTR_SEL] = selector & 0xFFFF
        else:
            protection.ltr(selector)
            self.slots[Slot.VTR_SEL] = selector & 0xFFFF

    def write_cr(self, number: int, value: int) -> None:
        system = self.machine.system
        if number == 0:
            system.write_cr(0, value | MONITOR_CR0_BITS)
            self.slots[Slot.VCR0] = value | 0x10
        else:
            system.write_cr(number, value)

    def pop_flags(self, value: int, operand_bits: int) -> None:
        """POPF in the guest's ring 0: IF and IOPL go to the virtual CPU, the
        rest to the real one (whose IF stays set and IOPL stays 0)."""
        machine = self.machine
        changeable = _POPF_BITS if operand_bits == 32 else _POPF_BITS & 0xFFFF
        real = machine.eflags()
        machine.set_eflags((real & ~changeable) | (value & changeable) | EFLAGS_FIXED_ONE)
        self.slots[Slot.VIF] = 1 if value & IF else 0
        self.slots[Slot.VIOPL] = (value & IOPL_MASK) >> 12
        machine.env_changed()
