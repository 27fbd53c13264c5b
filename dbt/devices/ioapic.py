"""The I/O APIC (an 82093AA, MMIO at 0xFEC00000): 24 input pins, each with a
redirection entry that turns the pin into an interrupt message for the
local APIC.  Numbers below refer to the Intel 82093AA datasheet.

Pins are driven with their electrical level; an entry's polarity bit says
which level asserts it.  Edge-triggered pins send one message per assertion
and forget assertions made while masked ("not delivered or held pending").
Level-triggered pins send a message while asserted unless Remote IRR is set,
which the local APIC's EOI of the entry's vector clears.  Delivery is
instantaneous, so the delivery-status bit always reads idle.

Only the IOREGSEL (offset 0x00) and IOWIN (offset 0x10) registers exist.
IOREGSEL takes the low byte of any write; IOWIN reads of any size return the
selected register's bytes, and only 4-byte writes at 0x10 are honoured.
"""

from __future__ import annotations

from collections.abc import Callable

from dbt.devices.apic import InterruptMessage
from dbt.devices.bus import Device

IOAPIC_BASE_ADDRESS = 0xFEC00000
IOAPIC_WINDOW_BYTES = 0x1000
IOREGSEL = 0x00
IOWIN = 0x10
PIN_COUNT = 24

ID_REGISTER = 0x00
VERSION_REGISTER = 0x01
ARBITRATION_REGISTER = 0x02
REDIRECTION_TABLE = 0x10
VERSION_VALUE = (PIN_COUNT - 1) << 16 | 0x11

ENTRY_DESTINATION_LOGICAL = 1 << 11
ENTRY_DELIVERY_STATUS = 1 << 12
ENTRY_POLARITY_LOW = 1 << 13
ENTRY_REMOTE_IRR = 1 << 14
ENTRY_TRIGGER_LEVEL = 1 << 15
ENTRY_MASKED = 1 << 16
ENTRY_WRITABLE_LOW = 0x7FF | ENTRY_DESTINATION_LOGICAL | ENTRY_POLARITY_LOW \
    | ENTRY_TRIGGER_LEVEL | ENTRY_MASKED
ENTRY_WRITABLE_HIGH = 0xFF000000


class IoApic(Device):
    """The I/O APIC.  ``send_message`` delivers to the local APIC and says
    whether it was accepted."""

    name = "ioapic"

    def __init__(self, send_message: Callable[[InterruptMessage], bool]) -> None:
        self.mmio = [(IOAPIC_BASE_ADDRESS, IOAPIC_WINDOW_BYTES)]
        self.send_message = send_message
        self.select = 0
        self.ioapic_id = 0
        self.entries = [ENTRY_MASKED] * PIN_COUNT  # 64-bit entries: masked, edge, active high
        self.pin_levels = 0

    # -- pins ------------------------------------------------------------------------------------
    def _asserted(self, pin: int) -> bool:
        high = bool(self.pin_levels >> pin & 1)
        return high != bool(self.entries[pin] & ENTRY_POLARITY_LOW)

    def set_pin(self, pin: int, level: bool) -> None:
        """Drive input ``pin`` to the electrical ``level``."""
        was_asserted = self._asserted(pin)
        if level:
            self.pin_levels |= 1 << pin
        else:
            self.pin_levels &= ~(1 << pin)
        entry = self.entries[pin]
        if entry & ENTRY_TRIGGER_LEVEL:
            self._service_level(pin)
        elif self._asserted(pin) and not was_asserted and not entry & ENTRY_MASKED:
            self._deliver(pin)

    def _service_level(self, pin: int) -> None:
        entry = self.entries[pin]
        if self._asserted(pin) and not entry & (ENTRY_MASKED | ENTRY_REMOTE_IRR):
            if self._deliver(pin):
                self.entries[pin] |= ENTRY_REMOTE_IRR

    def _deliver(self, pin: int) -> bool:
        entry = self.entries[pin]
        return self.send_message(InterruptMessage(
            vector=entry & 0xFF,
            delivery_mode=entry >> 8 & 7,
            destination=entry >> 56 & 0xFF,
            logical=bool(entry & ENTRY_DESTINATION_LOGICAL),
            level_triggered=bool(entry & ENTRY_TRIGGER_LEVEL),
        ))

    def end_of_interrupt(self, vector: int) -> None:
        """The local APIC's EOI broadcast for a level-triggered ``vector``."""
        for pin, entry in enumerate(self.entries):
            if entry & ENTRY_TRIGGER_LEVEL and entry & ENTRY_REMOTE_IRR and entry & 0xFF == vector:
                self.entries[pin] = entry & ~ENTRY_REMOTE_IRR
                self._service_level(pin)

    # -- registers ---------------------------------------------------------------------------------
    def read_register(self, index: int) -> int:
        if index in (ID_REGISTER, ARBITRATION_REGISTER):
            return self.ioapic_id << 24
        if index == VERSION_REGISTER:
            return VERSION_VALUE
        if REDIRECTION_TABLE <= index < REDIRECTION_TABLE + 2 * PIN_COUNT:
            entry = self.entries[(index - REDIRECTION_TABLE) >> 1]
            return entry >> 32 if index & 1 else entry & 0xFFFFFFFF
        return 0

    def write_register(self, index: int, value: int) -> None:
        if index == ID_REGISTER:
            self.ioapic_id = value >> 24 & 0xF
        elif REDIRECTION_TABLE <= index < REDIRECTION_TABLE + 2 * PIN_COUNT:
            pin = (index - REDIRECTION_TABLE) >> 1
            entry = self.entries[pin]
            if index & 1:
                entry = (entry & 0xFFFFFFFF) | (value & ENTRY_WRITABLE_HIGH) << 32
            else:
                read_only = entry & (ENTRY_REMOTE_IRR | 0xFFFFFFFF00000000)
                entry = read_only | (value & ENTRY_WRITABLE_LOW)
                if not entry & ENTRY_TRIGGER_LEVEL:
                    entry &= ~ENTRY_REMOTE_IRR  # Remote IRR is undefined for edge entries
            self.entries[pin] = entry
            if entry & ENTRY_TRIGGER_LEVEL:  # e.g. unmasking a pin that is asserted
                self._service_level(pin)

    def mmio_read(self, address: int, size_bytes: int) -> int:
        offset = address - IOAPIC_BASE_ADDRESS
        mask = (1 << (8 * size_bytes)) - 1
        if offset == IOREGSEL:
            return self.select & mask
        if IOWIN <= offset < IOWIN + 4:
            return self.read_register(self.select) >> (8 * (offset - IOWIN)) & mask
        return 0

    def mmio_write(self, address: int, size_bytes: int, value: int) -> None:
        offset = address - IOAPIC_BASE_ADDRESS
        if offset == IOREGSEL:
            self.select = value & 0xFF
        elif offset == IOWIN and size_bytes == 4:
            self.write_register(self.select, value & 0xFFFFFFFF)
