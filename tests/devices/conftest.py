"""Fixtures for device tests: a clock the test moves by hand, and a bus."""

from __future__ import annotations

import pytest

from dbt.devices.bus import Bus


class FakeClock:
    """Virtual time in nanoseconds; tests set or advance it explicitly."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns

    def advance(self, delta_ns: int) -> int:
        self.ns += delta_ns
        return self.ns


class LineRecorder:
    """An IRQ line callback that remembers every level it was driven to."""

    def __init__(self) -> None:
        self.levels: list[bool] = []

    def __call__(self, level: bool) -> None:
        self.levels.append(level)

    @property
    def level(self) -> bool:
        return bool(self.levels) and self.levels[-1]

    def rising_edges(self) -> int:
        previous, edges = False, 0
        for level in self.levels:
            edges += level and not previous
            previous = level
        return edges


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus() -> Bus:
    return Bus()
