"""How a run ends, and the exit status ``dbt run`` returns for it.

The guest's own exit through QEMU's isa-debug-exit device gives QEMU's
status, (value << 1) | 1, which is always odd; every other ending has its
own even status, so a script can tell them apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Ending(enum.Enum):
    DEBUG_EXIT = "debug-exit"  # the guest wrote to port 0xF4
    SHUTDOWN = "shutdown"  # the guest reset the machine (8042 pulse) and --on-reset stop
    USAGE = "usage"  # dbt itself could not start the guest (bad image, bad option)
    UNHANDLED_EXCEPTION = "unhandled-exception"  # no IDT could deliver it (before the guest set one)
    TRIPLE_FAULT = "triple-fault"
    INSTRUCTION_BUDGET = "instruction-budget"  # --max-insns reached
    TIMEOUT = "timeout"  # --timeout reached
    HALTED = "halted"  # HLT with interrupts disabled: nothing can ever wake the CPU
    MONITOR_ERROR = "monitor-error"  # a bug in dbt; reported, never the guest's fault
    UNSUPPORTED = "unsupported"  # the guest used something dbt does not implement (task switch, real mode)


STATUS = {
    Ending.SHUTDOWN: 0,
    Ending.USAGE: 2,
    Ending.UNHANDLED_EXCEPTION: 4,
    Ending.TRIPLE_FAULT: 6,
    Ending.INSTRUCTION_BUDGET: 8,
    Ending.TIMEOUT: 10,
    Ending.HALTED: 12,
    Ending.MONITOR_ERROR: 14,
    Ending.UNSUPPORTED: 16,
}


@dataclass
class Outcome:
    ending: Ending
    exit_value: int = 0  # the value written to isa-debug-exit
    message: str = ""  # what happened, for the report
    details: dict[str, str] = field(default_factory=dict)
    vector: int | None = None  # the exception that ended the run, if one did
    error_code: int | None = None

    @property
    def status(self) -> int:
        if self.ending is Ending.DEBUG_EXIT:
            return ((self.exit_value << 1) | 1) & 0xFF
        return STATUS[self.ending]

    @property
    def is_guest_exit(self) -> bool:
        return self.ending is Ending.DEBUG_EXIT


class MachineStop(Exception):
    """Raised inside the monitor (a device, a helper) to end the run."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome
