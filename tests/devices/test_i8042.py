"""The 8042 keyboard controller and port 0x92: A20, reset, command byte."""

from __future__ import annotations

import pytest

from dbt.devices.bus import Bus
from dbt.devices.i8042 import A20Gate, Keyboard8042, SystemControlPortA

from .conftest import LineRecorder


class Board:
    def __init__(self, bus: Bus) -> None:
        self.resets = 0
        self.a20: list[bool] = []
        self.irq1 = LineRecorder()
        gate = A20Gate(self.a20.append)
        self.controller = Keyboard8042(self.reset, gate, self.irq1)
        bus.attach(self.controller)
        bus.attach(SystemControlPortA(self.reset, gate))

    def reset(self) -> None:
        self.resets += 1


@pytest.fixture
def board(bus: Bus) -> Board:
    return Board(bus)


def command(bus: Bus, value: int, data: int | None = None) -> None:
    bus.io_write(0x64, 1, value)
    if data is not None:
        bus.io_write(0x60, 1, data)


def test_self_test_answers_0x55_and_the_last_byte_stays_readable(bus: Bus, board: Board) -> None:
    assert bus.io_read(0x64, 1) & 0x01 == 0
    command(bus, 0xAA)
    assert bus.io_read(0x64, 1) & 0x01
    assert bus.io_read(0x60, 1) == 0x55
    assert bus.io_read(0x64, 1) & 0x01 == 0
    assert bus.io_read(0x60, 1) == 0x55


def test_command_byte_read_and_write(bus: Bus, board: Board) -> None:
    command(bus, 0x20)
    assert bus.io_read(0x60, 1) == 0x45
    command(bus, 0x60, 0x20)
    command(bus, 0x20)
    assert bus.io_read(0x60, 1) == 0x20
    command(bus, 0xAD)
    command(bus, 0x20)
    assert bus.io_read(0x60, 1) == 0x30
    command(bus, 0xAE)
    command(bus, 0x20)
    assert bus.io_read(0x60, 1) == 0x20


def test_status_bit_3_tells_the_last_write_port(bus: Bus, board: Board) -> None:
    command(bus, 0x20)
    assert bus.io_read(0x64, 1) & 0x08
    bus.io_read(0x60, 1)
    bus.io_write(0x60, 1, 0xF4)  # to the keyboard: enable
    assert bus.io_read(0x64, 1) & 0x08 == 0
    assert bus.io_read(0x60, 1) == 0xFA  # acknowledged


def test_a20_through_the_output_port(bus: Bus, board: Board) -> None:
    command(bus, 0xD1, 0xDD)  # A20 off, reset line high
    assert board.a20 == [False]
    command(bus, 0xD0)
    assert bus.io_read(0x60, 1) & 0x02 == 0
    command(bus, 0xD1, 0xDF)
    assert board.a20 == [False, True]
    assert board.resets == 0


def test_fast_a20_through_port_92(bus: Bus, board: Board) -> None:
    command(bus, 0xD1, 0xDD)
    bus.io_write(0x92, 1, 0x02)
    assert board.a20 == [False, True]
    assert bus.io_read(0x92, 1) == 0x02
    bus.io_write(0x92, 1, 0x00)
    assert board.a20 == [False, True, False]


def test_resets(bus: Bus, board: Board) -> None:
    command(bus, 0xFE)  # pulse output line 0
    assert board.resets == 1
    command(bus, 0xFF)  # pulses nothing
    assert board.resets == 1
    command(bus, 0xD1, 0xDE)  # output port with reset (bit 0) low
    assert board.resets == 2
    bus.io_write(0x92, 1, 0x01)
    assert board.resets == 3
    bus.io_write(0x92, 1, 0x01)  # no 0-to-1 transition
    assert board.resets == 3


def test_irq1_follows_the_output_buffer_when_enabled(bus: Bus, board: Board) -> None:
    command(bus, 0xAA)
    assert board.irq1.level
    bus.io_read(0x60, 1)
    assert not board.irq1.level
    command(bus, 0x60, 0x44)  # keyboard interrupt off
    command(bus, 0xAA)
    assert not board.irq1.level


def test_keyboard_reset_queues_two_bytes_with_an_edge_each(bus: Bus, board: Board) -> None:
    bus.io_write(0x60, 1, 0xFF)
    assert bus.io_read(0x60, 1) == 0xFA
    assert bus.io_read(0x60, 1) == 0xAA
    assert board.irq1.rising_edges() == 2
