"""The assembled platform: interrupt routing, the simple ports and the screen."""

from __future__ import annotations

from datetime import datetime

import pytest

from dbt.devices.bus import Bus
from dbt.devices.pc import PcPlatform
from dbt.devices.pit import time_of_tick

from .conftest import FakeClock

LAPIC = 0xFEE00000


class Machine:
    """What the machine gives the platform, recorded."""

    def __init__(self, bus: Bus, clock: FakeClock, memory: dict[int, int] | None = None) -> None:
        self.memory = memory or {}
        self.resets = 0
        self.a20: list[bool] = []
        self.debug_output = bytearray()
        self.platform = PcPlatform(
            bus, clock, memory_read=self.read, memory_write=lambda address, size, value: None,
            request_reset=self.reset, set_a20=self.a20.append, debugcon_sink=self.debug_output.extend,
            wall_clock_start=datetime(2024, 1, 2, 3, 4, 5), memory_bytes=32 << 20,
        )

    def read(self, address: int, size_bytes: int) -> int:
        return int.from_bytes(bytes(self.memory.get(address + i, 0) for i in range(size_bytes)), "little")

    def reset(self) -> None:
        self.resets += 1


@pytest.fixture
def machine(bus: Bus, clock: FakeClock) -> Machine:
    return Machine(bus, clock)


def initialize_pics(bus: Bus) -> None:
    for command, data, base, icw3 in ((0x20, 0x21, 0x20, 0x04), (0xA0, 0xA1, 0x28, 0x02)):
        for port, value in ((command, 0x11), (data, base), (data, icw3), (data, 0x01)):
            bus.io_write(port, 1, value)


def test_pit_tick_through_the_pic_in_virtual_wire_mode(bus: Bus, clock: FakeClock, machine: Machine) -> None:
    platform = machine.platform
    initialize_pics(bus)
    bus.io_write(0x21, 1, 0xFE)  # only IRQ 0
    bus.io_write(0x43, 1, 0x34)  # channel 0, mode 2
    bus.io_write(0x40, 1, 11932 & 0xFF)
    bus.io_write(0x40, 1, 11932 >> 8)
    when = platform.next_event_ns()
    assert when == time_of_tick(1 + 11932)
    platform.advance(when - 1)
    assert not platform.interrupt_pending(True)
    platform.advance(when)
    assert not platform.interrupt_pending(False)
    assert platform.interrupt_pending(True)
    assert platform.acknowledge_interrupt() == 0x20
    assert not platform.interrupt_pending(True)
    bus.io_write(0x20, 1, 0x20)
    platform.advance(platform.next_event_ns() or 0)
    assert platform.acknowledge_interrupt() == 0x20


def test_spurious_pic_vector_when_nothing_is_left(bus: Bus, machine: Machine) -> None:
    initialize_pics(bus)
    assert machine.platform.acknowledge_interrupt() == 0x27


def test_enabled_apic_blocks_the_pic_unless_lint0_is_extint(bus: Bus, machine: Machine) -> None:
    platform = machine.platform
    initialize_pics(bus)
    platform.irq(3, True)
    assert platform.interrupt_pending(True)
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)  # LINT0 still masked
    assert not platform.interrupt_pending(True)
    assert platform.acknowledge_interrupt() == 0xFF  # the APIC's spurious vector
    bus.mmio_write(LAPIC + 0x350, 4, 0x700)  # LINT0: ExtINT
    assert platform.interrupt_pending(True)
    assert platform.acknowledge_interrupt() == 0x23


def test_apic_fixed_interrupts_go_before_the_pic(bus: Bus, machine: Machine) -> None:
    platform = machine.platform
    initialize_pics(bus)
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)
    bus.mmio_write(LAPIC + 0x350, 4, 0x700)
    platform.irq(3, True)
    bus.mmio_write(LAPIC + 0x300, 4, 1 << 18 | 0x41)  # self-IPI
    assert platform.acknowledge_interrupt() == 0x41
    assert platform.acknowledge_interrupt() == 0x23


def test_apic_timer_through_the_platform(bus: Bus, machine: Machine) -> None:
    platform = machine.platform
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)
    bus.mmio_write(LAPIC + 0x3E0, 4, 0xB)
    bus.mmio_write(LAPIC + 0x320, 4, 0x40)
    bus.mmio_write(LAPIC + 0x380, 4, 500)
    assert platform.next_event_ns() == 5000  # before the PIT's 18.2 Hz tick
    platform.advance(5000)
    assert platform.acknowledge_interrupt() == 0x40


def test_apic_base_msr(machine: Machine, bus: Bus) -> None:
    platform = machine.platform
    assert platform.apic_base_msr == 0xFEE00900
    platform.apic_base_msr = 0xFEE00100
    assert bus.mmio_read(LAPIC + 0x30, 4) == 0xFFFFFFFF


def test_irq2_is_irq9_and_out_of_range_lines_are_errors(bus: Bus, machine: Machine) -> None:
    platform = machine.platform
    initialize_pics(bus)
    platform.irq(2, True)
    assert platform.acknowledge_interrupt() == 0x29
    with pytest.raises(ValueError):
        platform.irq(16, True)


def test_keyboard_controller_a20_and_reset_reach_the_machine(bus: Bus, machine: Machine) -> None:
    bus.io_write(0x64, 1, 0xD1)
    bus.io_write(0x60, 1, 0xDD)
    assert machine.a20 == [False]
    bus.io_write(0x64, 1, 0xFE)
    assert machine.resets == 1


def test_pci_configuration_space_is_empty(bus: Bus, machine: Machine) -> None:
    bus.io_write(0xCF8, 4, 0x80001234)
    assert bus.io_read(0xCF8, 4) == 0x80001234
    bus.io_write(0xCF8, 4, 0x80000000)  # 00:00.0, vendor/device ID
    assert bus.io_read(0xCFC, 4) == 0xFFFFFFFF
    assert bus.io_read(0xCFE, 2) == 0xFFFF
    assert bus.io_read(0xCFF, 1) == 0xFF
    bus.io_write(0xCFC, 4, 0)
    assert bus.io_read(0xCFC, 4) == 0xFFFFFFFF
    bus.io_write(0xCF9, 1, 0x06)  # PIIX reset control: hard reset
    assert machine.resets == 1


def test_debugcon_and_post(bus: Bus, machine: Machine) -> None:
    assert bus.io_read(0xE9, 1) == 0xE9
    for byte in b"hi\n":
        bus.io_write(0xE9, 1, byte)
    assert machine.debug_output == b"hi\n"
    assert machine.platform.debugcon.output == b"hi\n"
    bus.io_write(0x80, 1, 0x12)
    bus.io_write(0x80, 1, 0x34)
    assert bus.io_read(0x80, 1) == 0x34
    assert machine.platform.post.write_count == 2


def test_cmos_is_wired_with_the_clock_and_memory(bus: Bus, machine: Machine) -> None:
    bus.io_write(0x70, 1, 0x04)
    assert bus.io_read(0x71, 1) == 0x03
    bus.io_write(0x70, 1, 0x30)
    assert bus.io_read(0x71, 1) == (31 * 1024) & 0xFF


def test_screen_text(bus: Bus, clock: FakeClock) -> None:
    memory = {}
    for column, character in enumerate(b"Hello"):
        memory[0xB8000 + 2 * column] = character
        memory[0xB8000 + 2 * column + 1] = 0x07
    for column, character in enumerate(b"\x01 \xc4\xc4"):
        memory[0xB8000 + 160 * 2 + 2 * column] = character
    platform = Machine(bus, clock, memory).platform
    assert platform.screen_text() == "Hello\n\n☺ ──"


def test_no_nmi_source(machine: Machine, bus: Bus) -> None:
    bus.io_write(0x70, 1, 0x80)
    assert machine.platform.cmos.nmi_disabled
    assert not machine.platform.nmi_pending()


def test_the_next_event_is_asked_again_after_any_change(bus: Bus, clock: FakeClock, machine: Machine) -> None:
    """The platform remembers its next event: reprogramming a timer through
    the bus, the time passing the event and the APIC base MSR each make it
    look again, and an advance short of the event keeps the answer."""
    platform = machine.platform
    bus.io_write(0x43, 1, 0x34)  # channel 0, mode 2, period 1000 ticks
    bus.io_write(0x40, 1, 1000 & 0xFF)
    bus.io_write(0x40, 1, 1000 >> 8)
    first = platform.next_event_ns()
    assert first == time_of_tick(1 + 1000)
    platform.advance(first - 1)
    assert platform.next_event_ns() == first
    clock.ns = first - 1
    bus.io_write(0x43, 1, 0x34)  # another period, from now
    bus.io_write(0x40, 1, 100)
    bus.io_write(0x40, 1, 0)
    reprogrammed = platform.next_event_ns()
    assert reprogrammed is not None and first < reprogrammed <= first + time_of_tick(101)
    platform.advance(reprogrammed)
    following = platform.next_event_ns()  # the tick after
    assert following is not None and reprogrammed < following <= reprogrammed + time_of_tick(101)
    clock.ns = reprogrammed
    bus.mmio_write(LAPIC + 0xF0, 4, 0x1FF)
    bus.mmio_write(LAPIC + 0x3E0, 4, 0xB)
    bus.mmio_write(LAPIC + 0x320, 4, 0x40)
    bus.mmio_write(LAPIC + 0x380, 4, 1)  # the APIC timer first
    assert platform.next_event_ns() < following
    platform.apic_base_msr = 0xFEE00100  # the APIC off: the PIT's tick again
    assert platform.next_event_ns() == following
