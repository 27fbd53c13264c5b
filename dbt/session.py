"""One run of one guest: build the machine, boot the kernel, run, collect.

The CLI, ``dbt compare``, the benchmark harness and the tests all start
guests through ``run_guest`` so that they agree on what a run is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dbt.guests import find_guest
from dbt.loader.multiboot import ImageError, Module, boot
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Outcome
from dbt.vmm.tracer import Tracer

_SIZE = re.compile(r"^(\d+)([KMG]?)(i?B?)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'64M', '512K', '1G' or a number of bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"cannot read {text!r} as a memory size (examples: 64M, 512K, 1G)")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number << {"": 0, "K": 10, "M": 20, "G": 30}[unit]


def resolve_image(guest: str) -> tuple[Path, str]:
    """The kernel file for a shipped guest's name or a path, and its display name."""
    path = Path(guest)
    if path.exists():
        if path.is_dir():
            raise ImageError(f"{guest} is a directory, not a kernel image")
        return path, path.name
    shipped = find_guest(guest)
    if shipped is not None:
        if not shipped.built:
            raise ImageError(
                f"the guest {guest!r} is not built yet ({shipped.image} is missing): run `make guests`")
        return shipped.image, guest
    raise ImageError(f"{guest!r} is neither a file nor a shipped guest (see `dbt guests`)")


@dataclass
class RunOptions:
    memory_bytes: int = 64 << 20
    max_insns: int | None = None
    timeout_seconds: float | None = None
    cmdline: str = ""
    modules: list[tuple[Path, str]] = field(default_factory=list)
    serial_input: bytes | BinaryIO | None = None
    clock: str = "virtual"
    serial_sink: Callable[[bytes], None] | None = None
    debugcon_sink: Callable[[bytes], None] | None = None
    on_reset: str = "stop"
    on_triple_fault: str = "stop"
    mode: str = "bt"
    deprivilege: str = "0/1/3"
    jit: str = "on"
    jit_threshold: int | None = None
    jit_compile: str = "background"
    jit_cache: str | None = None  # a directory for compiled regions' object code, kept across runs
    rules_directory: str | None = None
    tracer: Tracer | None = None  # an observer of the run (dbt.trace for --log)


@dataclass
class RunResult:
    outcome: Outcome
    machine: Machine
    wall_seconds: float

    @property
    def output(self) -> bytes:
        return bytes(self.machine.serial_output)

    @property
    def status(self) -> int:
        return self.outcome.status

    @property
    def insns(self) -> int:
        return self.machine.icount


def prepare(guest: str, options: RunOptions) -> Machine:
    image, name = resolve_image(guest)
    config = MachineConfig(
        memory_bytes=options.memory_bytes,
        clock=options.clock,
        max_insns=options.max_insns,
        timeout_seconds=options.timeout_seconds,
        serial_sink=options.serial_sink,
        serial_input=options.serial_input,
        debugcon_sink=options.debugcon_sink,
        on_reset=options.on_reset,
        on_triple_fault=options.on_triple_fault,
        mode=options.mode,
        deprivilege=options.deprivilege,
        tracer=options.tracer,
        jit=options.jit,
        jit_threshold=options.jit_threshold,
        jit_compile=options.jit_compile,
        jit_cache=options.jit_cache,
        rules_directory=options.rules_directory,
    )
    machine = Machine(config)
    modules = []
    for path, string in options.modules:
        try:
            modules.append(Module(path.read_bytes(), string or str(path)))
        except OSError as error:
            raise ImageError(f"cannot read module {path}: {error.strerror}") from None
    try:
        data = image.read_bytes()
    except OSError as error:
        raise ImageError(f"cannot read {image}: {error.strerror}") from None
    cmdline = f"{name} {options.cmdline}".strip() if options.cmdline else name
    boot(machine, data, cmdline, modules)

    def reboot() -> None:
        """A PC reset: devices and CPU start over and the kernel is loaded
        again, as a boot loader would after the firmware ran."""
        machine.reset_platform()
        boot(machine, data, cmdline, modules)
        machine.cache.flush()
        machine.mmu.flush()
        machine.reboots += 1

    machine.reboot = reboot
    return machine


def run_guest(guest: str, options: RunOptions | None = None) -> RunResult:
    """Boot and run a guest to its end.  Raises ImageError for a bad image."""
    options = options or RunOptions()
    machine = prepare(guest, options)
    started = time.perf_counter()
    outcome = run(machine)
    return RunResult(outcome, machine, time.perf_counter() - started)
