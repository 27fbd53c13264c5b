"""Run a guest under dbt and Unicorn side by side and find the first
instruction after which their states differ.

    .venv/bin/python tests/lockstep.py GUEST [--max N]

Both start from the same memory and registers (dbt's state right after the
Multiboot loader); Unicorn answers the UART's line-status port as ready and
stops at isa-debug-exit.  The search advances in chunks and, at the first
chunk whose end states differ, steps back to the last equal state and
narrows the chunk down to a single instruction.  A development tool, and
the engine behind tests that check whole guests against Unicorn.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_32, Uc
from unicorn import x86_const as U

from dbt.cpu.state import Slot
from dbt.session import RunOptions, prepare
from dbt.vmm.executor import run
from dbt.vmm.outcome import Ending

REGISTERS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip")
UC_REGISTERS = [getattr(U, f"UC_X86_REG_{name.upper()}") for name in REGISTERS]
ARITH = 0x8D5


@dataclass
class Divergence:
    icount: int
    dbt: dict[str, int]
    unicorn: dict[str, int]

    def describe(self) -> str:
        lines = [f"states differ after {self.icount:,} instructions"]
        for name in (*REGISTERS, "eflags"):
            mark = "" if self.dbt[name] == self.unicorn[name] else "   <-- differs"
            lines.append(f"  {name:7} dbt {self.dbt[name]:08x}  unicorn {self.unicorn[name]:08x}{mark}")
        if self.dbt["memory"] != self.unicorn["memory"]:
            lines.append("  memory differs")
        return "\n".join(lines)


class Lockstep:
    def __init__(self, guest: str, memory_bytes: int = 64 << 20) -> None:
        self.machine = prepare(guest, RunOptions(serial_sink=lambda d: None, memory_bytes=memory_bytes))
        self.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        self.uc.mem_map(0, memory_bytes)
        self.uc.mem_write(0, bytes(self.machine.memory.ram))
        slots = self.machine.slots
        for name, register in zip(REGISTERS, UC_REGISTERS, strict=True):
            self.uc.reg_write(register, slots[Slot[name.upper()]])
        self.uc.reg_write(U.UC_X86_REG_EFLAGS, self.machine.eflags())
        self.uc.hook_add(UC_HOOK_INSN, self._in, None, 1, 0, U.UC_X86_INS_IN)
        self.uc.hook_add(UC_HOOK_INSN, self._out, None, 1, 0, U.UC_X86_INS_OUT)
        self.uc_icount = 0
        self.unicorn_stopped = False

    def _in(self, uc, port, size, data):  # type: ignore[no-untyped-def]
        return 0x60 if port == 0x3FD else 0xFF

    def _out(self, uc, port, size, value, data):  # type: ignore[no-untyped-def]
        if port == 0xF4:
            self.unicorn_stopped = True
            uc.emu_stop()

    def dbt_state(self) -> dict[str, int]:
        slots = self.machine.slots
        state = {name: slots[Slot[name.upper()]] for name in REGISTERS}
        state["eflags"] = self.machine.eflags() & ARITH
        state["memory"] = hash(bytes(self.machine.memory.ram))
        return state

    def unicorn_state(self) -> dict[str, int]:
        state = {name: self.uc.reg_read(register) for name, register in zip(REGISTERS, UC_REGISTERS, strict=True)}
        state["eflags"] = self.uc.reg_read(U.UC_X86_REG_EFLAGS) & ARITH
        state["memory"] = hash(bytes(self.uc.mem_read(0, self.machine.memory.size_bytes)))
        return state

    def memory_differences(self, most: int = 8) -> list[str]:
        ours = self.machine.memory.ram
        theirs = self.uc.mem_read(0, self.machine.memory.size_bytes)
        found = []
        for address in range(len(ours)):
            if ours[address] != theirs[address]:
                found.append(f"  [{address:#010x}] dbt {ours[address]:02x}  unicorn {theirs[address]:02x}")
                if len(found) >= most:
                    break
        return found

    def advance(self, count: int) -> None:
        self._advance_dbt(count)
        self.uc.emu_start(self.uc.reg_read(U.UC_X86_REG_EIP), 0xFFFFFFFF, count=count)
        self.uc_icount += count

    def _resync(self) -> bool:
        """The two count REP instructions differently (Unicorn adds one for
        the final count check), so equal counts may land a few instructions
        apart.  Let either side run a few instructions to meet the other."""
        context = self.uc.context_save()
        for _ in range(16):
            self.uc.emu_start(self.uc.reg_read(U.UC_X86_REG_EIP), 0xFFFFFFFF, count=1)
            if self.dbt_state() == self.unicorn_state():
                return True
        self.uc.context_restore(context)
        for _ in range(16):
            self._advance_dbt(1)
            if self.dbt_state() == self.unicorn_state():
                return True
        return False

    def _advance_dbt(self, count: int) -> None:
        machine = self.machine
        machine.config.max_insns = machine.icount + count
        machine.outcome = None
        outcome = run(machine)
        if outcome.ending is not Ending.INSTRUCTION_BUDGET:
            raise RuntimeError(f"dbt stopped: {outcome.message}")

    def snapshot(self):  # type: ignore[no-untyped-def]
        machine = self.machine
        return (bytes(machine.memory.ram), bytes(machine.slots.cast("B")), machine.icount,
                self.uc.context_save(), self.uc.mem_read(0, machine.memory.size_bytes))

    def restore(self, snapshot) -> None:  # type: ignore[no-untyped-def]
        ram, slots, icount, context, uc_ram = snapshot
        machine = self.machine
        machine.memory.ram[:] = ram
        machine.slots.cast("B")[:] = slots
        machine.icount = icount
        machine.cache.flush()
        machine.mmu.flush()
        machine.env_changed()
        self.uc.context_restore(context)
        self.uc.mem_write(0, bytes(uc_ram))

    def search(self, limit: int, chunk: int = 100_000) -> Divergence | None:
        good = self.snapshot()
        while self.machine.icount < limit:
            self.advance(min(chunk, limit - self.machine.icount))
            first = Divergence(self.machine.icount, self.dbt_state(), self.unicorn_state())
            if first.dbt == first.unicorn or self._resync():
                good = self.snapshot()
                continue
            if chunk == 1:
                return first
            self.restore(good)
            chunk = max(1, chunk // 10)
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("guest")
    parser.add_argument("--max", type=int, default=100_000_000)
    args = parser.parse_args()
    lockstep = Lockstep(args.guest)
    divergence = lockstep.search(args.max)
    if divergence is None:
        print(f"no difference in {args.max:,} instructions")
        return 0
    print(divergence.describe())
    print("\n".join(lockstep.memory_differences()))
    return 1


if __name__ == "__main__":
    sys.exit(main())
