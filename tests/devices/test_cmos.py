"""The MC146818 RTC and CMOS RAM through ports 0x70/0x71."""

from __future__ import annotations

from datetime import datetime

import pytest

from dbt.devices.bus import Bus
from dbt.devices.cmos import CmosRtc

from .conftest import FakeClock, LineRecorder

SECOND = 1_000_000_000
START = datetime(2024, 3, 9, 23, 59, 58)  # a Saturday


@pytest.fixture
def irq8() -> LineRecorder:
    return LineRecorder()


@pytest.fixture
def rtc(bus: Bus, clock: FakeClock, irq8: LineRecorder) -> CmosRtc:
    device = CmosRtc(clock, irq8, wall_clock_start=START, memory_bytes=64 << 20)
    bus.attach(device)
    return device


def read(bus: Bus, index: int) -> int:
    bus.io_write(0x70, 1, index)
    return bus.io_read(0x71, 1)


def write(bus: Bus, index: int, value: int) -> None:
    bus.io_write(0x70, 1, index)
    bus.io_write(0x71, 1, value)


def clock_registers(bus: Bus) -> list[int]:
    return [read(bus, index) for index in (0, 2, 4, 6, 7, 8, 9, 0x32)]


def test_time_reads_in_bcd_and_24_hours_by_default(bus: Bus, rtc: CmosRtc) -> None:
    assert clock_registers(bus) == [0x58, 0x59, 0x23, 7, 0x09, 0x03, 0x24, 0x20]


def test_time_advances_with_virtual_time_across_midnight(bus: Bus, clock: FakeClock, rtc: CmosRtc) -> None:
    clock.ns = 3 * SECOND - 1
    assert read(bus, 0) == 0x00 and read(bus, 7) == 0x10  # 00:00:00 on Sunday the 10th
    clock.ns = 3 * SECOND
    assert clock_registers(bus) == [0x01, 0x00, 0x00, 1, 0x10, 0x03, 0x24, 0x20]


def test_binary_and_12_hour_formats(bus: Bus, rtc: CmosRtc) -> None:
    write(bus, 0x0B, 0x04)  # binary, 12 hours
    assert read(bus, 0) == 58 and read(bus, 9) == 24
    assert read(bus, 4) == 0x80 | 11  # 11 PM
    write(bus, 0x0B, 0x00)  # BCD, 12 hours
    assert read(bus, 4) == 0x91


def test_update_in_progress_for_the_last_244_us_of_each_second(
        bus: Bus, clock: FakeClock, rtc: CmosRtc) -> None:
    clock.ns = SECOND - 244_000 - 1
    assert read(bus, 0x0A) == 0x26
    clock.ns = SECOND - 244_000
    assert read(bus, 0x0A) == 0xA6
    clock.ns = SECOND
    assert read(bus, 0x0A) == 0x26


def test_setting_the_time_with_set_held(bus: Bus, clock: FakeClock, rtc: CmosRtc) -> None:
    write(bus, 0x0B, 0x82)  # SET
    write(bus, 4, 0x08)
    write(bus, 2, 0x30)
    write(bus, 0, 0x00)
    clock.ns = 5 * SECOND
    assert read(bus, 0) == 0x00  # frozen while SET
    assert read(bus, 0x0A) & 0x80 == 0
    write(bus, 0x0B, 0x02)
    clock.ns = 7 * SECOND
    assert [read(bus, 4), read(bus, 2), read(bus, 0)] == [0x08, 0x30, 0x02]


def test_periodic_interrupt_on_irq8_and_register_c(
        bus: Bus, clock: FakeClock, rtc: CmosRtc, irq8: LineRecorder) -> None:
    assert rtc.next_event_ns() is None
    write(bus, 0x0A, 0x26)  # 1024 Hz
    write(bus, 0x0B, 0x42)  # periodic interrupt enable
    first = rtc.next_event_ns()
    assert first == 976_563  # 1/1024 s, rounded up to a nanosecond
    rtc.advance(first - 1)
    assert not irq8.level
    rtc.advance(first)
    assert irq8.level
    assert rtc.next_event_ns() is None  # nothing new until C is read
    clock.ns = first
    assert read(bus, 0x0C) == 0xC0
    assert not irq8.level
    assert read(bus, 0x0C) == 0x00
    assert rtc.next_event_ns() == 2 * 976_563 - 1  # 2/1024 s = 1953125 ns


def test_flags_without_enables_do_not_interrupt(bus: Bus, clock: FakeClock, rtc: CmosRtc,
                                                irq8: LineRecorder) -> None:
    clock.ns = SECOND + SECOND // 2  # one update, to 23:59:59
    assert read(bus, 0x0C) == 0x50  # periodic and update-ended flags, no IRQF
    clock.ns = 3 * SECOND  # past midnight: the alarm bytes (all 0) match 00:00:00
    assert read(bus, 0x0C) == 0x70
    assert not irq8.levels


def test_update_ended_interrupt_each_second(bus: Bus, clock: FakeClock, rtc: CmosRtc,
                                            irq8: LineRecorder) -> None:
    write(bus, 0x0B, 0x12)
    assert rtc.next_event_ns() == SECOND
    rtc.advance(SECOND)
    assert irq8.level
    clock.ns = SECOND
    assert read(bus, 0x0C) & 0x90 == 0x90


def test_alarm_interrupt(bus: Bus, clock: FakeClock, rtc: CmosRtc, irq8: LineRecorder) -> None:
    write(bus, 1, 0x01)
    write(bus, 3, 0x00)
    write(bus, 5, 0xC0)  # any hour
    write(bus, 0x0B, 0x22)
    rtc.advance(2 * SECOND)  # 00:00:00
    assert not irq8.level
    rtc.advance(3 * SECOND)  # 00:00:01
    assert irq8.level


def test_register_d_and_nmi_mask(bus: Bus, rtc: CmosRtc) -> None:
    assert read(bus, 0x0D) == 0x80
    bus.io_write(0x70, 1, 0x80 | 0x0D)
    assert rtc.nmi_disabled and rtc.index == 0x0D
    assert bus.io_read(0x71, 1) == 0x80
    bus.io_write(0x70, 1, 0x0D)
    assert not rtc.nmi_disabled


def test_memory_size_bytes(bus: Bus, rtc: CmosRtc) -> None:
    def word(index: int) -> int:
        return read(bus, index) | read(bus, index + 1) << 8
    assert word(0x15) == 640
    assert word(0x17) == word(0x30) == 63 * 1024
    assert word(0x34) == 48 * 16
    assert (read(bus, 0x2E) << 8 | read(bus, 0x2F)) == sum(read(bus, i) for i in range(0x10, 0x2E))


def test_cmos_ram_bytes_are_stored(bus: Bus, rtc: CmosRtc) -> None:
    write(bus, 0x40, 0x5A)
    assert read(bus, 0x40) == 0x5A


def test_divider_reset_holds_the_clock_and_the_first_update_comes_half_a_second_later(
        bus: Bus, clock: FakeClock, rtc: CmosRtc) -> None:
    write(bus, 0x0A, 0x76)  # divider chain in reset
    clock.ns = 10 * SECOND + 123
    assert read(bus, 0) == 0x58
    write(bus, 0x0A, 0x26)
    clock.ns += SECOND // 2 - 1
    assert read(bus, 0) == 0x58
    clock.ns += 1
    assert read(bus, 0) == 0x59
