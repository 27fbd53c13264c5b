"""PCI configuration mechanism #1 (ports 0xCF8-0xCFF) on a bus with no devices.

The configuration address register (a 32-bit access to 0xCF8) holds and
reads back whatever was written, as QEMU's host bridge does.  Every
configuration read through 0xCFC-0xCFF returns all ones, the master-abort
answer for a function that is not there, and writes are dropped.  Byte
accesses to 0xCF9 reach the PIIX reset control register: setting bit 2
resets the machine (Linux's ``reboot=pci``).  Other narrow accesses to
0xCF8-0xCFB float (all ones, dropped).
"""

from __future__ import annotations

from collections.abc import Callable

from dbt.devices.bus import Device

CONFIG_ADDRESS = 0xCF8
RESET_CONTROL = 0xCF9
CONFIG_DATA = 0xCFC
RESET_CONTROL_RESET_CPU = 0x04
RESET_CONTROL_SYSTEM_RESET = 0x02  # hard rather than soft reset: stored only


class PciConfigPorts(Device):
    name = "pci-config"

    def __init__(self, request_reset: Callable[[], None]) -> None:
        self.ports = [(CONFIG_ADDRESS, 8)]
        self.request_reset = request_reset
        self.config_address = 0
        self.reset_control = 0

    @property
    def enabled(self) -> bool:
        """Bit 31: configuration cycles are generated for 0xCFC-0xCFF."""
        return bool(self.config_address >> 31)

    def io_read(self, port: int, size_bytes: int) -> int:
        if port == CONFIG_ADDRESS and size_bytes == 4:
            return self.config_address
        if port == RESET_CONTROL and size_bytes == 1:
            return self.reset_control
        return (1 << (8 * size_bytes)) - 1  # no device answers, enabled or not

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        if port == CONFIG_ADDRESS and size_bytes == 4:
            self.config_address = value & 0xFFFFFFFF
        elif port == RESET_CONTROL and size_bytes == 1:
            self.reset_control = value & RESET_CONTROL_SYSTEM_RESET
            if value & RESET_CONTROL_RESET_CPU:
                self.request_reset()
