"""What the machine tells an observer while it runs.

A ``Tracer`` receives events at the points where the monitor already does
work (translation, exceptions, monitor exits, traps); block execution is
observed by wrapping each block's function when ``wants_blocks`` is set, so
a run without tracing pays nothing in its inner loop.  The default tracer
ignores everything; ``dbt.trace`` writes QEMU-style execution logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbt.cache import TranslatedBlock
    from dbt.vmm.machine import Machine


class Tracer:
    # Set by tracers that want ``block_entered`` for every block executed
    # (chained ones included); the machine then wraps block functions.
    wants_blocks = False

    def translated(self, machine: Machine, block: TranslatedBlock) -> None:
        """A block was translated (and inserted in the cache)."""

    def block_entered(self, machine: Machine, block: TranslatedBlock) -> None:
        """A block is about to run; the CPU state is its entry state."""

    def exception(self, machine: Machine, vector: int, error_code: int | None, eip: int,
                  kind: str) -> None:
        """An exception or interrupt is delivered to the guest.  ``kind``:
        fault, trap, software or external."""

    def monitor_exit(self, machine: Machine, reason: str, eip: int) -> None:
        """A block returned to the monitor on purpose (I/O, callout, mode change)."""

    def trap(self, machine: Machine, reason: str, mnemonic: str, eip: int) -> None:
        """The monitor handled a deprivileged guest's exception (emulated or reflected)."""

    def finish(self, machine: Machine) -> None:
        """The run ended."""
