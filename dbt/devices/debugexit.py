"""QEMU's isa-debug-exit device: a write of v to port 0xF4 ends the machine,
and dbt exits with QEMU's status (v << 1) | 1."""

from __future__ import annotations

from collections.abc import Callable

from dbt.devices.bus import Device
from dbt.vmm.outcome import Ending, Outcome


class DebugExit(Device):
    name = "isa-debug-exit"

    def __init__(self, request_stop: Callable[[Outcome], None], port: int = 0xF4) -> None:
        self.ports = [(port, 4)]
        self.base = port
        self.request_stop = request_stop

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        if port == self.base:
            self.request_stop(Outcome(Ending.DEBUG_EXIT, value, f"guest wrote {value:#x} to isa-debug-exit"))

    def io_read(self, port: int, size_bytes: int) -> int:
        return 0
