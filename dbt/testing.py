"""Running short instruction sequences on dbt from a given CPU state.

This is the engine side of differential testing: a ``SnippetRunner`` keeps
one machine and, for each case, loads code and data, sets registers and
flags, runs until the code's end (a HLT it appends) or an exception, and
returns the final state.  The same case runs on an independent emulator and
the states are compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dbt.cpu.state import Slot
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Ending

GENERAL_REGISTERS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
HLT = b"\xf4"


@dataclass
class SnippetResult:
    registers: dict[str, int]  # the eight general registers and eip
    eflags: int
    memory: dict[int, bytes]  # the contents of each requested region afterwards
    exception: int | None  # vector, if the code raised one
    error_code: int | None = None
    insns: int = 0
    lift_errors: list[str] = field(default_factory=list)


class SnippetRunner:
    """Runs code at ``code_address`` in a flat 32-bit ring-0 machine, natively
    (no monitor between the code and the CPU); ``jit`` chooses the tier
    (``off``: the cold tier, ``always``: every block compiled)."""

    def __init__(self, memory_bytes: int = 4 << 20, code_address: int = 0x1000,
                 max_insns: int = 100_000, jit: str = "off") -> None:
        self.code_address = code_address
        self.max_insns = max_insns
        self.machine = Machine(MachineConfig(memory_bytes=memory_bytes, serial_sink=lambda d: None,
                                             mode="native", jit=jit))
        self._dirty: list[tuple[int, int]] = []

    def run(self, code: bytes, registers: dict[str, int], eflags: int,
            memory: dict[int, bytes] | None = None,
            read_back: list[tuple[int, int]] | None = None) -> SnippetResult:
        """Run ``code`` (a HLT is appended) and return the state after it.

        ``memory`` maps addresses to bytes placed before the run;
        ``read_back`` lists (address, length) regions to return afterwards.
        """
        machine = self.machine
        ram = machine.memory.ram
        for address, length in self._dirty:
            ram[address:address + length] = bytes(length)
        self._dirty = []
        machine.cache.flush()
        machine.mmu.flush()
        machine.decoder.forget()
        if machine.jit is not None:
            machine.jit.flush()
        program = code + HLT
        self._place(self.code_address, program)
        for address, data in (memory or {}).items():
            self._place(address, data)
        machine.reset_cpu()
        slots = machine.slots
        for index, name in enumerate(GENERAL_REGISTERS):
            slots[index] = registers.get(name, 0) & 0xFFFFFFFF
        machine.set_eflags(eflags)
        slots[Slot.EIP] = self.code_address
        machine.outcome = None
        machine.icount = 0
        machine.lift_errors = []
        machine.config.max_insns = self.max_insns
        outcome = run(machine)
        exception = None
        error_code = None
        if outcome.ending is Ending.UNHANDLED_EXCEPTION:
            exception, error_code = outcome.vector, outcome.error_code
        elif outcome.ending is not Ending.HALTED:
            raise RuntimeError(f"snippet did not finish: {outcome.message}")
        result_registers = {name: slots[index] for index, name in enumerate(GENERAL_REGISTERS)}
        eip = slots[Slot.EIP]
        # A finished run stops after the appended HLT; report the HLT's address.
        result_registers["eip"] = eip - 1 if exception is None else eip
        regions = {}
        for address, length in read_back or []:
            regions[address] = bytes(ram[address:address + length])
        return SnippetResult(result_registers, machine.eflags(), regions, exception, error_code,
                             machine.icount, list(machine.lift_errors))

    def _place(self, address: int, data: bytes) -> None:
        self.machine.memory.load_image(address, data)
        self._dirty.append((address, len(data)))
