"""The MC146818 real-time clock and its CMOS RAM (ports 0x70/0x71, IRQ 8).

The clock shows ``wall_clock_start`` at the moment the device is built and
runs on virtual time (``now_ns()``); the host clock is never read.  Update
cycles happen once per second on the divider chain's schedule, and the
status flags (register C) are computed from time when they are looked at.
Numbers below refer to the Motorola MC146818A datasheet.

Time is kept as a calendar value, not as the raw register bytes, so a guest
that switches register B between BCD and binary or 12 and 24 hours reads the
same time in the new format at once (the chip would show the old bytes until
they are rewritten).  A date or time written out of range is clamped to the
nearest valid one when the clock starts counting from it.  Daylight saving
(register B bit 0) is stored but has no effect.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dbt.devices.bus import Device

INDEX_PORT = 0x70
DATA_PORT = 0x71
NMI_DISABLE = 0x80  # bit 7 of a write to port 0x70

SECONDS, ALARM_SECONDS, MINUTES, ALARM_MINUTES, HOURS, ALARM_HOURS = range(6)
DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR = range(6, 10)
REGISTER_A, REGISTER_B, REGISTER_C, REGISTER_D = range(0x0A, 0x0E)
CENTURY = 0x32  # the PC/AT BIOS convention (also ACPI FADT's default)
TIME_REGISTERS = {SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY}

A_UPDATE_IN_PROGRESS = 0x80
B_SET = 0x80
B_PERIODIC_ENABLE = 0x40
B_ALARM_ENABLE = 0x20
B_UPDATE_ENDED_ENABLE = 0x10
B_BINARY = 0x04
B_24_HOUR = 0x02
B_INTERRUPT_ENABLES = B_PERIODIC_ENABLE | B_ALARM_ENABLE | B_UPDATE_ENDED_ENABLE
C_INTERRUPT_REQUEST = 0x80
# Register C's flags sit at the same bits as their enables in register B.
C_PERIODIC, C_ALARM, C_UPDATE_ENDED = B_PERIODIC_ENABLE, B_ALARM_ENABLE, B_UPDATE_ENDED_ENABLE
D_VALID_RAM_AND_TIME = 0x80
ALARM_DONT_CARE = 0xC0

NS_PER_SECOND = 1_000_000_000
DIVIDER_HZ = 32_768
UPDATE_IN_PROGRESS_NS = 244_000  # UIP rises this long before each update
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class CalendarTime:
    """The clock's registers as numbers (day of week 1 = Sunday)."""

    second: int
    minute: int
    hour: int
    day_of_week: int
    day: int
    month: int
    year: int

    @staticmethod
    def of(moment: datetime, day_of_week: int) -> CalendarTime:
        return CalendarTime(moment.second, moment.minute, moment.hour, day_of_week,
                            moment.day, moment.month, moment.year)

    def to_datetime(self) -> datetime:
        year = min(max(self.year, 1), 9999)
        month = min(max(self.month, 1), 12)
        day = min(max(self.day, 1), calendar.monthrange(year, month)[1])
        return datetime(year, month, day, min(self.hour, 23), min(self.minute, 59),
                        min(self.second, 59))


def sunday_first_day_of_week(moment: datetime) -> int:
    return moment.isoweekday() % 7 + 1


class CmosRtc(Device):
    """The RTC and 128 bytes of CMOS RAM.  ``memory_bytes`` fills the BIOS
    memory-size bytes (0x15-0x18, 0x30-0x31, 0x34-0x35); ``nmi_disabled``
    holds bit 7 of the last write to port 0x70."""

    name = "cmos"

    def __init__(self, now_ns: Callable[[], int], set_irq8: Callable[[bool], None], *,
                 wall_clock_start: datetime | None = None, memory_bytes: int = 0) -> None:
        self.ports = [(INDEX_PORT, 2)]
        self.now_ns = now_ns
        self.set_irq8 = set_irq8
        self.ram = bytearray(128)
        self.index = 0
        self.nmi_disabled = False
        self.register_a = 0x26  # 32.768 kHz time base, 1024 Hz periodic rate
        self.register_b = B_24_HOUR
        self._flags = 0
        self._irq_level = False
        start = (wall_clock_start or datetime(2000, 1, 1)).replace(tzinfo=None)
        now = now_ns()
        # The divider chain's phase: a second boundary (an update) happens at
        # _phase_ns + k * 10**9.  Sub-second precision of the start is kept.
        self._phase_ns = now - start.microsecond * 1000
        self._time_at_phase = start.replace(microsecond=0)
        self._day_of_week_at_phase = sunday_first_day_of_week(start)
        self._frozen: CalendarTime | None = None  # while updates are inhibited
        self._flags_until_ns = now
        self._fill_memory_size(memory_bytes)

    # -- CMOS RAM contents -----------------------------------------------------------------
    def _fill_memory_size(self, memory_bytes: int) -> None:
        """The BIOS's memory-size bytes and the standard checksum over 0x10-0x2D."""
        base_kib = min(memory_bytes >> 10, 640)
        extended_kib = min(max(memory_bytes - (1 << 20), 0) >> 10, 0xFFFF)
        above_16m_blocks = min(max(memory_bytes - (16 << 20), 0) >> 16, 0xFFFF)
        for address, value in ((0x15, base_kib), (0x17, extended_kib), (0x30, extended_kib),
                               (0x34, above_16m_blocks)):
            self.ram[address:address + 2] = value.to_bytes(2, "little")
        checksum = sum(self.ram[0x10:0x2E])
        self.ram[0x2E:0x30] = checksum.to_bytes(2, "big")

    # -- time ---------------------------------------------------------------------------------
    def _divider_running(self) -> bool:
        # DV2-0 = 010 is the normal 32.768 kHz time base; like QEMU we also run
        # for 000 and 001 and hold the chain for anything above 010.
        return (self.register_a >> 4) & 7 <= 2

    def _updating(self) -> bool:
        return self._frozen is None

    def _second_index(self, time_ns: int) -> int:
        """How many updates happened between the phase and ``time_ns``."""
        return (time_ns - self._phase_ns) // NS_PER_SECOND

    def _time(self, now: int) -> CalendarTime:
        if self._frozen is not None:
            return self._frozen
        moment = self._time_at_phase + timedelta(seconds=self._second_index(now))
        days = (moment.date() - self._time_at_phase.date()).days
        return CalendarTime.of(moment, (self._day_of_week_at_phase - 1 + days) % 7 + 1)

    def _set_time(self, value: CalendarTime, now: int) -> None:
        if self._frozen is not None:
            self._frozen = value
            return
        self._start_counting_from(value, now)

    def _start_counting_from(self, value: CalendarTime, now: int) -> None:
        """Run from ``value``, which is the time shown until the next update."""
        self._phase_ns += self._second_index(now) * NS_PER_SECOND
        self._time_at_phase = value.to_datetime()
        self._day_of_week_at_phase = value.day_of_week
        self._frozen = None

    def _update_inhibit(self, now: int) -> None:
        """Freeze or release the time after a change of SET or of the divider."""
        inhibited = bool(self.register_b & B_SET) or not self._divider_running()
        if inhibited and self._frozen is None:
            self._frozen = self._time(now)
        elif not inhibited and self._frozen is not None:
            self._start_counting_from(self._frozen, now)

    def update_in_progress(self, now: int) -> bool:
        """Register A bit 7: set for the last 244 us before each update."""
        if not self._updating():
            return False
        return (now - self._phase_ns) % NS_PER_SECOND >= NS_PER_SECOND - UPDATE_IN_PROGRESS_NS

    # -- register encoding ------------------------------------------------------------------------
    def _encode(self, value: int) -> int:
        return value if self.register_b & B_BINARY else (value // 10) << 4 | value % 10

    def _decode(self, value: int) -> int:
        return value if self.register_b & B_BINARY else (value >> 4) * 10 + (value & 0xF)

    def _encode_hour(self, hour: int) -> int:
        if self.register_b & B_24_HOUR:
            return self._encode(hour)
        return self._encode(hour % 12 or 12) | (0x80 if hour >= 12 else 0)

    def _decode_hour(self, value: int) -> int:
        if self.register_b & B_24_HOUR:
            return self._decode(value)
        return self._decode(value & 0x7F) % 12 + (12 if value & 0x80 else 0)

    def _read_time_register(self, index: int, now: int) -> int:
        time = self._time(now)
        if index == HOURS:
            return self._encode_hour(time.hour)
        value = {SECONDS: time.second, MINUTES: time.minute, DAY_OF_WEEK: time.day_of_week,
                 DAY_OF_MONTH: time.day, MONTH: time.month, YEAR: time.year % 100,
                 CENTURY: time.year // 100}[index]
        return self._encode(value)

    def _write_time_register(self, index: int, value: int, now: int) -> None:
        time = self._time(now)
        if index == HOURS:
            time = replace(time, hour=self._decode_hour(value))
        elif index == YEAR:
            time = replace(time, year=time.year // 100 * 100 + self._decode(value) % 100)
        elif index == CENTURY:
            time = replace(time, year=self._decode(value) * 100 + time.year % 100)
        else:
            field = {SECONDS: "second", MINUTES: "minute", DAY_OF_WEEK: "day_of_week",
                     DAY_OF_MONTH: "day", MONTH: "month"}[index]
            time = replace(time, **{field: self._decode(value)})
        self._set_time(time, now)

    # -- interrupt flags ----------------------------------------------------------------------------
    def _periodic_divider_ticks(self) -> int | None:
        """The periodic interrupt's period in 32.768 kHz divider ticks."""
        rate = self.register_a & 0x0F
        if rate == 0:
            return None
        if rate <= 2:  # rates 1 and 2 repeat rates 8 and 9 with this time base
            rate += 7
        return 1 << (rate - 1)

    def _periodic_index(self, time_ns: int, period_ticks: int) -> int:
        return (time_ns - self._phase_ns) * DIVIDER_HZ // (period_ticks * NS_PER_SECOND)

    def _alarm_matched(self, first_update: int, last_update: int) -> bool:
        """Whether the alarm bytes equal the time at one of the updates
        ``first_update``..``last_update`` (indexes after the phase)."""
        alarm = [self.ram[ALARM_HOURS], self.ram[ALARM_MINUTES], self.ram[ALARM_SECONDS]]
        first_update = max(first_update, last_update - SECONDS_PER_DAY + 1)
        start = self._time_at_phase
        start_second = start.hour * 3600 + start.minute * 60 + start.second
        for update in range(first_update, last_update + 1):
            minutes, second = divmod((start_second + update) % SECONDS_PER_DAY, 60)
            hour, minute = divmod(minutes, 60)
            shown = [self._encode_hour(hour), self._encode(minute), self._encode(second)]
            if all(want & ALARM_DONT_CARE == ALARM_DONT_CARE or want == have
                   for want, have in zip(alarm, shown, strict=True)):
                return True
        return False

    def _catch_up(self, now: int) -> None:
        """Raise the flags of every periodic tick and update since the last look."""
        since = self._flags_until_ns
        if now <= since:
            return
        self._flags_until_ns = now
        if self._divider_running():
            period = self._periodic_divider_ticks()
            if period and self._periodic_index(now, period) > self._periodic_index(since, period):
                self._flags |= C_PERIODIC
        if self._updating():
            first, last = self._second_index(since) + 1, self._second_index(now)
            if last >= first:
                self._flags |= C_UPDATE_ENDED
                if self._alarm_matched(first, last):
                    self._flags |= C_ALARM
        self._drive_irq()

    def _interrupt_requested(self) -> bool:
        return bool(self._flags & self.register_b & B_INTERRUPT_ENABLES)

    def _drive_irq(self) -> None:
        level = self._interrupt_requested()
        if level != self._irq_level:
            self._irq_level = level
            self.set_irq8(level)

    def next_event_ns(self) -> int | None:
        """The next periodic tick or update that would raise IRQ 8, or None
        while IRQ 8 is already asserted (until register C is read)."""
        if self._irq_level:
            return None
        since = self._flags_until_ns
        candidates = []
        period = self._periodic_divider_ticks()
        if self.register_b & B_PERIODIC_ENABLE and period and self._divider_running():
            index = self._periodic_index(since, period) + 1
            offset = -(-index * period * NS_PER_SECOND // DIVIDER_HZ)
            candidates.append(self._phase_ns + offset)
        if self.register_b & (B_ALARM_ENABLE | B_UPDATE_ENDED_ENABLE) and self._updating():
            candidates.append(self._phase_ns + (self._second_index(since) + 1) * NS_PER_SECOND)
        return min(candidates, default=None)

    def advance(self, now_ns: int) -> None:
        self._catch_up(now_ns)

    # -- registers ------------------------------------------------------------------------------------
    def read_register(self, index: int) -> int:
        now = self.now_ns()
        self._catch_up(now)
        if index in TIME_REGISTERS:
            return self._read_time_register(index, now)
        if index == REGISTER_A:
            return self.register_a | (A_UPDATE_IN_PROGRESS if self.update_in_progress(now) else 0)
        if index == REGISTER_B:
            return self.register_b
        if index == REGISTER_C:  # reading C acknowledges every flag
            value = self._flags | (C_INTERRUPT_REQUEST if self._interrupt_requested() else 0)
            self._flags = 0
            self._drive_irq()
            return value
        if index == REGISTER_D:
            return D_VALID_RAM_AND_TIME
        return self.ram[index]

    def write_register(self, index: int, value: int) -> None:
        now = self.now_ns()
        self._catch_up(now)  # flags due under the old settings
        if index in TIME_REGISTERS:
            self._write_time_register(index, value, now)
        elif index == REGISTER_A:
            was_running = self._divider_running()
            self.register_a = value & 0x7F  # UIP is read-only
            if self._divider_running() and not was_running:
                # "The first update cycle begins one-half second later."
                self._phase_ns = now + NS_PER_SECOND // 2 - NS_PER_SECOND
            self._update_inhibit(now)
        elif index == REGISTER_B:
            if value & B_SET:  # SET clears UIE
                value &= ~B_UPDATE_ENDED_ENABLE
            self.register_b = value
            self._update_inhibit(now)
            self._drive_irq()
        elif index not in (REGISTER_C, REGISTER_D):  # C and D are read-only
            self.ram[index] = value

    def io_read(self, port: int, size_bytes: int) -> int:
        if port == INDEX_PORT:
            return 0xFF  # the index register is write-only
        return self.read_register(self.index)

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        value &= 0xFF
        if port == INDEX_PORT:
            self.index = value & 0x7F
            self.nmi_disabled = bool(value & NMI_DISABLE)
        else:
            self.write_register(self.index, value)
