"""``dbt run --log``: a bounded execution log in the spirit of QEMU's ``-d``.

One event a line, its item first, so the log can be filtered with grep:

    in_asm  block 0x001000ab  11 instructions  flags 0x0000015d
    in_asm    0x001000ab  89 c3                    mov ebx, eax
    exec    0x001000ab  execution 12  icount 1,234
    int     vector 0x0d #GP  error 0x0000  eip 0x00100123  fault
    exit    callout:port-io  eip 0x00103c2f
    trap    emulate out  (out)  eip 0x00103c25
    cpu     eip=001000ab eax=00000001 ... eflags=00000246 cs=0009 ss=0011 cpl=1 vcpl=0

The log is bounded: once the next line would take it past ``limit_bytes``
one last line says where it was cut, and the tracer stops observing blocks.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, BinaryIO

from dbt.cpu.state import Slot
from dbt.vmm.faults import VECTOR_SHORT
from dbt.vmm.tracer import Tracer

if TYPE_CHECKING:
    from dbt.cache import TranslatedBlock
    from dbt.vmm.machine import Machine

# Each item and what it logs (usage errors and `--help` list the names).
LOG_ITEMS = {
    "in_asm": "each block as translated: its guest instructions",
    "exec": "each block as executed, chained ones included: EIP and execution count",
    "int": "exceptions and interrupts delivered to the guest: vector, error code, EIP, kind",
    "exits": "monitor exits and traps, with their reason",
    "cpu": "the register state at the entry of each block executed",
}
# Items that need every block execution observed (each block function wrapped).
BLOCK_ITEMS = frozenset({"exec", "cpu"})
DEFAULT_LIMIT_BYTES = 64 << 20

_GENERAL_REGISTERS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")


class LogItemError(ValueError):
    """An unknown log item; the message lists the valid ones."""


def parse_items(text: str) -> frozenset[str]:
    """The items of a comma-separated ``--log`` list (at least one)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in LOG_ITEMS]
    if unknown or not items:
        what = f"unknown log item(s) {', '.join(unknown)}" if unknown else "no log item given"
        raise LogItemError(f"{what}; choose from {', '.join(LOG_ITEMS)} (comma-separated)")
    return frozenset(items)


class BoundedLog:
    """Lines written to a binary stream until ``limit_bytes`` would be passed;
    then one truncation line and nothing more.  Invariant: the bytes written
    before the truncation line never exceed ``limit_bytes``."""

    def __init__(self, stream: BinaryIO, limit_bytes: int, close_stream: bool = False) -> None:
        self.stream = stream
        self.limit_bytes = limit_bytes
        self.written_bytes = 0
        self.truncated = False
        self.close_stream = close_stream

    def write(self, text: str) -> bool:
        """Write ``text`` (whole lines); False once the log is full."""
        if self.truncated:
            return False
        data = text.encode("utf-8", "replace")
        if self.written_bytes + len(data) > self.limit_bytes:
            self.truncated = True
            self.stream.write(
                f"dbt: log truncated at {self.written_bytes} bytes (--log-limit)\n".encode())
            return False
        self.stream.write(data)
        self.written_bytes += len(data)
        return True

    def close(self) -> None:
        if self.close_stream:
            self.stream.close()
        else:
            self.stream.flush()


def block_lines(block: TranslatedBlock) -> str:
    """A translated block's guest instructions, a header line first."""
    lines = [f"in_asm  block {block.pc:#010x}  {block.insn_count} instructions  "
             f"flags {block.flags:#010x}\n"]
    for insn in block.artifacts["instructions"]:
        lines.append(f"in_asm    {insn.address:#010x}  {insn.raw.hex(' '):<24} {insn.text}\n")
    return "".join(lines)


def vector_name(vector: int) -> str:
    short = VECTOR_SHORT.get(vector)
    return f"{vector:#04x} {short}" if short else f"{vector:#04x}"


class ExecutionLog(Tracer):
    """A tracer writing the chosen ``LOG_ITEMS`` to a bounded log.

    Block executions are only observed when ``exec`` or ``cpu`` is chosen
    (``wants_blocks``); when the log is full the tracer stops asking for them,
    so blocks translated after that run unwrapped."""

    def __init__(self, items: frozenset[str], log: BoundedLog) -> None:
        self.items = items
        self.log = log
        self.wants_blocks = bool(items & BLOCK_ITEMS)
        self.log_exec = "exec" in items
        self.log_cpu = "cpu" in items

    def _write(self, text: str) -> None:
        if not self.log.write(text):
            self.wants_blocks = False

    def translated(self, machine: Machine, block: TranslatedBlock) -> None:
        if "in_asm" in self.items and not self.log.truncated:
            self._write(block_lines(block))

    def block_entered(self, machine: Machine, block: TranslatedBlock) -> None:
        if self.log.truncated:
            return
        if self.log_exec:
            # The executor counts an execution before entering the block and
            # updates icount after it returns: both are this entry's values.
            self._write(f"exec    {block.pc:#010x}  execution {block.executions:,}  "
                        f"icount {machine.icount:,}\n")
        if self.log_cpu:
            self._write(cpu_line(machine, block.pc))

    def exception(self, machine: Machine, vector: int, error_code: int | None, eip: int,
                  kind: str) -> None:
        if "int" in self.items:
            error = f"{error_code:#06x}" if error_code is not None else "none  "
            self._write(f"int     vector {vector_name(vector)}  error {error}  "
                        f"eip {eip:#010x}  {kind}\n")

    def monitor_exit(self, machine: Machine, reason: str, eip: int) -> None:
        if "exits" in self.items:
            self._write(f"exit    {reason}  eip {eip:#010x}\n")

    def trap(self, machine: Machine, reason: str, mnemonic: str, eip: int) -> None:
        if "exits" in self.items:
            self._write(f"trap    {reason}  ({mnemonic})  eip {eip:#010x}\n")

    def finish(self, machine: Machine) -> None:
        self.log.close()


def cpu_line(machine: Machine, eip: int) -> str:
    """The register state as one line.  ``eip`` is passed in because a
    chained transition does not store EIP in the state."""
    slots = machine.slots
    general = " ".join(f"{name}={slots[index]:08x}" for index, name in enumerate(_GENERAL_REGISTERS))
    privilege = f"cpl={slots[Slot.CPL] & 3}"
    if machine.view.deprivileged:
        privilege += f" vcpl={slots[Slot.VCPL] & 3}"
    return (f"cpu     eip={eip:08x} {general} eflags={machine.eflags():08x} "
            f"cs={slots[Slot.CS_SEL]:04x} ss={slots[Slot.SS_SEL]:04x} {privilege}\n")


def open_log(items_text: str, path: str | None, limit_bytes: int) -> ExecutionLog:
    """The tracer for ``--log ITEMS [--log-file PATH] [--log-limit SIZE]``.
    Raises LogItemError for bad items and OSError if the file cannot be opened."""
    items = parse_items(items_text)
    if path is None or path == "-":
        return ExecutionLog(items, BoundedLog(sys.stderr.buffer, limit_bytes))
    stream = open(path, "wb")  # noqa: SIM115 (closed by the tracer's finish)
    return ExecutionLog(items, BoundedLog(stream, limit_bytes, close_stream=True))


class TracerGroup(Tracer):
    """Several tracers observing one run (``dbt dump`` records blocks while
    ``--log`` writes its log).  Blocks are observed if any member wants them."""

    def __init__(self, *tracers: Tracer) -> None:
        self.tracers = tracers

    @property
    def wants_blocks(self) -> bool:  # type: ignore[override]
        return any(tracer.wants_blocks for tracer in self.tracers)

    def translated(self, machine: Machine, block: TranslatedBlock) -> None:
        for tracer in self.tracers:
            tracer.translated(machine, block)

    def block_entered(self, machine: Machine, block: TranslatedBlock) -> None:
        for tracer in self.tracers:
            if tracer.wants_blocks:
                tracer.block_entered(machine, block)

    def exception(self, machine: Machine, vector: int, error_code: int | None, eip: int,
                  kind: str) -> None:
        for tracer in self.tracers:
            tracer.exception(machine, vector, error_code, eip, kind)

    def monitor_exit(self, machine: Machine, reason: str, eip: int) -> None:
        for tracer in self.tracers:
            tracer.monitor_exit(machine, reason, eip)

    def trap(self, machine: Machine, reason: str, mnemonic: str, eip: int) -> None:
        for tracer in self.tracers:
            tracer.trap(machine, reason, mnemonic, eip)

    def finish(self, machine: Machine) -> None:
        for tracer in self.tracers:
            tracer.finish(machine)


class BlockRecorder(Tracer):
    """Keeps every block inserted in the cache, so that translations since
    invalidated (self-modifying code, flushes) can still be shown."""

    def __init__(self) -> None:
        self.blocks: list[TranslatedBlock] = []

    def translated(self, machine: Machine, block: TranslatedBlock) -> None:
        self.blocks.append(block)
