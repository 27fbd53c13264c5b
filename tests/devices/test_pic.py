"""The 8259A pair, driven through its ports as a guest would."""

from __future__ import annotations

import pytest

from dbt.devices.bus import Bus
from dbt.devices.pic import PicPair

MASTER_BASE, SLAVE_BASE = 0x20, 0x28
READ_IRR, READ_ISR, POLL = 0x0A, 0x0B, 0x0C
NON_SPECIFIC_EOI = 0x20


def initialize(bus: Bus, icw4: int = 0x01) -> None:
    """The classic Linux/BSD sequence: edge, cascade, ICW4, vectors 0x20/0x28."""
    for command, data, base, icw3 in ((0x20, 0x21, MASTER_BASE, 0x04), (0xA0, 0xA1, SLAVE_BASE, 0x02)):
        bus.io_write(command, 1, 0x11)
        bus.io_write(data, 1, base)
        bus.io_write(data, 1, icw3)
        bus.io_write(data, 1, icw4)


@pytest.fixture
def pic(bus: Bus) -> PicPair:
    device = PicPair()
    bus.attach(device)
    initialize(bus)
    return device


def read_register(bus: Bus, port: int, which: int) -> int:
    bus.io_write(port, 1, which)
    return bus.io_read(port, 1)


def test_starts_as_the_bios_leaves_it(bus: Bus) -> None:
    pic = PicPair()
    bus.attach(pic)
    assert bus.io_read(0x21, 1) == 0xFB and bus.io_read(0xA1, 1) == 0xFF
    bus.io_write(0x21, 1, 0xFA)  # unmask IRQ 0
    pic.set_irq(0, True)
    assert pic.acknowledge() == 0x08


def test_icw1_clears_the_mask_and_ocw1_sets_it(bus: Bus, pic: PicPair) -> None:
    assert bus.io_read(0x21, 1) == 0 and bus.io_read(0xA1, 1) == 0
    bus.io_write(0x21, 1, 0xF3)
    assert bus.io_read(0x21, 1) == 0xF3


def test_rising_edge_requests_and_acknowledge_moves_irr_to_isr(bus: Bus, pic: PicPair) -> None:
    assert not pic.interrupt_output()
    pic.set_irq(3, True)
    assert pic.interrupt_output()
    assert read_register(bus, 0x20, READ_IRR) == 0x08
    assert pic.acknowledge() == MASTER_BASE + 3
    assert read_register(bus, 0x20, READ_ISR) == 0x08
    assert read_register(bus, 0x20, READ_IRR) == 0x00
    assert not pic.interrupt_output()


def test_masked_request_stays_in_irr_but_is_not_signalled(bus: Bus, pic: PicPair) -> None:
    bus.io_write(0x21, 1, 0x08)
    pic.set_irq(3, True)
    assert not pic.interrupt_output()
    assert read_register(bus, 0x20, READ_IRR) == 0x08
    bus.io_write(0x21, 1, 0x00)
    assert pic.acknowledge() == MASTER_BASE + 3


def test_fixed_priority_and_nesting(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(5, True)
    pic.set_irq(3, True)
    assert pic.acknowledge() == MASTER_BASE + 3  # IR3 outranks IR5
    assert not pic.interrupt_output()  # IR5 waits for IR3's EOI
    pic.set_irq(1, True)
    assert pic.acknowledge() == MASTER_BASE + 1  # a higher priority nests
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)  # ends IR1, the highest in service
    assert read_register(bus, 0x20, READ_ISR) == 0x08
    assert not pic.interrupt_output()
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)
    assert pic.acknowledge() == MASTER_BASE + 5


def test_specific_eoi_clears_only_that_level(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(3, True)
    pic.acknowledge()
    pic.set_irq(1, True)
    pic.acknowledge()
    bus.io_write(0x20, 1, 0x60 | 3)
    assert read_register(bus, 0x20, READ_ISR) == 0x02


def test_edge_line_held_high_does_not_request_again(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(4, True)
    pic.acknowledge()
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)
    pic.set_irq(4, True)
    assert not pic.interrupt_output()
    pic.set_irq(4, False)
    pic.set_irq(4, True)
    assert pic.acknowledge() == MASTER_BASE + 4


def test_elcr_level_line_requests_again_after_eoi(bus: Bus, pic: PicPair) -> None:
    bus.io_write(0x4D0, 1, 0xFF)
    assert bus.io_read(0x4D0, 1) == 0xF8  # IRQ 0-2 are always edge
    bus.io_write(0x4D1, 1, 0xFF)
    assert bus.io_read(0x4D1, 1) == 0xDE  # IRQ 8 and 13 too
    pic.set_irq(5, True)
    assert pic.acknowledge() == MASTER_BASE + 5
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)
    assert pic.acknowledge() == MASTER_BASE + 5  # still high: still requesting
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)
    pic.set_irq(5, False)
    assert not pic.interrupt_output()


def test_request_that_vanishes_before_inta_is_spurious_irq7(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(3, True)
    assert pic.interrupt_output()
    pic.set_irq(3, False)  # the datasheet's "IR input goes low before INTA"
    assert pic.acknowledge() == MASTER_BASE + 7
    assert read_register(bus, 0x20, READ_ISR) == 0  # spurious: IR7 not in service


def test_slave_request_is_delivered_through_the_cascade(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(10, True)
    assert pic.interrupt_output()
    assert pic.acknowledge() == SLAVE_BASE + 2
    assert read_register(bus, 0x20, READ_ISR) == 0x04
    assert read_register(bus, 0xA0, READ_ISR) == 0x04
    bus.io_write(0xA0, 1, NON_SPECIFIC_EOI)
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)
    assert read_register(bus, 0x20, READ_ISR) == 0 and read_register(bus, 0xA0, READ_ISR) == 0


def test_slave_request_vanishing_after_the_master_chose_ir2_is_irq15(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(10, True)
    assert pic.master.acknowledge() == 2  # first INTA: the master commits to IR2
    pic.set_irq(10, False)  # the request goes before the slave's cycle
    assert pic.slave.acknowledge() is None
    assert pic.slave.vector(7) == SLAVE_BASE + 7
    assert read_register(bus, 0x20, READ_ISR) == 0x04  # the master still needs its EOI
    assert read_register(bus, 0xA0, READ_ISR) == 0x00


def test_auto_eoi_leaves_nothing_in_service(bus: Bus, pic: PicPair) -> None:
    initialize(bus, icw4=0x03)
    pic.set_irq(6, True)
    assert pic.acknowledge() == MASTER_BASE + 6
    assert read_register(bus, 0x20, READ_ISR) == 0


def test_poll_command_acknowledges_on_the_next_read(bus: Bus, pic: PicPair) -> None:
    bus.io_write(0x20, 1, POLL)
    assert bus.io_read(0x20, 1) == 0x00  # nothing requested
    pic.set_irq(6, True)
    bus.io_write(0x20, 1, POLL)
    assert bus.io_read(0x20, 1) == 0x86
    assert read_register(bus, 0x20, READ_ISR) == 0x40


def test_set_priority_rotates_the_order(bus: Bus, pic: PicPair) -> None:
    bus.io_write(0x20, 1, 0xC0 | 4)  # IR4 lowest, so IR5 becomes highest
    pic.set_irq(3, True)
    pic.set_irq(5, True)
    assert pic.acknowledge() == MASTER_BASE + 5


def test_reinitialization_resets_edge_latches(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(3, True)
    initialize(bus)
    assert not pic.interrupt_output()
    assert read_register(bus, 0x20, READ_IRR) == 0


def test_fully_nested_mode_blocks_a_second_slave_interrupt(bus: Bus, pic: PicPair) -> None:
    pic.set_irq(10, True)
    assert pic.acknowledge() == SLAVE_BASE + 2
    pic.set_irq(9, True)  # higher priority on the slave, but the master has IR2 in service
    assert not pic.interrupt_output()
    bus.io_write(0xA0, 1, NON_SPECIFIC_EOI)
    bus.io_write(0x20, 1, NON_SPECIFIC_EOI)
    assert pic.acknowledge() == SLAVE_BASE + 1


def test_special_fully_nested_mode_lets_the_slave_nest(bus: Bus, pic: PicPair) -> None:
    bus.io_write(0x20, 1, 0x11)
    bus.io_write(0x21, 1, MASTER_BASE)
    bus.io_write(0x21, 1, 0x04)
    bus.io_write(0x21, 1, 0x11)  # ICW4: 8086, special fully nested
    pic.set_irq(10, True)
    assert pic.acknowledge() == SLAVE_BASE + 2
    pic.set_irq(9, True)
    assert pic.acknowledge() == SLAVE_BASE + 1
    pic.set_irq(5, True)  # a lower master line still waits for IR2
    assert not pic.interrupt_output()
