"""The three ways to run a guest, and what each makes the hardware see.

* ``native``: the guest kernel runs at CPL 0; no monitor stands between it
  and the (virtual) hardware.  The reference for equivalence.
* ``trap``: classic trap-and-emulate.  The guest kernel runs deprivileged
  (real CPL 1, or 3 with ``--deprivilege 0/3``) and unmodified; privileged
  instructions fault and the monitor emulates them on the virtual CPU.
  Sensitive instructions that do not fault run on the real CPU, so the
  guest can see it is virtualized.
* ``bt``: binary translation.  The guest kernel runs deprivileged too, but
  its sensitive instructions are rewritten (by ``translator_rules/``) into
  operations on the virtual CPU, so nothing faults and nothing leaks.

A ``PrivilegeView`` holds what differs: where the CPU reads descriptors
(the monitor's shadow of the guest's GDT, in which ring-0 descriptors carry
the deprivileged DPL), how selectors' RPLs and EFLAGS.IF/IOPL translate
between the guest's view and the real CPU, and which IF gates interrupts.
"""

from __future__ import annotations

import enum

from dbt.cpu.state import IF, IOPL_MASK, Slot

# Where the monitor keeps its own tables, in the top 4 MiB of the linear
# address space as VMware's monitor did; SGDT and SIDT executed natively by
# a deprivileged guest show these.
MONITOR_GDT_BASE = 0xFFC00000
MONITOR_IDT_BASE = 0xFFC10000
MONITOR_IDT_LIMIT = 0x7FF
# CR0 bits the monitor keeps set on the real CPU while a guest runs: NE
# (native FPU error reporting), which only SMSW can reveal to the guest.
MONITOR_CR0_BITS = 1 << 5


class Mode(enum.IntEnum):
    NATIVE = 0
    BT = 1
    TRAP = 2

    @classmethod
    def parse(cls, text: str) -> Mode:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown mode {text!r}: native, bt or trap") from None


class PrivilegeView:
    """Native: the guest sees the real CPU."""

    deprivileged = False
    kernel_level = 0  # the real CPL of the guest's ring 0

    def __init__(self, slots) -> None:  # type: ignore[no-untyped-def]
        self.slots = slots

    # -- descriptors -------------------------------------------------------------------
    def gdt(self) -> tuple[int, int]:
        """(base, limit) of the GDT the CPU reads descriptors from."""
        return self.slots[Slot.GDTR_BASE], self.slots[Slot.GDTR_LIMIT]

    def idt(self) -> tuple[int, int]:
        """(base, limit) of the IDT guest exceptions and interrupts go through."""
        return self.slots[Slot.IDTR_BASE], self.slots[Slot.IDTR_LIMIT]

    def real_dpl(self, dpl: int, conforming: bool = False) -> int:
        """The DPL the CPU sees for a guest descriptor of privilege ``dpl``."""
        return dpl

    # -- privilege levels ---------------------------------------------------------------
    def real_level(self, level: int) -> int:
        """The real CPL at which guest privilege level ``level`` runs."""
        return level

    def transition(self, old_level: int, new_level: int) -> None:
        """The monitor moved the guest between its privilege levels."""

    def real_selector(self, selector: int) -> int:
        """A selector the guest wrote, with its RPL as the real CPU needs it."""
        return selector

    def virtual_selector(self, selector: int, level: int) -> int:
        """A real CS or SS selector, current while the guest ran at privilege
        ``level``, as the guest may see it (in frames it reads)."""
        return selector

    # -- EFLAGS --------------------------------------------------------------------------
    def eflags_image(self, eflags: int) -> int:
        """EFLAGS as the guest may see it (pushed in an exception frame)."""
        return eflags

    def interrupts_enabled(self) -> bool:
        return bool(self.slots[Slot.EFLAGS] & IF)

    def clear_interrupt_flag(self) -> None:
        """An interrupt gate was taken."""
        self.slots[Slot.EFLAGS] &= ~IF & 0xFFFFFFFF

    def io_privilege(self) -> tuple[int, int]:
        """(CPL, IOPL) for an I/O permission check."""
        eflags = self.slots[Slot.EFLAGS]
        return self.slots[Slot.CPL], (eflags & IOPL_MASK) >> 12


class DeprivilegedView(PrivilegeView):
    """The guest's ring 0 runs at ``kernel_level``: the monitor keeps the
    guest's IF, IOPL, descriptor-table registers and CPL virtual."""

    deprivileged = True

    def __init__(self, slots, kernel_level: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(slots)
        self.kernel_level = kernel_level

    def gdt(self) -> tuple[int, int]:
        # The shadow GDT mirrors the guest's table entry for entry; reading
        # the guest's entries through real_dpl is that mirror, always in sync.
        return self.slots[Slot.VGDTR_BASE], self.slots[Slot.VGDTR_LIMIT]

    def idt(self) -> tuple[int, int]:
        return self.slots[Slot.VIDTR_BASE], self.slots[Slot.VIDTR_LIMIT]

    def real_dpl(self, dpl: int, conforming: bool = False) -> int:
        # Conforming code needs no raise (it may be entered from any level
        # at or above its DPL), and its DPL is visible to LAR from ring 3.
        return dpl if conforming else max(dpl, self.kernel_level)

    def real_level(self, level: int) -> int:
        return max(level, self.kernel_level)

    def transition(self, old_level: int, new_level: int) -> None:
        """User code runs with the guest's own IF and IOPL on the real CPU;
        kernel code with IF on and IOPL 0, the guest's kept virtual.  Moving
        between them (in an operation the monitor performs) moves the flags."""
        slots = self.slots
        if old_level != 0 and new_level == 0:
            eflags = slots[Slot.EFLAGS]
            slots[Slot.VIF] = 1 if eflags & IF else 0
            slots[Slot.VIOPL] = (eflags & IOPL_MASK) >> 12
            slots[Slot.EFLAGS] = (eflags | IF) & ~IOPL_MASK
        elif old_level == 0 and new_level != 0:
            eflags = slots[Slot.EFLAGS] & ~(IF | IOPL_MASK)
            slots[Slot.EFLAGS] = eflags | (IF if slots[Slot.VIF] else 0) | (slots[Slot.VIOPL] << 12)

    def real_selector(self, selector: int) -> int:
        rpl = selector & 3
        return (selector & 0xFFFC) | self.real_level(rpl)

    def virtual_selector(self, selector: int, level: int) -> int:
        if selector & 3 == self.real_level(level):
            return (selector & 0xFFFC) | level
        return selector

    def eflags_image(self, eflags: int) -> int:
        slots = self.slots
        if slots[Slot.VCPL] != 0:
            return eflags  # user code runs with the guest's own IF and IOPL
        image = eflags & ~(IF | IOPL_MASK)
        if slots[Slot.VIF]:
            image |= IF
        return image | (slots[Slot.VIOPL] << 12)

    def interrupts_enabled(self) -> bool:
        if self.slots[Slot.VCPL] != 0:
            return super().interrupts_enabled()
        return bool(self.slots[Slot.VIF])

    def clear_interrupt_flag(self) -> None:
        if self.slots[Slot.VCPL] != 0:
            super().clear_interrupt_flag()
        else:
            self.slots[Slot.VIF] = 0

    def io_privilege(self) -> tuple[int, int]:
        # The real CPU's: the guest kernel at CPL 1 with IOPL 0 faults on I/O.
        return super().io_privilege()


def make_view(slots, mode: Mode, kernel_level: int) -> PrivilegeView:  # type: ignore[no-untyped-def]
    if mode is Mode.NATIVE:
        return PrivilegeView(slots)
    return DeprivilegedView(slots, kernel_level)
