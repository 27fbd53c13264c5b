"""QEMU's ISA debug console (port 0xE9): a write sends its low byte out.

A read returns 0xE9, which is how guests (SeaBIOS, many hobby kernels)
detect the port before using it.
"""

from __future__ import annotations

from collections.abc import Callable

from dbt.devices.bus import Device

DEBUGCON_PORT = 0xE9


class DebugConsole(Device):
    """Bytes written go to ``sink`` (if any) and are kept in ``output``."""

    name = "debugcon"

    def __init__(self, sink: Callable[[bytes], None] | None = None,
                 port: int = DEBUGCON_PORT) -> None:
        self.ports = [(port, 1)]
        self.port = port
        self.sink = sink
        self.output = bytearray()

    def io_read(self, port: int, size_bytes: int) -> int:
        return DEBUGCON_PORT

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        byte = value & 0xFF
        self.output.append(byte)
        if self.sink is not None:
            self.sink(bytes((byte,)))
