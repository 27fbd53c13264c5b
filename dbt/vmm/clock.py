"""Virtual time.

By default time is counted in retired guest instructions: the virtual CPU
retires one instruction every ``NS_PER_INSN`` nanoseconds (100 million
instructions per virtual second), so every run of a guest sees the same
times and is reproducible bit for bit.  ``--clock host`` uses the host's
monotonic clock instead.  The time-stamp counter runs at 1 GHz: it counts
virtual nanoseconds.
"""

from __future__ import annotations

import time

NS_PER_INSN = 10


class Clock:
    def __init__(self, source: str = "virtual") -> None:
        if source not in ("virtual", "host"):
            raise ValueError(f"unknown clock source {source!r} (virtual or host)")
        self.source = source
        self._host_start = time.monotonic_ns()

    @property
    def virtual(self) -> bool:
        return self.source == "virtual"

    def ns(self, icount: int) -> int:
        """The time in nanoseconds after ``icount`` retired instructions."""
        if self.source == "virtual":
            return icount * NS_PER_INSN
        return time.monotonic_ns() - self._host_start

    def tsc(self, icount: int) -> int:
        return self.ns(icount) & 0xFFFFFFFFFFFFFFFF

    def insns_for(self, delta_ns: int) -> int:
        """Instructions that take ``delta_ns`` of virtual time (at least one)."""
        return max(1, -(-delta_ns // NS_PER_INSN))
