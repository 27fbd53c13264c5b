"""The PC's pair of 8259A programmable interrupt controllers.

The master answers ports 0x20/0x21 and the slave 0xA0/0xA1; the slave's INT
output is wired to the master's IR2, and the edge/level control registers
(ELCR, ports 0x4D0/0x4D1) of the PIIX/ICH south bridges choose each line's
trigger mode.  Numbers below refer to the Intel 8259A datasheet.

Request model (datasheet, "Edge Triggered Mode"): a rising edge on IRn sets
IRRn, which then stays set only while IRn is high; an IR input that falls
before the interrupt acknowledge vanishes from IRR, and an acknowledge that
finds no request answers with IR7 without setting ISR ("default IR7", the
spurious interrupt).  A level-triggered line's IRR bit simply follows the line.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, auto

from dbt.devices.bus import Device

MASTER_PORT = 0x20
SLAVE_PORT = 0xA0
ELCR_PORT = 0x4D0
CASCADE_LINE = 2

ICW1_IC4 = 0x01  # ICW4 will follow
ICW1_SINGLE = 0x02  # no cascading: ICW3 will not follow
ICW1_INIT = 0x10
OCW3_SELECT = 0x08  # distinguishes OCW3 from OCW2 (both have bit 4 clear)
OCW3_POLL = 0x04
OCW3_READ_REGISTER = 0x02  # with bit 0: 1 = ISR, 0 = IRR
OCW3_SPECIAL_MASK = 0x40  # with bit 5: 1 = set special mask mode, 0 = reset it
ICW4_8086 = 0x01
ICW4_AUTO_EOI = 0x02
ICW4_SPECIAL_FULLY_NESTED = 0x10

# OCW2 commands (bits 7-5: R, SL, EOI).
OCW2_ROTATE_AUTO_EOI_CLEAR = 0b000
OCW2_NON_SPECIFIC_EOI = 0b001
OCW2_NO_OPERATION = 0b010
OCW2_SPECIFIC_EOI = 0b011
OCW2_ROTATE_AUTO_EOI_SET = 0b100
OCW2_ROTATE_NON_SPECIFIC_EOI = 0b101
OCW2_SET_PRIORITY = 0b110
OCW2_ROTATE_SPECIFIC_EOI = 0b111

# PIIX ELCR: IRQ 0, 1, 2, 8 and 13 are always edge triggered (their bits are
# read-only zero), as on the Intel 82371 and QEMU.
MASTER_ELCR_WRITABLE = 0xF8
SLAVE_ELCR_WRITABLE = 0xDE


class InitStep(Enum):
    """Which initialization command word the data port expects next."""

    READY = auto()  # not initializing: the data port is OCW1 (the mask)
    ICW2 = auto()
    ICW3 = auto()
    ICW4 = auto()


class Pic8259:
    """One 8259A.  ``output_changed`` is called after anything that may change
    the INT output (the pair uses it to drive the master's cascade input)."""

    def __init__(self, name: str, elcr_writable: int) -> None:
        self.name = name
        self.elcr_writable = elcr_writable
        self.output_changed: Callable[[], None] = lambda: None
        self.elcr = 0
        self.line_levels = 0
        self.irr = 0
        self.isr = 0
        self.imr = 0
        self.vector_base = 0
        self.icw3 = 0  # master: a bit per IR input that has a slave; slave: its ID
        self.single = False
        self.expects_icw4 = False
        self.mode_8086 = False
        self.auto_eoi = False
        self.rotate_on_auto_eoi = False
        self.special_fully_nested = False
        self.special_mask = False
        self.lowest_priority_line = 7  # IR0 is highest after initialization
        self.read_isr = False
        self.poll_armed = False
        self.init_step = InitStep.READY

    # -- the IR inputs ----------------------------------------------------------------
    def set_line(self, line: int, level: bool) -> None:
        """Drive input IR``line`` (0-7) to ``level``."""
        bit = 1 << line
        was_high = bool(self.line_levels & bit)
        if level:
            self.line_levels |= bit
            if not was_high or self.elcr & bit:
                self.irr |= bit
        else:
            self.line_levels &= ~bit
            # Edge mode: the request must stay high until acknowledged (see the
            # module docstring); level mode: IRR follows the line.
            self.irr &= ~bit
        if was_high != level:
            self.output_changed()

    def set_elcr(self, value: int) -> None:
        self.elcr = value & self.elcr_writable
        # A line switched to level mode requests service for as long as it is high.
        self.irr |= self.elcr & self.line_levels
        self.output_changed()

    # -- priority resolution ----------------------------------------------------------
    def _rank(self, line: int) -> int:
        """0 for the highest-priority line, 7 for the lowest."""
        return (line - self.lowest_priority_line - 1) & 7

    def _highest(self, bits: int) -> int | None:
        for offset in range(8):
            line = (self.lowest_priority_line + 1 + offset) & 7
            if bits >> line & 1:
                return line
        return None

    def _is_cascade(self, line: int) -> bool:
        return not self.single and self.icw3 >> line & 1 == 1

    def highest_request(self) -> int | None:
        """The line the next acknowledge would serve, or None: the highest
        unmasked request whose priority is above every interrupt in service."""
        requested = self.irr & ~self.imr
        if not requested:
            return None
        line = self._highest(requested)
        assert line is not None
        in_service = self.isr & ~self.imr if self.special_mask else self.isr
        serving = self._highest(in_service)
        if serving is None or self._rank(line) < self._rank(serving):
            return line
        # Special fully nested mode lets a slave interrupt a lower-priority
        # interrupt of the same slave (the master sees the same IR input).
        if self.special_fully_nested and line == serving and self._is_cascade(line):
            return line
        return None

    def interrupt_output(self) -> bool:
        """The INT pin."""
        return self.highest_request() is not None

    def acknowledge(self) -> int | None:
        """The INTA sequence: the line served (IRR to ISR), or None when no
        request is left, which the caller turns into the IR7 default vector."""
        line = self.highest_request()
        if line is None:
            return None
        bit = 1 << line
        if not self.elcr & bit:
            self.irr &= ~bit
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.lowest_priority_line = line
        else:
            self.isr |= bit
        self.output_changed()
        return line

    def vector(self, line: int) -> int:
        """The vector of IR``line`` from the ICW2 base.  (In 8080 mode the chip
        would send a CALL instruction instead; x86 guests never select it, and
        we give the 8086 vector regardless.)"""
        return (self.vector_base & 0xF8) | line

    def is_cascade(self, line: int) -> bool:
        """Whether IR``line`` has a slave behind it (master in cascade mode)."""
        return self._is_cascade(line)

    # -- command words ------------------------------------------------------------------
    def write_command(self, value: int) -> None:
        """A write to the even port: ICW1, OCW2 or OCW3."""
        if value & ICW1_INIT:
            self._icw1(value)
        elif value & OCW3_SELECT:
            self._ocw3(value)
        else:
            self._ocw2(value)
        self.output_changed()

    def write_data(self, value: int) -> None:
        """A write to the odd port: the next ICW, or OCW1 (the mask)."""
        step = self.init_step
        if step is InitStep.ICW2:
            self.vector_base = value & 0xF8
            self.init_step = (InitStep.ICW3 if not self.single
                              else InitStep.ICW4 if self.expects_icw4 else InitStep.READY)
        elif step is InitStep.ICW3:
            self.icw3 = value
            self.init_step = InitStep.ICW4 if self.expects_icw4 else InitStep.READY
        elif step is InitStep.ICW4:
            self.mode_8086 = bool(value & ICW4_8086)
            self.auto_eoi = bool(value & ICW4_AUTO_EOI)
            self.special_fully_nested = bool(value & ICW4_SPECIAL_FULLY_NESTED)
            # Buffered mode (bits 2-3) only concerns the data bus drivers.
            self.init_step = InitStep.READY
        else:
            self.imr = value
        self.output_changed()

    def read_command(self) -> int:
        """A read of the even port: the poll answer if a poll command is armed,
        else IRR or ISR as OCW3 selected."""
        if self.poll_armed:
            self.poll_armed = False
            line = self.acknowledge()  # the datasheet: the read acts as an INTA
            return 0 if line is None else 0x80 | line
        return self.isr if self.read_isr else self.irr

    def read_data(self) -> int:
        return self.imr

    def _icw1(self, value: int) -> None:
        # Bit 3 (LTIM) is ignored: on PIIX-class chipsets the ELCR decides
        # the trigger mode of each line.  ADI (bit 2) only matters in 8080 mode.
        self.single = bool(value & ICW1_SINGLE)
        self.expects_icw4 = bool(value & ICW1_IC4)
        # "The edge sense circuit is reset": a line already high must go low
        # and high again before it requests service.
        self.irr = self.elcr & self.line_levels
        self.isr = 0
        self.imr = 0
        self.lowest_priority_line = 7
        self.special_mask = False
        self.read_isr = False
        self.poll_armed = False
        self.rotate_on_auto_eoi = False
        if not self.expects_icw4:  # "all functions selected in ICW4 are set to zero"
            self.mode_8086 = False
            self.auto_eoi = False
            self.special_fully_nested = False
        self.init_step = InitStep.ICW2

    def _ocw2(self, value: int) -> None:
        command = value >> 5
        level = value & 7
        if command in (OCW2_NON_SPECIFIC_EOI, OCW2_ROTATE_NON_SPECIFIC_EOI):
            line = self._highest(self.isr)
            if line is not None:
                self.isr &= ~(1 << line)
                if command == OCW2_ROTATE_NON_SPECIFIC_EOI:
                    self.lowest_priority_line = line
        elif command in (OCW2_SPECIFIC_EOI, OCW2_ROTATE_SPECIFIC_EOI):
            self.isr &= ~(1 << level)
            if command == OCW2_ROTATE_SPECIFIC_EOI:
                self.lowest_priority_line = level
        elif command == OCW2_SET_PRIORITY:
            self.lowest_priority_line = level
        elif command == OCW2_ROTATE_AUTO_EOI_SET:
            self.rotate_on_auto_eoi = True
        elif command == OCW2_ROTATE_AUTO_EOI_CLEAR:
            self.rotate_on_auto_eoi = False
        # OCW2_NO_OPERATION: nothing.

    def _ocw3(self, value: int) -> None:
        if value & OCW3_POLL:
            self.poll_armed = True
        if value & OCW3_READ_REGISTER:
            self.read_isr = bool(value & 1)
        if value & OCW3_SPECIAL_MASK:
            self.special_mask = bool(value & 0x20)


class PicPair(Device):
    """Master and slave 8259A wired as on a PC/AT, with the ELCR registers.

    The platform drives ISA IRQ lines with ``set_irq``; the CPU side asks
    ``interrupt_output`` (the master's INT pin) and runs ``acknowledge``.
    """

    name = "pic"

    def __init__(self) -> None:
        self.ports = [(MASTER_PORT, 2), (SLAVE_PORT, 2), (ELCR_PORT, 2)]
        self.master = Pic8259("master", MASTER_ELCR_WRITABLE)
        self.slave = Pic8259("slave", SLAVE_ELCR_WRITABLE)
        self.slave.output_changed = self._cascade
        self._program_as_bios_leaves_it()

    def _program_as_bios_leaves_it(self) -> None:
        """dbt boots guests without firmware, so the pair starts the way a PC
        BIOS leaves it: vectors 0x08-0x0F and 0x70-0x77, cascade on IR2, 8086
        mode, every line masked except the cascade input."""
        for chip, base, icw3, mask in ((self.master, 0x08, 1 << CASCADE_LINE, 0xFB),
                                       (self.slave, 0x70, CASCADE_LINE, 0xFF)):
            chip.write_command(ICW1_INIT | ICW1_IC4)
            chip.write_data(base)
            chip.write_data(icw3)
            chip.write_data(ICW4_8086)
            chip.write_data(mask)

    def _cascade(self) -> None:
        self.master.set_line(CASCADE_LINE, self.slave.interrupt_output())

    # -- the platform's side ---------------------------------------------------------------
    def set_irq(self, irq: int, level: bool) -> None:
        """Drive ISA IRQ ``irq`` (0-15; 2 is the cascade and is not an input)."""
        chip = self.master if irq < 8 else self.slave
        chip.set_line(irq & 7, level)

    def interrupt_output(self) -> bool:
        """Whether the master asserts INTR."""
        return self.master.interrupt_output()

    def acknowledge(self) -> int:
        """The two INTA cycles: the vector to deliver.  A request that vanished
        gives the master's IR7 vector (no ISR bit set); one that vanished on the
        slave after the master chose IR2 gives the slave's IR7 vector, and the
        master keeps IR2 in service, so the guest must still send the master an
        EOI, exactly as on hardware."""
        line = self.master.acknowledge()
        if line is None:
            return self.master.vector(7)
        if not self.master.is_cascade(line):
            return self.master.vector(line)
        slave_line = self.slave.acknowledge()
        return self.slave.vector(7 if slave_line is None else slave_line)

    @property
    def elcr(self) -> int:
        """Both ELCRs as one 16-bit value (bit n: IRQ n level triggered)."""
        return self.master.elcr | self.slave.elcr << 8

    # -- ports --------------------------------------------------------------------------------
    def _chip(self, port: int) -> Pic8259:
        return self.master if port < SLAVE_PORT else self.slave

    def io_read(self, port: int, size_bytes: int) -> int:
        if port >= ELCR_PORT:
            return (self.master if port == ELCR_PORT else self.slave).elcr
        chip = self._chip(port)
        return chip.read_data() if port & 1 else chip.read_command()

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        value &= 0xFF
        if port >= ELCR_PORT:
            (self.master if port == ELCR_PORT else self.slave).set_elcr(value)
            return
        chip = self._chip(port)
        if port & 1:
            chip.write_data(value)
        else:
            chip.write_command(value)
