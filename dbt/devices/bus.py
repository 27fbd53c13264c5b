"""The I/O port and MMIO bus: a table from addresses to devices.

A device declares the ports and physical ranges it answers; the bus is data
(built by attaching devices), never a chain of ifs.  Reads nobody claims
return all ones and writes nobody claims are dropped, as on a PC's ISA bus;
both are counted so a user can see what the guest probed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


class Device:
    """Base for virtual devices.  Subclasses set ``name``, ``ports`` (a list
    of (first port, count)) and/or ``mmio`` (a list of (physical address,
    size in bytes)) and override the handlers they need."""

    name = "device"
    ports: list[tuple[int, int]] = []
    mmio: list[tuple[int, int]] = []

    def io_read(self, port: int, size_bytes: int) -> int:
        return (1 << (8 * size_bytes)) - 1

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        return None

    def mmio_read(self, address: int, size_bytes: int) -> int:
        return (1 << (8 * size_bytes)) - 1

    def mmio_write(self, address: int, size_bytes: int, value: int) -> None:
        return None


@dataclass
class Bus:
    _ports: dict[int, Device] = field(default_factory=dict)
    _mmio: list[tuple[int, int, Device]] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    unclaimed_port_reads: Counter = field(default_factory=Counter)
    unclaimed_port_writes: Counter = field(default_factory=Counter)
    unclaimed_mmio: int = 0
    accesses: int = 0  # claimed accesses so far: device state may have changed
    # Called before every claimed access: the machine lets devices catch up
    # with an event it has not serviced yet (see Executor._set_deadline).
    before_access: Callable[[], None] | None = None

    def attach(self, device: Device) -> Device:
        for first, count in device.ports:
            for port in range(first, first + count):
                if port in self._ports:
                    raise ValueError(f"port {port:#x}: {device.name} and {self._ports[port].name}")
                self._ports[port] = device
        for start, size in device.mmio:
            self._mmio.append((start, start + size, device))
        self.devices.append(device)
        return device

    def device(self, name: str) -> Device | None:
        for device in self.devices:
            if device.name == name:
                return device
        return None

    def _before(self) -> None:
        if self.before_access is not None:
            self.before_access()

    # -- ports --------------------------------------------------------------------
    def io_read(self, port: int, size_bytes: int) -> int:
        device = self._ports.get(port)
        if device is None:
            self.unclaimed_port_reads[port] += 1
            return (1 << (8 * size_bytes)) - 1
        self._before()
        self.accesses += 1
        return device.io_read(port, size_bytes) & ((1 << (8 * size_bytes)) - 1)

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        device = self._ports.get(port)
        if device is None:
            self.unclaimed_port_writes[port] += 1
            return
        self._before()
        self.accesses += 1
        device.io_write(port, size_bytes, value & ((1 << (8 * size_bytes)) - 1))

    # -- memory-mapped I/O ------------------------------------------------------------
    def mmio_device(self, address: int) -> Device | None:
        for start, end, device in self._mmio:
            if start <= address < end:
                return device
        return None

    def mmio_read(self, address: int, size_bytes: int) -> int:
        device = self.mmio_device(address)
        if device is None:
            self.unclaimed_mmio += 1
            return (1 << (8 * size_bytes)) - 1
        self._before()
        self.accesses += 1
        return device.mmio_read(address, size_bytes) & ((1 << (8 * size_bytes)) - 1)

    def mmio_write(self, address: int, size_bytes: int, value: int) -> None:
        device = self.mmio_device(address)
        if device is None:
            self.unclaimed_mmio += 1
            return
        self._before()
        self.accesses += 1
        device.mmio_write(address, size_bytes, value & ((1 << (8 * size_bytes)) - 1))
