"""A 16550A UART (COM1 at 0x3F8, IRQ 4).

Transmitted bytes go to a sink at once (the transmitter is always ready);
received bytes come from a source (a string, a file, stdin) one at a time
as the guest reads them.  Interrupts follow the IER/IIR rules: received data
available (priority over) transmitter holding register empty.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from dbt.devices.bus import Device

# Register offsets.
RBR_THR_DLL, IER_DLM, IIR_FCR, LCR, MCR, LSR, MSR, SCR = range(8)

LSR_DATA_READY = 0x01
LSR_THR_EMPTY = 0x20
LSR_TRANSMITTER_EMPTY = 0x40
LCR_DLAB = 0x80
IER_RX = 0x01
IER_THRE = 0x02
IIR_NONE = 0x01
IIR_THRE = 0x02
IIR_RX = 0x04
IIR_FIFO = 0xC0
MCR_OUT2 = 0x08
MCR_LOOP = 0x10


class Uart16550(Device):
    name = "uart"

    def __init__(self, sink: Callable[[bytes], None], base: int = 0x3F8,
                 raise_irq: Callable[[bool], None] = lambda level: None) -> None:
        self.ports = [(base, 8)]
        self.base = base
        self.sink = sink
        self.raise_irq = raise_irq
        self.input: deque[int] = deque()
        self.input_stream: BinaryIO | None = None
        self.divisor = 12  # 9600 baud
        self.ier = 0
        self.lcr = 0x03
        self.mcr = 0
        self.scr = 0
        self.fifo_enabled = False
        self.thr_interrupt = False  # THRE interrupt pending until IIR read or THR written
        self.transmitted = 0

    # -- input ------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.input.extend(data)
        self._update_irq()

    def attach_input(self, stream: BinaryIO) -> None:
        """Read guest input lazily from ``stream`` (a file or stdin)."""
        self.input_stream = stream

    def _data_ready(self) -> bool:
        if not self.input and self.input_stream is not None:
            chunk = self.input_stream.read(1)
            if chunk:
                self.input.extend(chunk)
            else:
                self.input_stream = None
        return bool(self.input)

    # -- registers ---------------------------------------------------------------------
    def io_read(self, port: int, size_bytes: int) -> int:
        offset = port - self.base
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                return self.divisor & 0xFF
            value = self.input.popleft() if self._data_ready() else 0
            self._update_irq()
            return value
        if offset == IER_DLM:
            return (self.divisor >> 8) if dlab else self.ier
        if offset == IIR_FCR:
            identification = self._identification()
            if identification == IIR_THRE:
                self.thr_interrupt = False
                self._update_irq()
            return identification | (IIR_FIFO if self.fifo_enabled else 0)
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            ready = LSR_DATA_READY if self._data_ready() else 0
            return ready | LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY
        if offset == MSR:
            if self.mcr & MCR_LOOP:  # loopback: outputs appear on the status inputs
                return ((self.mcr & 0x0C) << 4) | ((self.mcr & 0x03) << 4)
            return 0xB0  # DCD, DSR, CTS asserted
        return self.scr

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        offset = port - self.base
        value &= 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
                return
            if self.mcr & MCR_LOOP:
                self.input.append(value)
            else:
                self.sink(bytes((value,)))
                self.transmitted += 1
            self.thr_interrupt = True
        elif offset == IER_DLM:
            if dlab:
                self.divisor = (self.divisor & 0xFF) | (value << 8)
                return
            enabling_thre = value & IER_THRE and not self.ier & IER_THRE
            self.ier = value & 0x0F
            if enabling_thre:
                self.thr_interrupt = True  # the holding register is empty right now
        elif offset == IIR_FCR:
            self.fifo_enabled = bool(value & 1)
            if value & 2:
                self.input.clear()
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self.mcr = value & 0x1F
        elif offset == SCR:
            self.scr = value
        self._update_irq()

    def _identification(self) -> int:
        if self.ier & IER_RX and self.input:
            return IIR_RX
        if self.ier & IER_THRE and self.thr_interrupt:
            return IIR_THRE
        return IIR_NONE

    def _update_irq(self) -> None:
        # On a PC the UART's interrupt reaches the PIC only with OUT2 set.
        self.raise_irq(self._identification() != IIR_NONE and bool(self.mcr & MCR_OUT2))
