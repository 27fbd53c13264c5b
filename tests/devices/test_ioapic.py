"""The I/O APIC, alone and routing ISA IRQs to the local APIC on the platform."""

from __future__ import annotations

import pytest

from dbt.devices.apic import InterruptMessage
from dbt.devices.bus import Bus
from dbt.devices.ioapic import IoApic
from dbt.devices.pc import PcPlatform

from .conftest import FakeClock

IOAPIC = 0xFEC00000
LAPIC = 0xFEE00000


class Window:
    """IOREGSEL/IOWIN access, as a guest does it."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def read(self, index: int) -> int:
        self.bus.mmio_write(IOAPIC, 4, index)
        return self.bus.mmio_read(IOAPIC + 0x10, 4)

    def write(self, index: int, value: int) -> None:
        self.bus.mmio_write(IOAPIC, 4, index)
        self.bus.mmio_write(IOAPIC + 0x10, 4, value)

    def route(self, pin: int, low: int, destination: int = 0) -> None:
        self.write(0x11 + 2 * pin, destination << 24)
        self.write(0x10 + 2 * pin, low)


@pytest.fixture
def messages() -> list[InterruptMessage]:
    return []


@pytest.fixture
def ioapic(bus: Bus, messages: list[InterruptMessage]) -> IoApic:
    def send(message: InterruptMessage) -> bool:
        messages.append(message)
        return True

    device = IoApic(send)
    bus.attach(device)
    return device


def test_identification_registers(bus: Bus, ioapic: IoApic) -> None:
    window = Window(bus)
    assert window.read(0x01) == 0x00170011
    window.write(0x00, 0x0F000000 | 0x00FFFFFF)
    assert window.read(0x00) == 0x0F000000
    assert window.read(0x02) == 0x0F000000
    assert bus.mmio_read(IOAPIC, 4) == 0x02  # IOREGSEL reads back the last index
    for pin in range(24):
        assert window.read(0x10 + 2 * pin) == 0x10000  # masked after reset


def test_redirection_entry_read_back(bus: Bus, ioapic: IoApic) -> None:
    window = Window(bus)
    window.route(3, 0xFFFFFFFF, destination=0xAB)
    assert window.read(0x10 + 6) == 0x1AFFF  # delivery status and remote IRR are read-only
    assert window.read(0x11 + 6) == 0xAB000000


def test_edge_pin_sends_one_message_per_assertion(bus: Bus, ioapic: IoApic,
                                                  messages: list[InterruptMessage]) -> None:
    Window(bus).route(4, 0x44)
    ioapic.set_pin(4, True)
    ioapic.set_pin(4, True)
    ioapic.set_pin(4, False)
    assert messages == [InterruptMessage(0x44, 0, 0, False, False)]


def test_edge_asserted_while_masked_is_lost(bus: Bus, ioapic: IoApic,
                                            messages: list[InterruptMessage]) -> None:
    window = Window(bus)
    window.route(4, 0x10044)
    ioapic.set_pin(4, True)
    window.route(4, 0x44)
    assert messages == []


def test_level_pin_waits_for_eoi_and_redelivers_while_asserted(
        bus: Bus, ioapic: IoApic, messages: list[InterruptMessage]) -> None:
    window = Window(bus)
    window.route(9, 0x8000 | 0x59)  # level, active high
    ioapic.set_pin(9, True)
    assert len(messages) == 1 and messages[0].level_triggered
    assert window.read(0x10 + 18) & 1 << 14  # remote IRR
    ioapic.set_pin(9, True)
    assert len(messages) == 1
    ioapic.end_of_interrupt(0x59)
    assert len(messages) == 2  # still asserted
    ioapic.set_pin(9, False)
    ioapic.end_of_interrupt(0x59)
    assert len(messages) == 2
    assert window.read(0x10 + 18) & 1 << 14 == 0


def test_active_low_level_pin(bus: Bus, ioapic: IoApic, messages: list[InterruptMessage]) -> None:
    ioapic.set_pin(11, True)  # idle high, as an active-low line is
    Window(bus).route(11, 0xA000 | 0x5B)
    assert messages == []
    ioapic.set_pin(11, False)
    assert [message.vector for message in messages] == [0x5B]


# -- on the platform, through the local APIC -------------------------------------------------------
@pytest.fixture
def platform(bus: Bus, clock: FakeClock) -> PcPlatform:
    return PcPlatform(bus, clock, memory_read=lambda address, size: 0,
                      memory_write=lambda address, size, value: None,
                      request_reset=lambda: None, set_a20=lambda enabled: None)


def test_isa_irq_routed_to_a_vector(bus: Bus, platform: PcPlatform) -> None:
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)  # software-enable the local APIC
    Window(bus).route(4, 0x44)  # fixed, physical destination 0, edge, high
    platform.irq(4, True)
    assert platform.interrupt_pending(True)
    assert not platform.interrupt_pending(False)
    assert platform.acknowledge_interrupt() == 0x44
    assert not platform.interrupt_pending(True)


def test_message_to_another_apic_id_is_not_accepted(bus: Bus, platform: PcPlatform) -> None:
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)
    Window(bus).route(4, 0x44, destination=3)
    platform.irq(4, True)
    assert not platform.interrupt_pending(True)


def test_level_interrupt_eoi_reaches_the_ioapic(bus: Bus, platform: PcPlatform) -> None:
    window = Window(bus)
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)
    window.route(10, 0x8000 | 0x5A)
    platform.irq(10, True)
    assert platform.acknowledge_interrupt() == 0x5A
    assert bus.mmio_read(LAPIC + 0x180 + 0x20, 4) == 1 << 26  # TMR bit 0x5A
    platform.irq(10, False)
    bus.mmio_write(LAPIC + 0xB0, 4, 0)
    assert window.read(0x10 + 20) & 1 << 14 == 0


def test_pit_irq0_reaches_pin_2(bus: Bus, clock: FakeClock, platform: PcPlatform) -> None:
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)
    Window(bus).route(2, 0x30)
    when = platform.next_event_ns()
    assert when is not None
    platform.advance(when)
    assert platform.acknowledge_interrupt() == 0x30
