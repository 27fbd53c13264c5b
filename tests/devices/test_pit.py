"""The 8254 against its 1.193182 MHz input clock, through ports 0x40-0x43 and 0x61."""

from __future__ import annotations

import pytest

from dbt.devices.bus import Bus
from dbt.devices.pit import Pit8254, SystemControlPortB, tick_at, time_of_tick

from .conftest import FakeClock, LineRecorder


@pytest.fixture
def irq0() -> LineRecorder:
    return LineRecorder()


@pytest.fixture
def pit(bus: Bus, clock: FakeClock, irq0: LineRecorder) -> Pit8254:
    device = Pit8254(clock, irq0)
    bus.attach(device)
    bus.attach(SystemControlPortB(device, clock))
    return device


def program(bus: Bus, channel: int, mode: int, count: int, access: int = 3, bcd: bool = False) -> None:
    bus.io_write(0x43, 1, channel << 6 | access << 4 | mode << 1 | bcd)
    if access in (1, 3):
        bus.io_write(0x40 + channel, 1, count & 0xFF)
    if access in (2, 3):
        bus.io_write(0x40 + channel, 1, count >> 8)


def read_count(bus: Bus, channel: int) -> int:
    low = bus.io_read(0x40 + channel, 1)
    return low | bus.io_read(0x40 + channel, 1) << 8


def read_status(bus: Bus, channel: int) -> int:
    bus.io_write(0x43, 1, 0xE0 | 2 << channel)  # read-back: status only
    return bus.io_read(0x40 + channel, 1)


def at_tick(clock: FakeClock, tick: int) -> None:
    clock.ns = time_of_tick(tick)


def test_clock_conversion_is_exact_at_the_boundaries() -> None:
    assert tick_at(time_of_tick(1193182)) == 1193182
    assert time_of_tick(1193182) == 1_000_000_000
    assert tick_at(time_of_tick(1000) - 1) == 999


def test_bios_state_ticks_at_18_2_hz(pit: Pit8254) -> None:
    assert pit.next_event_ns() == time_of_tick(65536 + 1)


def test_mode0_counts_down_and_raises_irq0_after_n_plus_one_pulses(
        bus: Bus, clock: FakeClock, pit: Pit8254, irq0: LineRecorder) -> None:
    at_tick(clock, 100)
    program(bus, 0, 0, 1000)
    assert irq0.level is False  # mode 0: OUT low from the control word on
    assert read_status(bus, 0) & 0x80 == 0
    at_tick(clock, 101 + 250)  # loaded at pulse 101, then 250 decrements
    assert read_count(bus, 0) == 750
    assert pit.next_event_ns() == time_of_tick(1101)
    pit.advance(time_of_tick(1101) - 1)
    assert irq0.level is False
    pit.advance(time_of_tick(1101))
    assert irq0.level is True
    at_tick(clock, 1101)
    assert read_status(bus, 0) & 0x80
    assert pit.next_event_ns() is None  # a one-shot


def test_mode2_rate_generator_period_and_counts(
        bus: Bus, clock: FakeClock, pit: Pit8254, irq0: LineRecorder) -> None:
    program(bus, 0, 2, 11932)  # the ~100 Hz tick of many kernels
    start = 1
    edges_before = irq0.rising_edges()
    for period in range(1, 4):
        expected = time_of_tick(start + period * 11932)
        assert pit.next_event_ns() == expected
        pit.advance(expected)
        assert irq0.rising_edges() == edges_before + period
    at_tick(clock, start + 3 * 11932 + 32)
    assert read_count(bus, 0) == 11932 - 32
    # OUT is low for the single pulse at which the count is 1.
    at_tick(clock, start + 4 * 11932 - 1)
    assert read_status(bus, 0) & 0x80 == 0
    at_tick(clock, start + 4 * 11932)
    assert read_status(bus, 0) & 0x80


def test_mode3_square_wave_halves_and_decrement_by_two(
        bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 3, 100)
    at_tick(clock, 1 + 10)
    assert read_count(bus, 0) == 80
    assert read_status(bus, 0) & 0x80
    at_tick(clock, 1 + 50)
    assert read_status(bus, 0) & 0x80 == 0
    assert read_count(bus, 0) == 100
    at_tick(clock, 1 + 99)
    assert read_status(bus, 0) & 0x80 == 0
    assert pit.next_event_ns() == time_of_tick(101)


def test_counter_latch_freezes_the_value_until_read(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 2, 5000)
    at_tick(clock, 1 + 1000)
    bus.io_write(0x43, 1, 0x00)  # latch channel 0
    at_tick(clock, 1 + 3000)
    assert read_count(bus, 0) == 4000
    assert read_count(bus, 0) == 2000  # unlatched: live again


def test_read_back_latches_status_then_count(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 2, 5000)
    at_tick(clock, 1 + 10)
    bus.io_write(0x43, 1, 0xC2)  # read-back count and status of channel 0
    at_tick(clock, 1 + 400)
    status = bus.io_read(0x40, 1)
    assert status == 0x80 | 3 << 4 | 2 << 1  # OUT high, loaded, lo/hi, mode 2
    assert read_count(bus, 0) == 4990


def test_null_count_until_the_next_clock_pulse(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    at_tick(clock, 50)
    program(bus, 0, 2, 5000)
    assert read_status(bus, 0) & 0x40
    at_tick(clock, 51)
    assert read_status(bus, 0) & 0x40 == 0


def test_low_byte_only_access(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 1, 2, 200, access=1)
    at_tick(clock, 1 + 50)
    assert bus.io_read(0x41, 1) == 150
    assert bus.io_read(0x41, 1) == 150


def test_bcd_counting(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 0, 0x0100, bcd=True)  # 100 decimal
    at_tick(clock, 1 + 10)
    assert read_count(bus, 0) == 0x0090


def test_new_mode2_count_takes_effect_at_the_end_of_the_period(
        bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 2, 1000)
    at_tick(clock, 1 + 300)
    bus.io_write(0x40, 1, 500 & 0xFF)
    bus.io_write(0x40, 1, 500 >> 8)
    assert read_count(bus, 0) == 700
    assert pit.next_event_ns() == time_of_tick(1001)
    at_tick(clock, 1001 + 100)
    assert read_count(bus, 0) == 400
    pit.advance(time_of_tick(1001))
    assert pit.next_event_ns() == time_of_tick(1501)


def test_channel2_gate_and_output_at_port_61(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    bus.io_write(0x61, 1, 0x00)  # gate low
    program(bus, 2, 0, 100)
    at_tick(clock, 500)
    assert bus.io_read(0x61, 1) & 0x20 == 0  # not counting with the gate low
    assert read_count(bus, 2) == 100
    bus.io_write(0x61, 1, 0x01)  # gate high: counting from the next pulse
    assert bus.io_read(0x61, 1) & 0x01
    at_tick(clock, 500 + 100)
    assert bus.io_read(0x61, 1) & 0x20 == 0
    at_tick(clock, 500 + 101)
    assert bus.io_read(0x61, 1) & 0x20


def test_port_61_refresh_bit_toggles_every_18_pulses(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    values = []
    for tick in (0, 17, 18, 35, 36):
        at_tick(clock, tick)
        values.append(bus.io_read(0x61, 1) >> 4 & 1)
    assert values == [0, 0, 1, 1, 0]


def test_mode3_odd_count_is_high_one_pulse_longer(bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 3, 101)
    at_tick(clock, 1 + 50)
    assert read_status(bus, 0) & 0x80  # high for 51 pulses
    at_tick(clock, 1 + 51)
    assert read_status(bus, 0) & 0x80 == 0  # low for 50
    at_tick(clock, 1 + 100)
    assert read_status(bus, 0) & 0x80 == 0
    at_tick(clock, 1 + 101)
    assert read_status(bus, 0) & 0x80


def test_a_second_latch_command_is_ignored_until_the_first_is_read(
        bus: Bus, clock: FakeClock, pit: Pit8254) -> None:
    program(bus, 0, 2, 5000)
    at_tick(clock, 1 + 100)
    bus.io_write(0x43, 1, 0x00)
    at_tick(clock, 1 + 200)
    bus.io_write(0x43, 1, 0x00)
    assert read_count(bus, 0) == 4900
    at_tick(clock, 1 + 300)
    assert read_count(bus, 0) == 4700


def test_every_mode2_period_is_a_fresh_irq0_edge(bus: Bus, clock: FakeClock, pit: Pit8254,
                                                 irq0: LineRecorder) -> None:
    program(bus, 0, 2, 1000)
    pit.advance(time_of_tick(1001))
    assert irq0.levels[-2:] == [False, True]  # low then high again: an edge for the PIC
    pit.advance(time_of_tick(2001))
    assert irq0.levels[-2:] == [False, True]
