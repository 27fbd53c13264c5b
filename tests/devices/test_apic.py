"""The local APIC through its MMIO page."""

from __future__ import annotations

import pytest

from dbt.devices.apic import LocalApic
from dbt.devices.bus import Bus

from .conftest import FakeClock

BASE = 0xFEE00000


class Apic:
    def __init__(self, bus: Bus, clock: FakeClock) -> None:
        self.bus = bus
        self.eois: list[int] = []
        self.device = LocalApic(clock, self.eois.append)
        bus.attach(self.device)

    def read(self, offset: int) -> int:
        return self.bus.mmio_read(BASE + offset, 4)

    def write(self, offset: int, value: int) -> None:
        self.bus.mmio_write(BASE + offset, 4, value)

    def enable(self) -> None:
        self.write(0xF0, 0x1FF)

    def error_status(self) -> int:
        self.write(0x280, 0)
        return self.read(0x280)


@pytest.fixture
def apic(bus: Bus, clock: FakeClock) -> Apic:
    return Apic(bus, clock)


def test_reset_values(apic: Apic) -> None:
    assert apic.read(0x20) == 0
    assert apic.read(0x30) == 0x00050014
    assert apic.read(0xE0) == 0xFFFFFFFF
    assert apic.read(0xF0) == 0xFF
    for lvt in range(0x320, 0x380, 0x10):
        assert apic.read(lvt) == 0x10000
    assert apic.device.apic_base_msr == 0xFEE00900


def test_register_read_back(apic: Apic) -> None:
    apic.enable()
    for offset, written, expected in (
        (0x20, 0x05000000, 0x05000000),
        (0x80, 0x1234, 0x34),
        (0xD0, 0x01FFFFFF, 0x01000000),
        (0xE0, 0x00000000, 0x0FFFFFFF),
        (0xF0, 0xFFFFF3FF, 0x3FF),
        (0x310, 0xFFFFFFFF, 0xFF000000),
        (0x350, 0xFFFFFFFF, 0x1A7FF),
        (0x320, 0x000600FF, 0x000200FF),  # no TSC-deadline: bit 18 reads 0
        (0x370, 0x000000FF, 0x000000FF),
        (0x3E0, 0xFFFFFFFF, 0x0B),
        (0x380, 0x12345678, 0x12345678),
    ):
        apic.write(offset, written)
        assert apic.read(offset) == expected, hex(offset)


def test_read_only_and_reserved_registers(apic: Apic) -> None:
    apic.write(0x30, 0)
    assert apic.read(0x30) == 0x00050014
    assert apic.error_status() == 0
    assert apic.read(0x3F0) == 0
    assert apic.error_status() == 0x80  # illegal register address
    assert apic.error_status() == 0  # the ESR write cleared it


def test_narrow_and_unaligned_accesses(apic: Apic, bus: Bus) -> None:
    apic.write(0x80, 0x20)
    assert bus.mmio_read(BASE + 0x80, 1) == 0x20
    assert bus.mmio_read(BASE + 0x84, 4) == 0  # bytes 4-15 of a slot
    bus.mmio_write(BASE + 0x80, 1, 0x40)  # ignored
    bus.mmio_write(BASE + 0x84, 4, 0x40)  # ignored
    assert apic.read(0x80) == 0x20


def test_lvt_masks_stick_while_software_disabled(apic: Apic) -> None:
    apic.write(0x320, 0x30)
    assert apic.read(0x320) == 0x10030
    apic.enable()
    apic.write(0x320, 0x30)
    assert apic.read(0x320) == 0x30
    apic.write(0xF0, 0xFF)  # disable again: every LVT masked
    assert apic.read(0x320) == 0x10030


def test_one_shot_timer_count_and_interrupt_time(apic: Apic, clock: FakeClock) -> None:
    apic.enable()
    apic.write(0x3E0, 0x3)  # divide by 16: 160 ns a count at 100 MHz
    apic.write(0x320, 0x30)
    clock.ns = 1000
    apic.write(0x380, 1000)
    assert apic.device.next_event_ns() == 1000 + 160_000
    clock.ns = 1000 + 80_000
    assert apic.read(0x390) == 500
    apic.device.advance(1000 + 160_000 - 1)
    assert not apic.device.has_pending_interrupt()
    apic.device.advance(1000 + 160_000)
    assert apic.device.has_pending_interrupt()
    assert apic.device.acknowledge() == 0x30
    clock.ns = 1000 + 500_000
    assert apic.read(0x390) == 0
    assert apic.device.next_event_ns() is None


def test_periodic_timer_reloads(apic: Apic, clock: FakeClock) -> None:
    apic.enable()
    apic.write(0x3E0, 0xB)  # divide by 1: 10 ns a count
    apic.write(0x320, 0x20031)
    apic.write(0x380, 100)
    for period in range(1, 4):
        assert apic.device.next_event_ns() == period * 1000
        apic.device.advance(period * 1000)
        assert apic.device.acknowledge() == 0x31
        apic.write(0xB0, 0)
    clock.ns = 3500
    assert apic.read(0x390) == 50


def test_masked_timer_expiry_is_lost(apic: Apic, clock: FakeClock) -> None:
    apic.enable()
    apic.write(0x3E0, 0xB)
    apic.write(0x320, 0x10030)
    apic.write(0x380, 100)
    assert apic.device.next_event_ns() is None
    clock.ns = 2000
    apic.write(0x320, 0x30)
    assert not apic.device.has_pending_interrupt()


def test_self_ipi_by_shorthand_and_by_own_id(apic: Apic) -> None:
    apic.enable()
    apic.write(0x300, 1 << 18 | 0x41)  # shorthand "self", fixed
    assert apic.device.acknowledge() == 0x41
    apic.write(0xB0, 0)
    apic.write(0x310, 0)  # physical destination 0: this APIC's ID
    apic.write(0x300, 0x42)
    assert apic.read(0x300) & 1 << 12 == 0  # delivery status idle
    assert apic.device.acknowledge() == 0x42
    assert apic.error_status() == 0


def test_ipis_to_a_processor_that_does_not_exist(apic: Apic) -> None:
    apic.enable()
    apic.write(0x310, 1 << 24)
    apic.write(0x300, 0x4500)  # INIT, level assert
    assert apic.read(0x280) == 0  # not visible before the ESR write
    assert apic.error_status() == 0x04  # send accept error
    apic.write(0x300, 0x8500)  # INIT level de-assert: accepted by all
    assert apic.error_status() == 0
    apic.write(0x300, 0x4608)  # start-up IPI, vector 0x08 (code at 0x8000)
    assert apic.read(0x300) & 1 << 12 == 0
    assert apic.error_status() == 0x04
    apic.write(0x300, 3 << 18 | 0x50)  # fixed, all excluding self
    assert apic.error_status() == 0x04
    assert not apic.device.has_pending_interrupt()


def test_illegal_vector_ipi(apic: Apic) -> None:
    apic.enable()
    apic.write(0x300, 1 << 18 | 0x05)
    assert apic.error_status() == 0x20
    assert not apic.device.has_pending_interrupt()


def test_error_lvt_interrupt(apic: Apic) -> None:
    apic.enable()
    apic.write(0x370, 0xEE)
    apic.write(0x310, 7 << 24)
    apic.write(0x300, 0x4500)
    assert apic.device.acknowledge() == 0xEE


def test_priority_classes_tpr_and_eoi(apic: Apic) -> None:
    apic.enable()
    apic.write(0x300, 1 << 18 | 0x41)
    apic.write(0x300, 1 << 18 | 0x61)
    assert apic.read(0x220) == 1 << 1  # IRR word 2: vectors 0x40-0x5F
    assert apic.read(0x230) == 1 << 1  # IRR word 3: vectors 0x60-0x7F
    apic.write(0x80, 0x70)
    assert not apic.device.has_pending_interrupt()  # both classes at or below the TPR's
    apic.write(0x80, 0x00)
    assert apic.device.acknowledge() == 0x61
    assert apic.read(0xA0) == 0x60  # PPR: the class in service
    assert apic.read(0x100 + 0x30) == 1 << 1  # ISR bit 0x61
    assert not apic.device.has_pending_interrupt()  # 0x41 is a lower class
    apic.write(0xB0, 0)
    assert apic.device.acknowledge() == 0x41
    apic.write(0xB0, 0)
    assert apic.read(0xA0) == 0
    assert apic.device.acknowledge() == 0xFF  # nothing left: the spurious vector


def test_disabling_through_the_msr_hides_and_resets(apic: Apic) -> None:
    apic.enable()
    apic.write(0x80, 0x20)
    apic.device.apic_base_msr = 0xFEE00100
    assert apic.device.apic_base_msr == 0xFEE00100
    assert apic.read(0x30) == 0xFFFFFFFF
    apic.device.apic_base_msr = 0xFEE00900
    assert apic.read(0x80) == 0
    assert apic.read(0xF0) == 0xFF


def test_pic_reaches_the_cpu_in_virtual_wire_mode(apic: Apic) -> None:
    assert apic.device.pic_output_reaches_cpu()  # software-disabled after reset
    apic.enable()
    assert not apic.device.pic_output_reaches_cpu()  # LINT0 masked
    apic.write(0x350, 0x700)  # LINT0 ExtINT, unmasked
    assert apic.device.pic_output_reaches_cpu()
