"""The local APIC of the one processor (xAPIC mode, MMIO at 0xFEE00000).

Register semantics follow the Intel SDM, volume 3A, chapter "Advanced
Programmable Interrupt Controller (APIC)"; the version register says 0x14
(a Pentium 4/Xeon-class xAPIC) with six LVT entries (timer, thermal,
performance counters, LINT0, LINT1, error).

Choices where the hardware leaves room:

- Registers are 32 bits wide at 16-byte-aligned offsets.  A read of any size
  at any offset returns those bytes of the 16-byte slot (bytes 4-15 are zero);
  a write that is not a 4-byte store at the start of a slot is ignored, so a
  stray byte store cannot send an IPI with a garbled command.
- Reserved registers read as 0 and ignore writes; either access latches the
  "illegal register address" error (ESR bit 7), as Pentium 4 and Xeon do.
- The timer runs on a 100 MHz bus clock (``BUS_CLOCK_NS``) divided per the
  divide configuration register.  This APIC has no TSC-deadline mode: LVT
  timer bit 18 is reserved, reads as 0, and the timer stays one-shot or
  periodic per bit 17 (CPUID must not report TSC-deadline).
- There is no other processor.  An IPI whose destination does not include
  this APIC (INIT and SIPI to application processors, or a fixed IPI to
  another ID) is accepted by nobody: the send-accept error (ESR bit 2) is
  latched and shows at the next ESR write, and ICR's delivery status is idle
  again at once.  (That error is reported by P6-family APICs; it is the
  clearest "nobody is there" a guest can see.)  INIT level de-assert is a
  bus-wide synchronisation message and is accepted silently.  NMI, SMI, INIT
  and SIPI addressed to this processor itself are not modelled and dropped.
- While software-disabled (SVR bit 8 clear) the APIC accepts no fixed
  interrupts and delivers none it holds; every LVT entry is masked.
- Clearing the global enable (IA32_APIC_BASE bit 11) hides the MMIO page
  (reads all ones, writes dropped) and returns the APIC to its reset state.
  The base cannot be moved: the base field of IA32_APIC_BASE is read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from dbt.devices.bus import Device

APIC_BASE_ADDRESS = 0xFEE00000
APIC_WINDOW_BYTES = 0x1000
APIC_BASE_MSR_BSP = 1 << 8
APIC_BASE_MSR_ENABLE = 1 << 11
BUS_CLOCK_NS = 10  # 100 MHz
VERSION_VALUE = 0x14 | 5 << 16  # version 0x14, max LVT entry 5

ID = 0x020
VERSION = 0x030
TPR = 0x080
APR = 0x090
PPR = 0x0A0
EOI = 0x0B0
LDR = 0x0D0
DFR = 0x0E0
SVR = 0x0F0
ISR_BASE = 0x100
TMR_BASE = 0x180
IRR_BASE = 0x200
ESR = 0x280
ICR_LOW = 0x300
ICR_HIGH = 0x310
LVT_TIMER = 0x320
LVT_THERMAL = 0x330
LVT_PERFORMANCE = 0x340
LVT_LINT0 = 0x350
LVT_LINT1 = 0x360
LVT_ERROR = 0x370
TIMER_INITIAL_COUNT = 0x380
TIMER_CURRENT_COUNT = 0x390
TIMER_DIVIDE = 0x3E0

SVR_ENABLE = 1 << 8
SVR_WRITABLE = 0x3FF  # vector, enable, focus processor checking
LVT_MASKED = 1 << 16
LVT_TIMER_PERIODIC = 1 << 17
LVT_DELIVERY_MODE_SHIFT = 8
# What software may set in each LVT entry (delivery status and remote IRR are read-only).
LVT_WRITABLE = {
    LVT_TIMER: 0xFF | LVT_MASKED | LVT_TIMER_PERIODIC,
    LVT_THERMAL: 0x7FF | LVT_MASKED,
    LVT_PERFORMANCE: 0x7FF | LVT_MASKED,
    LVT_LINT0: 0x7FF | 1 << 13 | 1 << 15 | LVT_MASKED,
    LVT_LINT1: 0x7FF | 1 << 13 | 1 << 15 | LVT_MASKED,
    LVT_ERROR: 0xFF | LVT_MASKED,
}
ICR_WRITABLE = 0xFFF | 1 << 14 | 1 << 15 | 3 << 18  # delivery status (bit 12) reads idle
ICR_DESTINATION_LOGICAL = 1 << 11
ICR_LEVEL_ASSERT = 1 << 14
ICR_TRIGGER_LEVEL = 1 << 15

ESR_SEND_ACCEPT = 1 << 2
ESR_SEND_ILLEGAL_VECTOR = 1 << 5
ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6
ESR_ILLEGAL_REGISTER = 1 << 7

READ_ONLY = {VERSION, APR, PPR, TIMER_CURRENT_COUNT}
BROADCAST = 0xFF
FLAT_MODEL = 0xF


class DeliveryMode(IntEnum):
    FIXED = 0
    LOWEST_PRIORITY = 1
    SMI = 2
    NMI = 4
    INIT = 5
    STARTUP = 6
    EXTINT = 7


class Shorthand(IntEnum):
    NONE = 0
    SELF = 1
    ALL_INCLUDING_SELF = 2
    ALL_EXCLUDING_SELF = 3


@dataclass(frozen=True)
class InterruptMessage:
    """An interrupt message on the system bus (what an I/O APIC sends)."""

    vector: int
    delivery_mode: int
    destination: int
    logical: bool
    level_triggered: bool


def highest_vector(bits: int) -> int:
    """The highest set bit of a 256-bit vector register, or -1."""
    return bits.bit_length() - 1


class ApicTimer:
    """The timer's count, computed from time: it counts ``start_count`` bus
    ticks (divided) from ``start_ns``, then in periodic mode reloads the
    initial count each time it reaches zero."""

    def __init__(self) -> None:
        self.initial_count = 0
        self.divide_configuration = 0
        self._start_ns = 0
        self._start_count = 0  # 0: not counting

    @property
    def divisor(self) -> int:
        code = (self.divide_configuration & 3) | (self.divide_configuration & 8) >> 1
        return 1 if code == 7 else 2 << code

    @property
    def tick_ns(self) -> int:
        return BUS_CLOCK_NS * self.divisor

    def start(self, initial_count: int, now: int) -> None:
        """A write of the initial count register (0 stops the timer)."""
        self.initial_count = initial_count
        self._start_ns = now
        self._start_count = initial_count

    def set_divide(self, value: int, now: int, periodic: bool) -> None:
        """A new divisor applies from now on; the count so far is kept."""
        count = self.current_count(now, periodic)
        self.divide_configuration = value & 0xB
        self._start_ns = now
        self._start_count = count

    def current_count(self, now: int, periodic: bool) -> int:
        ticks = (now - self._start_ns) // self.tick_ns
        if ticks < self._start_count:
            return self._start_count - ticks
        if periodic and self.initial_count and self._start_count:
            return self.initial_count - (ticks - self._start_count) % self.initial_count
        return 0

    def expiry_after(self, time_ns: int, periodic: bool) -> int | None:
        """The first time after ``time_ns`` at which the count reaches zero."""
        if not self._start_count:
            return None
        first = self._start_ns + self._start_count * self.tick_ns
        if time_ns < first:
            return first
        if not periodic or not self.initial_count:
            return None
        period = self.initial_count * self.tick_ns
        return first + ((time_ns - first) // period + 1) * period


class LocalApic(Device):
    """The local APIC.  The platform asks ``has_pending_interrupt`` and runs
    ``acknowledge``; an I/O APIC sends ``receive_message``; an EOI of a
    level-triggered vector is broadcast through ``on_level_eoi``."""

    name = "lapic"

    def __init__(self, now_ns: Callable[[], int], on_level_eoi: Callable[[int], None]) -> None:
        self.mmio = [(APIC_BASE_ADDRESS, APIC_WINDOW_BYTES)]
        self.now_ns = now_ns
        self.on_level_eoi = on_level_eoi
        self.globally_enabled = True
        self._reset()

    def _reset(self) -> None:
        """The power-up/INIT state (SDM "Local APIC State After Power-Up or Reset")."""
        self.apic_id = 0
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFFFFFF
        self.svr = 0xFF
        self.irr = self.isr = self.tmr = 0
        self.esr = 0
        self.error_latch = 0  # errors since the last ESR write
        self.icr_low = self.icr_high = 0
        self.lvt = {register: LVT_MASKED for register in LVT_WRITABLE}
        self.timer = ApicTimer()
        self._timer_checked_until = self.now_ns()

    # -- IA32_APIC_BASE -------------------------------------------------------------------
    @property
    def apic_base_msr(self) -> int:
        enable = APIC_BASE_MSR_ENABLE if self.globally_enabled else 0
        return APIC_BASE_ADDRESS | APIC_BASE_MSR_BSP | enable

    @apic_base_msr.setter
    def apic_base_msr(self, value: int) -> None:
        """Only the enable bit is writable (see the module docstring)."""
        enable = bool(value & APIC_BASE_MSR_ENABLE)
        if enable != self.globally_enabled:
            self._reset()
            self.globally_enabled = enable

    @property
    def software_enabled(self) -> bool:
        return bool(self.svr & SVR_ENABLE)

    @property
    def active(self) -> bool:
        return self.globally_enabled and self.software_enabled

    @property
    def spurious_vector(self) -> int:
        return self.svr & 0xFF

    # -- priorities -------------------------------------------------------------------------
    def processor_priority(self) -> int:
        """PPR: the TPR, or the class of the highest interrupt in service."""
        in_service = max(highest_vector(self.isr), 0)
        if self.tpr >> 4 >= in_service >> 4:
            return self.tpr
        return in_service & 0xF0

    def arbitration_priority(self) -> int:
        requested = max(highest_vector(self.irr), 0)
        in_service = max(highest_vector(self.isr), 0)
        if self.tpr >> 4 >= requested >> 4 and self.tpr >> 4 > in_service >> 4:
            return self.tpr
        return max(self.tpr & 0xF0, in_service & 0xF0, requested & 0xF0)

    def has_pending_interrupt(self) -> bool:
        """Whether a requested vector's class is above the PPR's class."""
        if not self.irr or not self.active:
            return False
        return highest_vector(self.irr) >> 4 > self.processor_priority() >> 4

    def acknowledge(self) -> int:
        """The INTA cycle: the highest requested vector moves from IRR to
        ISR; with none deliverable, the spurious vector (ISR untouched)."""
        if not self.has_pending_interrupt():
            return self.spurious_vector
        vector = highest_vector(self.irr)
        self.irr &= ~(1 << vector)
        self.isr |= 1 << vector
        return vector

    def pic_output_reaches_cpu(self) -> bool:
        """Whether the 8259's INTR gets through LINT0: with the APIC disabled
        (globally or in software: the PC's virtual-wire state after reset) or
        with LINT0 unmasked in ExtINT mode."""
        if not self.active:
            return True
        lint0 = self.lvt[LVT_LINT0]
        mode = lint0 >> LVT_DELIVERY_MODE_SHIFT & 7
        return not lint0 & LVT_MASKED and mode == DeliveryMode.EXTINT

    # -- accepting interrupts ---------------------------------------------------------------
    def _accept_fixed(self, vector: int, level_triggered: bool) -> bool:
        if not self.active:
            return False
        if vector < 16:
            self._signal_error(ESR_RECEIVE_ILLEGAL_VECTOR)
            return False
        bit = 1 << vector
        self.irr |= bit
        self.tmr = self.tmr | bit if level_triggered else self.tmr & ~bit
        return True

    def matches_destination(self, destination: int, logical: bool) -> bool:
        """Whether this APIC is among the destinations of a message."""
        if not logical:
            return destination in (BROADCAST, self.apic_id)
        logical_id = self.ldr >> 24
        if self.dfr >> 28 == FLAT_MODEL:
            return bool(destination & logical_id)
        cluster = destination >> 4
        same_cluster = cluster in (0xF, logical_id >> 4)
        return same_cluster and bool(destination & logical_id & 0xF)

    def receive_message(self, message: InterruptMessage) -> bool:
        """A message from an I/O APIC; whether this APIC accepted it.
        Lowest-priority delivery goes to the one processor like fixed; NMI,
        SMI, INIT and ExtINT messages are not modelled and not accepted."""
        self._timer_catch_up(self.now_ns())
        if not self.matches_destination(message.destination, message.logical):
            return False
        if message.delivery_mode not in (DeliveryMode.FIXED, DeliveryMode.LOWEST_PRIORITY):
            return False
        return self._accept_fixed(message.vector, message.level_triggered)

    def _signal_error(self, bits: int) -> None:
        self.error_latch |= bits
        entry = self.lvt[LVT_ERROR]
        if not entry & LVT_MASKED and entry & 0xFF >= 16 and self.active:
            self._accept_fixed(entry & 0xFF, level_triggered=False)

    def _end_of_interrupt(self) -> None:
        vector = highest_vector(self.isr)
        if vector < 0:
            return
        bit = 1 << vector
        self.isr &= ~bit
        if self.tmr & bit:
            self.on_level_eoi(vector)

    # -- the timer --------------------------------------------------------------------------------
    def _timer_periodic(self) -> bool:
        return bool(self.lvt[LVT_TIMER] & LVT_TIMER_PERIODIC)

    def _timer_catch_up(self, now: int) -> None:
        """Deliver the timer interrupt if the count reached zero since the
        last look; an expiry while the entry is masked is lost, as on hardware."""
        since = self._timer_checked_until
        if now <= since:
            return
        self._timer_checked_until = now
        expiry = self.timer.expiry_after(since, self._timer_periodic())
        entry = self.lvt[LVT_TIMER]
        if expiry is not None and expiry <= now and not entry & LVT_MASKED:
            self._accept_fixed(entry & 0xFF, level_triggered=False)

    def next_event_ns(self) -> int | None:
        if not self.globally_enabled or self.lvt[LVT_TIMER] & LVT_MASKED:
            return None
        return self.timer.expiry_after(self._timer_checked_until, self._timer_periodic())

    def advance(self, now_ns: int) -> None:
        self._timer_catch_up(now_ns)

    # -- interprocessor interrupts -------------------------------------------------------------------
    def _send_ipi(self) -> None:
        command = self.icr_low
        vector = command & 0xFF
        mode = command >> 8 & 7
        shorthand = command >> 18 & 3
        if mode == DeliveryMode.INIT and not command & ICR_LEVEL_ASSERT \
                and command & ICR_TRIGGER_LEVEL:
            return  # INIT level de-assert
        if shorthand in (Shorthand.SELF, Shorthand.ALL_INCLUDING_SELF):
            to_self = True
        elif shorthand == Shorthand.ALL_EXCLUDING_SELF:
            to_self = False
        else:
            to_self = self.matches_destination(self.icr_high >> 24,
                                               bool(command & ICR_DESTINATION_LOGICAL))
        fixed = mode in (DeliveryMode.FIXED, DeliveryMode.LOWEST_PRIORITY)
        if fixed and vector < 16:
            self._signal_error(ESR_SEND_ILLEGAL_VECTOR)
        elif not to_self:
            self._signal_error(ESR_SEND_ACCEPT)  # no other processor exists
        elif fixed:
            self._accept_fixed(vector, level_triggered=False)

    # -- registers ------------------------------------------------------------------------------------
    def read_register(self, offset: int) -> int:
        """The 32-bit register at ``offset`` (a multiple of 16)."""
        self._timer_catch_up(self.now_ns())  # IRR must show a timer that has expired
        if offset == ID:
            return self.apic_id << 24
        if offset == VERSION:
            return VERSION_VALUE
        if offset == TPR:
            return self.tpr
        if offset == APR:
            return self.arbitration_priority()
        if offset == PPR:
            return self.processor_priority()
        if offset == EOI:
            return 0  # write-only
        if offset == LDR:
            return self.ldr
        if offset == DFR:
            return self.dfr
        if offset == SVR:
            return self.svr
        for base, bits in ((ISR_BASE, self.isr), (TMR_BASE, self.tmr), (IRR_BASE, self.irr)):
            if base <= offset < base + 0x80:
                return bits >> (2 * (offset - base)) & 0xFFFFFFFF
        if offset == ESR:
            return self.esr
        if offset == ICR_LOW:
            return self.icr_low
        if offset == ICR_HIGH:
            return self.icr_high
        if offset in self.lvt:
            return self.lvt[offset]
        if offset == TIMER_INITIAL_COUNT:
            return self.timer.initial_count
        if offset == TIMER_CURRENT_COUNT:
            return self.timer.current_count(self.now_ns(), self._timer_periodic())
        if offset == TIMER_DIVIDE:
            return self.timer.divide_configuration
        self._signal_error(ESR_ILLEGAL_REGISTER)
        return 0

    def write_register(self, offset: int, value: int) -> None:
        """A 32-bit store to the register at ``offset`` (a multiple of 16)."""
        now = self.now_ns()
        # Expiries before this store happened under the old programming.
        self._timer_catch_up(now)
        if offset == ID:
            self.apic_id = value >> 24
        elif offset == TPR:
            self.tpr = value & 0xFF
        elif offset == EOI:
            self._end_of_interrupt()
        elif offset == LDR:
            self.ldr = value & 0xFF000000
        elif offset == DFR:
            self.dfr = value | 0x0FFFFFFF
        elif offset == SVR:
            self.svr = value & SVR_WRITABLE
            if not self.software_enabled:  # SDM: disabling masks every LVT entry
                for register in self.lvt:
                    self.lvt[register] |= LVT_MASKED
        elif offset == ESR:
            self.esr, self.error_latch = self.error_latch, 0
        elif offset == ICR_LOW:
            self.icr_low = value & ICR_WRITABLE
            self._send_ipi()
        elif offset == ICR_HIGH:
            self.icr_high = value & 0xFF000000
        elif offset in self.lvt:
            value &= LVT_WRITABLE[offset]
            if not self.software_enabled:  # masks cannot be cleared while disabled
                value |= LVT_MASKED
            self.lvt[offset] = value
        elif offset == TIMER_INITIAL_COUNT:
            self.timer.start(value, now)
        elif offset == TIMER_DIVIDE:
            self.timer.set_divide(value, now, self._timer_periodic())
        elif offset in READ_ONLY or ISR_BASE <= offset < IRR_BASE + 0x80:
            pass
        else:
            self._signal_error(ESR_ILLEGAL_REGISTER)

    def mmio_read(self, address: int, size_bytes: int) -> int:
        if not self.globally_enabled:
            return (1 << (8 * size_bytes)) - 1
        offset = address - APIC_BASE_ADDRESS
        within = offset & 0xF
        slot = self.read_register(offset & ~0xF)
        return slot >> (8 * within) & ((1 << (8 * size_bytes)) - 1)

    def mmio_write(self, address: int, size_bytes: int, value: int) -> None:
        if not self.globally_enabled:
            return
        offset = address - APIC_BASE_ADDRESS
        if size_bytes == 4 and not offset & 0xF:
            self.write_register(offset, value & 0xFFFFFFFF)
