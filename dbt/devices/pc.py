"""The PC platform: the motherboard devices of a one-processor PC, attached
to the machine's bus and wired to each other.

ISA IRQ lines go both to the 8259 pair and to the I/O APIC's pins of the
same number; IRQ 0 (the PIT) also reaches pin 2, where ACPI and MP tables
on PCs declare it.  ISA's IRQ 2 pin is IRQ 9 on an AT, so ``irq(2, ...)``
drives IRQ 9.  The UART and isa-debug-exit belong to the machine.

Which interrupt the CPU takes: a fixed interrupt held by the local APIC
(LVT timer, self-IPI, I/O APIC) whose priority class is above the PPR goes
first; otherwise the 8259's INTR, when it gets through LINT0 (the local APIC
disabled, or LINT0 unmasked in ExtINT mode: the PC's virtual-wire mode).
The order between the two is our choice; real ExtINT and fixed interrupts
race on the APIC bus.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dbt.devices.apic import LocalApic
from dbt.devices.bus import Bus
from dbt.devices.cmos import CmosRtc
from dbt.devices.debugcon import DebugConsole
from dbt.devices.i8042 import A20Gate, Keyboard8042, SystemControlPortA
from dbt.devices.ioapic import IoApic
from dbt.devices.pci import PciConfigPorts
from dbt.devices.pic import PicPair
from dbt.devices.pit import Pit8254, SystemControlPortB
from dbt.devices.post import PostCodePort
from dbt.devices.vga import VgaTextScreen

ISA_IRQ_COUNT = 16
PIT_IRQ = 0
KEYBOARD_IRQ = 1
RTC_IRQ = 8
PIT_IOAPIC_PIN = 2


class PcPlatform:
    """The PIC pair, PIT and port 0x61, CMOS/RTC, 8042 and port 0x92, POST
    port, debug console, PCI configuration ports, local APIC, I/O APIC and
    the VGA text screen reader.

    ``memory_bytes`` (optional) sizes the CMOS memory bytes; without it they
    report 640 KiB of base memory and none above.  ``memory_write`` is kept
    for bus-mastering devices; none of the present ones writes memory.
    """

    def __init__(self, bus: Bus, now_ns: Callable[[], int], *,
                 memory_read: Callable[[int, int], int],
                 memory_write: Callable[[int, int, int], None],
                 request_reset: Callable[[], None],
                 set_a20: Callable[[bool], None],
                 debugcon_sink: Callable[[bytes], None] | None = None,
                 wall_clock_start: datetime | None = None,
                 memory_bytes: int | None = None) -> None:
        self.now_ns = now_ns
        self.memory_write = memory_write
        # The interrupt controllers first: the timers drive their lines at once.
        self.local_apic = LocalApic(now_ns, on_level_eoi=self._level_eoi)
        self.io_apic = IoApic(self.local_apic.receive_message)
        self.pic = PicPair()
        self.pit = Pit8254(now_ns, lambda level: self.irq(PIT_IRQ, level))
        self.port_61 = SystemControlPortB(self.pit, now_ns)
        self.cmos = CmosRtc(now_ns, lambda level: self.irq(RTC_IRQ, level),
                            wall_clock_start=wall_clock_start,
                            memory_bytes=640 << 10 if memory_bytes is None else memory_bytes)
        self.a20_gate = A20Gate(set_a20)
        self.keyboard_controller = Keyboard8042(request_reset, self.a20_gate,
                                                lambda level: self.irq(KEYBOARD_IRQ, level))
        self.port_92 = SystemControlPortA(request_reset, self.a20_gate)
        self.post = PostCodePort()
        self.debugcon = DebugConsole(debugcon_sink)
        self.pci = PciConfigPorts(request_reset)
        self.vga = VgaTextScreen(memory_read)
        for device in (self.pic, self.pit, self.port_61, self.cmos, self.keyboard_controller,
                       self.port_92, self.post, self.debugcon, self.pci, self.local_apic,
                       self.io_apic):
            bus.attach(device)
        self._timed = (self.pit, self.cmos, self.local_apic)
        # next_event_ns is asked at every service; its answer holds until a
        # device is accessed, the APIC base MSR is written, or the time passes.
        self._bus = bus
        self._next_event_ns: int | None = None
        self._next_event_known_at = -1  # bus.accesses when it was computed (-1: not known)

    # -- interrupt lines --------------------------------------------------------------------
    def irq(self, line: int, level: bool) -> None:
        """Drive ISA IRQ ``line`` (0-15) to ``level`` (high = asserted)."""
        if not 0 <= line < ISA_IRQ_COUNT:
            raise ValueError(f"ISA IRQ {line} does not exist")
        if line == 2:
            line = 9
        self.pic.set_irq(line, level)
        self.io_apic.set_pin(line, level)
        if line == PIT_IRQ:
            self.io_apic.set_pin(PIT_IOAPIC_PIN, level)

    def _level_eoi(self, vector: int) -> None:
        self.io_apic.end_of_interrupt(vector)

    # -- the CPU's side ------------------------------------------------------------------------
    def interrupt_pending(self, interrupts_enabled: bool) -> bool:
        """Whether the CPU should take a maskable interrupt now (EFLAGS.IF given)."""
        if not interrupts_enabled:
            return False
        if self.local_apic.has_pending_interrupt():
            return True
        return self.local_apic.pic_output_reaches_cpu() and self.pic.interrupt_output()

    def acknowledge_interrupt(self) -> int:
        """The INTA cycle: the vector to deliver.  With nothing left to
        deliver it is a spurious vector: the PIC's IR7 (or IR15) vector if
        the PIC's output reaches the CPU, else the APIC's spurious vector."""
        if self.local_apic.has_pending_interrupt():
            return self.local_apic.acknowledge()
        if self.local_apic.pic_output_reaches_cpu():
            return self.pic.acknowledge()
        return self.local_apic.spurious_vector

    def nmi_pending(self) -> bool:
        """No device raises NMI (the CMOS NMI mask is kept in
        ``cmos.nmi_disabled`` for when one does)."""
        return False

    @property
    def apic_base_msr(self) -> int:
        """IA32_APIC_BASE (MSR 0x1B)."""
        return self.local_apic.apic_base_msr

    @apic_base_msr.setter
    def apic_base_msr(self, value: int) -> None:
        self._next_event_known_at = -1  # it may disable the APIC and its timer
        self.local_apic.apic_base_msr = value

    # -- time ------------------------------------------------------------------------------------
    def next_event_ns(self) -> int | None:
        """The earliest time at which some device has something to do."""
        if self._next_event_known_at != self._bus.accesses:
            times = [time for device in self._timed if (time := device.next_event_ns()) is not None]
            self._next_event_ns = min(times, default=None)
            self._next_event_known_at = self._bus.accesses
        return self._next_event_ns

    def advance(self, now_ns: int) -> None:
        """Let every device perform what is due at or before ``now_ns``.

        Before the next event nothing is due: the timed devices catch up
        from their last look whenever they are next asked, so they are
        left alone (most services come from monitor exits, not events)."""
        if self._next_event_known_at == self._bus.accesses and (
                self._next_event_ns is None or now_ns < self._next_event_ns):
            return
        for device in self._timed:
            device.advance(now_ns)
        if self._next_event_ns is not None and now_ns >= self._next_event_ns:
            self._next_event_known_at = -1  # an event happened: the next one is another

    # -- screen ------------------------------------------------------------------------------------
    def screen_text(self) -> str:
        """The 80x25 text screen (see ``VgaTextScreen.text``)."""
        return self.vga.text()
