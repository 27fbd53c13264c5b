"""The 8254 programmable interval timer (ports 0x40-0x43) and port 0x61.

Counters are never ticked.  A channel remembers at which input clock pulse
it began counting, and its count element (CE) and OUT are computed from the
1.193182 MHz input clock at the moment they are asked for.  Numbers below
refer to the Intel 8254 datasheet.

Timing conventions (datasheet, "Counter Operation"): a count written by the
CPU is loaded into the CE on the next CLK pulse and decremented on the ones
after, so in mode 0 OUT rises N + 1 pulses after the count is written.  Pulse
``k`` happens at ``ceil(k * 10**9 / 1193182)`` ns.

On a PC, channel 0's OUT is IRQ 0, channel 1 once refreshed DRAM (its OUT is
not connected here), and channel 2's gate and OUT are bits 0 and 5 of port
0x61.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, IntEnum, auto

from dbt.devices.bus import Device

PIT_INPUT_HZ = 1_193_182
NS_PER_SECOND = 1_000_000_000
PIT_PORT = 0x40
CONTROL_PORT = 0x43
PORT_61 = 0x61
READ_BACK = 3  # the SC field of a read-back command
READ_BACK_NO_COUNT = 0x20  # active low in the read-back command
READ_BACK_NO_STATUS = 0x10
# Port 0x61 bit 4 toggles with every DRAM refresh request, which the PC/AT
# BIOS paces with channel 1 at a count of 18 (15.085 us); it is derived from
# time here, whatever channel 1 is programmed to.
REFRESH_PERIOD_TICKS = 18


def tick_at(time_ns: int) -> int:
    """The index of the last input clock pulse at or before ``time_ns``."""
    return time_ns * PIT_INPUT_HZ // NS_PER_SECOND


def time_of_tick(tick: int) -> int:
    """When input clock pulse ``tick`` happens, in ns (rounded up)."""
    return -(-tick * NS_PER_SECOND // PIT_INPUT_HZ)


class Access(IntEnum):
    """The RW field of a control word: how the count is read and written."""

    LATCH = 0
    LOW_BYTE = 1
    HIGH_BYTE = 2
    LOW_THEN_HIGH = 3


class Phase(Enum):
    IDLE = auto()  # control word written, no count loaded yet
    AWAITING_TRIGGER = auto()  # modes 1 and 5: count written, no gate trigger yet
    COUNTING = auto()


def to_bcd(value: int) -> int:
    return int(str(value), 16)


def from_bcd(value: int) -> int:
    return sum(((value >> (4 * digit)) & 0xF) * 10 ** digit for digit in range(4))


class PitChannel:
    """One counter.  ``tick`` arguments are input-clock pulse indexes and must
    not decrease from call to call."""

    def __init__(self, gate: bool) -> None:
        self.gate = gate
        self.mode_bits = 0  # as written, so mode 6 reads back as 6
        self.access = Access.LOW_THEN_HIGH
        self.bcd = False
        self.phase = Phase.IDLE
        self.count = 0x10000  # the N being counted (0 written means the modulus)
        self.reload_count = 0x10000  # from the count register, for gate retriggers
        self.idle_value = 0  # what the CE holds while not counting
        # Progress in pulses: ``elapsed_base`` pulses were counted before
        # ``run_start``; None while the gate holds counting.
        self.elapsed_base = 0
        self.run_start: int | None = None
        self.loaded_at: int | None = None  # pulse at which the CR reached the CE
        # Modes 2 and 3 take a count written while counting at the end of the
        # current period.
        self.pending_tick: int | None = None
        self.pending_count = 0
        self.low_byte_written: int | None = None
        self.read_high_next = False
        self.latched_bytes: list[int] = []
        self.latched_status: int | None = None

    @property
    def mode(self) -> int:
        """The operating mode 0-5 (6 and 7 are aliases of 2 and 3)."""
        return self.mode_bits & 3 if self.mode_bits >= 6 else self.mode_bits

    @property
    def modulus(self) -> int:
        return 10000 if self.bcd else 0x10000

    # -- the counting model -------------------------------------------------------------
    def _promote(self, tick: int) -> None:
        if self.pending_tick is not None and tick >= self.pending_tick:
            self.count = self.pending_count
            self.elapsed_base = 0
            self.run_start = self.pending_tick
            self.pending_tick = None

    def _elapsed(self, tick: int) -> int:
        if self.run_start is None or tick < self.run_start:
            return self.elapsed_base
        return self.elapsed_base + tick - self.run_start

    def output(self, tick: int) -> bool:
        """The OUT pin after pulse ``tick``."""
        self._promote(tick)
        mode = self.mode
        if self.phase is Phase.IDLE:
            return mode != 0  # the initial state after a control word
        if self.phase is Phase.AWAITING_TRIGGER:
            return True
        elapsed, count = self._elapsed(tick), self.count
        if mode in (0, 1):
            return elapsed >= count
        if mode == 2:
            return self.run_start is None or elapsed % count != count - 1
        if mode == 3:
            return self.run_start is None or elapsed % count < (count + 1) // 2
        return elapsed != count  # modes 4 and 5: low for the one pulse at zero

    def count_element(self, tick: int) -> int:
        """The CE after pulse ``tick`` (binary, even in BCD mode)."""
        self._promote(tick)
        if self.phase is not Phase.COUNTING:
            return self.idle_value
        elapsed, count, modulus = self._elapsed(tick), self.count, self.modulus
        mode = self.mode
        if mode == 2:
            return (count - elapsed % count) % modulus
        if mode == 3:
            # Mode 3 decrements by two, through each half of the period in
            # turn (an odd count spends one pulse longer in the high half).
            high_pulses = (count + 1) // 2
            position = elapsed % count
            if position >= high_pulses:
                position -= high_pulses
            return ((count & ~1) - 2 * position) % modulus
        return (count - elapsed) % modulus

    def null_count(self, tick: int) -> bool:
        """Status bit 6: a count was written but has not reached the CE."""
        return self.loaded_at is None or tick < self.loaded_at

    def _next_edge_elapsed(self, elapsed: int) -> int | None:
        if self.phase is not Phase.COUNTING or self.run_start is None:
            return None
        mode, count = self.mode, self.count
        if mode in (0, 1):
            return count if elapsed < count else None
        if mode in (2, 3):
            return (elapsed // count + 1) * count
        return count + 1 if elapsed < count + 1 else None

    def next_rising_edge(self, after_tick: int) -> int | None:
        """The first pulse after ``after_tick`` at which OUT rises, or None."""
        self._promote(after_tick)
        if self.pending_tick is not None:
            return self.pending_tick  # the end of a period: OUT rises there
        edge = self._next_edge_elapsed(self._elapsed(after_tick))
        if edge is None or self.run_start is None:
            return None
        return self.run_start + edge - self.elapsed_base

    # -- programming -----------------------------------------------------------------------
    def write_control(self, value: int, tick: int) -> None:
        """A control word for this channel with RW != 0: "all control logic is
        reset and OUT goes to a known initial state"; the CE keeps its value."""
        self.idle_value = self.count_element(tick)
        self.access = Access((value >> 4) & 3)
        self.mode_bits = (value >> 1) & 7
        self.bcd = bool(value & 1)
        self.phase = Phase.IDLE
        self.run_start = None
        self.loaded_at = None
        self.pending_tick = None
        self.low_byte_written = None
        self.read_high_next = False
        self.latched_bytes = []
        self.latched_status = None

    def write_count_byte(self, value: int, tick: int) -> None:
        if self.access is Access.LOW_BYTE:
            self._load(value, tick)
        elif self.access is Access.HIGH_BYTE:
            self._load(value << 8, tick)
        elif self.low_byte_written is None:
            self.low_byte_written = value
            if self.mode == 0:
                # "Writing the first byte disables counting. OUT is set low
                # immediately."
                self.idle_value = self.count_element(tick)
                self.phase = Phase.IDLE
                self.run_start = None
        else:
            low, self.low_byte_written = self.low_byte_written, None
            self._load(low | value << 8, tick)

    def _load(self, register: int, tick: int) -> None:
        self._promote(tick)
        count = from_bcd(register) if self.bcd else register
        count = count or self.modulus
        self.reload_count = count
        mode = self.mode
        if mode in (1, 5):  # the count waits for a gate trigger
            if self.phase is Phase.IDLE:
                self.phase = Phase.AWAITING_TRIGGER
            return
        if mode in (2, 3) and self.phase is Phase.COUNTING and self.run_start is not None:
            elapsed = self._elapsed(tick)
            period_end = (elapsed // self.count + 1) * self.count
            self.pending_tick = self.run_start + period_end - self.elapsed_base
            self.pending_count = count
            self.loaded_at = self.pending_tick
            return
        self._start(count, tick, running=self.gate)

    def _start(self, count: int, tick: int, running: bool) -> None:
        self.phase = Phase.COUNTING
        self.count = count
        self.elapsed_base = 0
        self.run_start = tick + 1 if running else None
        self.loaded_at = tick + 1
        self.pending_tick = None

    def set_gate(self, level: bool, tick: int) -> None:
        """Drive the GATE input (only channel 2's is not tied high on a PC)."""
        self._promote(tick)
        if level == self.gate:
            return
        self.gate = level
        mode = self.mode
        if self.phase is Phase.IDLE:
            return
        if mode in (1, 5):
            if level:  # a rising edge (re)triggers the one-shot
                self._start(self.reload_count, tick, running=True)
        elif not level:  # modes 0, 2, 3, 4: counting stops while GATE is low
            self.elapsed_base = self._elapsed(tick)
            self.run_start = None
            if self.pending_tick is not None:  # the new count now waits for the gate
                self.pending_tick = None
                self.loaded_at = None
        elif mode in (2, 3):  # a rising edge starts a fresh period
            if self.phase is Phase.COUNTING:
                self._start(self.reload_count, tick, running=True)
        else:
            self.run_start = tick + 1

    # -- reading ----------------------------------------------------------------------------
    def _encoded(self, tick: int) -> int:
        value = self.count_element(tick)
        return to_bcd(value) if self.bcd else value

    def latch_count(self, tick: int) -> None:
        """The counter latch command (ignored while a latched count is unread)."""
        if self.latched_bytes:
            return
        value = self._encoded(tick)
        if self.access is Access.LOW_BYTE:
            self.latched_bytes = [value & 0xFF]
        elif self.access is Access.HIGH_BYTE:
            self.latched_bytes = [value >> 8]
        else:
            self.latched_bytes = [value & 0xFF, value >> 8]

    def latch_status(self, tick: int) -> None:
        if self.latched_status is not None:
            return
        self.latched_status = (self.output(tick) << 7 | self.null_count(tick) << 6
                               | self.access << 4 | self.mode_bits << 1 | self.bcd)

    def read_byte(self, tick: int) -> int:
        """A read of the channel's port: a latched status, then a latched
        count, else the live CE in the programmed byte order."""
        if self.latched_status is not None:
            status, self.latched_status = self.latched_status, None
            return status
        if self.latched_bytes:
            return self.latched_bytes.pop(0)
        value = self._encoded(tick)
        if self.access is Access.LOW_BYTE:
            return value & 0xFF
        if self.access is Access.HIGH_BYTE:
            return value >> 8
        high, self.read_high_next = self.read_high_next, not self.read_high_next
        return value >> 8 if high else value & 0xFF


class Pit8254(Device):
    """The three-channel timer.  Channel 0's OUT goes to ``set_irq0``.

    IRQ 0 follows OUT in modes 0 and 1.  In modes 2 to 5 the line is driven
    low and straight back high at each rising edge of OUT and held high
    between edges: the short low phase of modes 2, 4 and 5 and the low half
    of mode 3's square wave are not shown to the PIC, so a tick serviced late
    by the machine is never lost (on hardware a mode 3 request would vanish
    during the low half, to come back at the next rising edge).
    """

    name = "pit"

    def __init__(self, now_ns: Callable[[], int], set_irq0: Callable[[bool], None]) -> None:
        self.ports = [(PIT_PORT, 4)]
        self.now_ns = now_ns
        self.set_irq0 = set_irq0
        self.channels = [PitChannel(gate=True), PitChannel(gate=True), PitChannel(gate=False)]
        tick = tick_at(now_ns())
        self._checked_tick = tick
        self._program_as_bios_leaves_it(tick)
        self._irq0_level = self._irq0_line_level(tick)
        set_irq0(self._irq0_level)

    def _program_as_bios_leaves_it(self, tick: int) -> None:
        """dbt boots guests without firmware: channel 0 starts as the PC BIOS
        leaves it (mode 3, count 65536: 18.2 Hz) and channel 1 as the refresh
        timer (mode 2, count 18).  Channel 2 is left unprogrammed (mode 0)."""
        timer, refresh, _ = self.channels
        timer.write_control(0x36, tick)
        timer.write_count_byte(0, tick)
        timer.write_count_byte(0, tick)
        refresh.write_control(0x14, tick)
        refresh.write_count_byte(REFRESH_PERIOD_TICKS, tick)

    # -- ports -------------------------------------------------------------------------------
    def io_read(self, port: int, size_bytes: int) -> int:
        if port == CONTROL_PORT:
            return 0xFF  # the control word register is write-only
        return self.channels[port - PIT_PORT].read_byte(tick_at(self.now_ns()))

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        tick = tick_at(self.now_ns())
        self._deliver_edges(tick)  # what the old programming did up to now
        value &= 0xFF
        if port == CONTROL_PORT:
            self._write_control(value, tick)
        else:
            self.channels[port - PIT_PORT].write_count_byte(value, tick)
        self._drive_irq0(self._irq0_line_level(tick))

    def _write_control(self, value: int, tick: int) -> None:
        select = value >> 6
        if select == READ_BACK:
            for index, channel in enumerate(self.channels):
                if value >> (index + 1) & 1:
                    if not value & READ_BACK_NO_STATUS:
                        channel.latch_status(tick)
                    if not value & READ_BACK_NO_COUNT:
                        channel.latch_count(tick)
            return
        channel = self.channels[select]
        if (value >> 4) & 3 == Access.LATCH:
            channel.latch_count(tick)
        else:
            channel.write_control(value, tick)

    # -- channel 2 and port 0x61 --------------------------------------------------------------
    def set_channel2_gate(self, level: bool) -> None:
        self.channels[2].set_gate(level, tick_at(self.now_ns()))

    def channel2_output(self) -> bool:
        return self.channels[2].output(tick_at(self.now_ns()))

    # -- IRQ 0 ----------------------------------------------------------------------------------
    def _irq0_line_level(self, tick: int) -> bool:
        timer = self.channels[0]
        return timer.output(tick) if timer.mode in (0, 1) else True

    def _drive_irq0(self, level: bool) -> None:
        if level != self._irq0_level:
            self._irq0_level = level
            self.set_irq0(level)

    def _deliver_edges(self, tick: int) -> None:
        if tick <= self._checked_tick:
            return
        edge = self.channels[0].next_rising_edge(self._checked_tick)
        self._checked_tick = tick
        if edge is not None and edge <= tick:
            self._drive_irq0(False)
            self._drive_irq0(True)
        self._drive_irq0(self._irq0_line_level(tick))

    def next_event_ns(self) -> int | None:
        """When OUT0 next rises (an IRQ 0 edge), or None."""
        edge = self.channels[0].next_rising_edge(self._checked_tick)
        return None if edge is None else time_of_tick(edge)

    def advance(self, now_ns: int) -> None:
        self._deliver_edges(tick_at(now_ns))


class SystemControlPortB(Device):
    """Port 0x61 (NMI status and control): bit 0 gates channel 2, bit 1
    enables the speaker, bits 2-3 are the parity/IOCHK check enables; reads
    add the refresh toggle (bit 4) and channel 2's OUT (bit 5).  No NMI source
    exists, so the error bits 6-7 read as 0."""

    name = "port61"

    def __init__(self, pit: Pit8254, now_ns: Callable[[], int]) -> None:
        self.ports = [(PORT_61, 1)]
        self.pit = pit
        self.now_ns = now_ns
        self.control = 0

    @property
    def speaker_on(self) -> bool:
        """Whether channel 2 drives the speaker (gate and data enable set)."""
        return self.control & 0x03 == 0x03

    def io_read(self, port: int, size_bytes: int) -> int:
        refresh = tick_at(self.now_ns()) // REFRESH_PERIOD_TICKS & 1
        return self.control | refresh << 4 | self.pit.channel2_output() << 5

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        self.control = value & 0x0F
        self.pit.set_channel2_gate(bool(value & 1))
