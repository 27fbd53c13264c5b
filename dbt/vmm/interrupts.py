"""Exception delivery policy: the SDM's exception classes, #DF and the
triple fault.

``deliver`` hands an exception to ``Protection.interrupt``; if delivering
it raises a second exception, the pair's classes decide whether the second
is delivered instead, a double fault (#DF) is raised, or — a fault while
delivering #DF — the processor shuts down (a triple fault).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt.cpu.state import Slot
from dbt.vmm.faults import GuestFault
from dbt.vmm.outcome import Ending, Outcome
from dbt.vmm.protection import Unsupported

if TYPE_CHECKING:
    from dbt.vmm.machine import Machine

DOUBLE_FAULT = 8
PAGE_FAULT = 14
CONTRIBUTORY = frozenset({0, 10, 11, 12, 13})


def _class(vector: int) -> str:
    if vector in CONTRIBUTORY:
        return "contributory"
    if vector == PAGE_FAULT:
        return "page fault"
    if vector == DOUBLE_FAULT:
        return "double fault"
    return "benign"


def escalates(first: int, second: int) -> bool:
    """Whether ``second``, raised while delivering ``first``, makes a #DF."""
    first_class, second_class = _class(first), _class(second)
    if first_class == "contributory":
        return second_class == "contributory"
    if first_class == "page fault":
        return second_class in ("contributory", "page fault")
    return False


def deliver(machine: Machine, fault: GuestFault, address: int, next_address: int,
            external: bool = False) -> None:
    """Deliver ``fault`` raised by the instruction at ``address``."""
    chain = [fault]
    return_eip = next_address if fault.is_trap else address
    vector, error_code, software = fault.vector, fault.error_code, fault.is_software
    slots = machine.slots
    while True:
        kind = "external" if external else "software" if software else "trap" if fault.is_trap else "fault"
        machine.tracer.exception(machine, vector, error_code, address, kind)
        if vector == PAGE_FAULT and chain[-1].cr2 is not None:
            slots[Slot.CR2] = chain[-1].cr2
        try:
            machine.system.protection.interrupt(vector, error_code, return_eip, software, external)
            machine.env_changed()
            return
        except Unsupported as unsupported:
            machine.stop_unsupported(str(unsupported))
            return
        except GuestFault as second:
            chain.append(second)
            if vector == DOUBLE_FAULT and (_class(second.vector) != "benign"):
                _shut_down(machine, chain, address)
                return
            software = False
            return_eip = address
            if escalates(vector, second.vector):
                vector, error_code = DOUBLE_FAULT, 0
            else:
                vector, error_code = second.vector, second.error_code
            if len(chain) > 8:  # benign faults delivering benign faults: give up like a shutdown
                _shut_down(machine, chain, address)
                return


def _shut_down(machine: Machine, chain: list[GuestFault], address: int) -> None:
    """A triple fault: the processor stops (a PC then resets)."""
    slots = machine.slots
    story = " -> ".join(fault.describe() for fault in chain)
    if not slots[Slot.IDTR_LIMIT]:
        first = chain[0]
        machine.request_stop(Outcome(
            Ending.UNHANDLED_EXCEPTION,
            message=f"unhandled {first.describe()} at EIP {address:#010x} (the guest has no IDT)",
            details={"instruction": machine.instruction_at(address), "chain": story},
            vector=first.vector, error_code=first.error_code,
        ))
        return
    outcome = Outcome(
        Ending.TRIPLE_FAULT,
        message=f"triple fault at EIP {address:#010x}: {story}",
        details={"instruction": machine.instruction_at(address), "chain": story},
        vector=chain[0].vector, error_code=chain[0].error_code,
    )
    if machine.config.on_triple_fault == "reset" and machine.reboot is not None:
        machine.reboot_or_stop(outcome)
        return
    machine.request_stop(outcome)
