"""The POST diagnostic port (0x80).

Firmware writes progress codes here, and kernels write anything here just
to wait an I/O cycle (Linux's ``outb_p``), so the count is of writes, not of
distinct codes.  A read returns the last value written, as a POST card's
latch would show it.
"""

from __future__ import annotations

from dbt.devices.bus import Device

POST_PORT = 0x80


class PostCodePort(Device):
    name = "post"

    def __init__(self) -> None:
        self.ports = [(POST_PORT, 1)]
        self.last_value = 0
        self.write_count = 0

    def io_read(self, port: int, size_bytes: int) -> int:
        return self.last_value

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        self.last_value = value & 0xFF
        self.write_count += 1
