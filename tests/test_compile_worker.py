"""The compile worker: regions compiled in a second process while the guest
runs on, and installed only if their code is still what was compiled.

These tests drive the JIT by hand, so that the guest's code changes (or
its machine goes away) exactly while a batch is with the worker."""

from __future__ import annotations

import time

import pytest
from keystone import KS_ARCH_X86, KS_MODE_32, Ks

from dbt.backend.worker import CompileWorker
from dbt.cpu.state import Slot
from dbt.report import stats_report
from dbt.session import RunResult
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Ending

BASE = 0x100000
LOOP = BASE + 5  # after "mov ecx, imm32"
PROGRAM = """
    mov ecx, 1000
loop:
    add esi, 3
    dec ecx
    jnz loop
    hlt
"""


def _machine_with_a_cold_loop() -> Machine:
    """The loop has run (so its block is translated) but was never hot."""
    machine = Machine(MachineConfig(mode="native", jit="on", jit_compile="background", jit_threshold=10**9,
                                    serial_sink=lambda d: None, max_insns=100_000))
    encoding, _ = Ks(KS_ARCH_X86, KS_MODE_32).asm(PROGRAM, BASE)
    machine.memory.load_image(BASE, bytes(encoding))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    assert machine.slots[Slot.ESI] == 3000
    assert machine.jit is not None and not machine.jit.regions
    return machine


def _send_loop(machine: Machine):  # type: ignore[no-untyped-def]
    block = machine.cached_block(LOOP, machine.flags)
    assert block is not None
    jit = machine.jit
    assert jit is not None
    if block not in jit.queue:
        jit.hot(block)
    jit.compile_queue()
    waited_until = time.monotonic() + 60
    while jit.in_flight is None:  # the worker is still on another machine's batch
        assert jit.worker_busy and jit.queue == [block] and time.monotonic() < waited_until
        time.sleep(0.005)
        jit.compile_queue()
    assert id(block) in jit.compiling and not jit.queue
    return block


@pytest.mark.parametrize("changed", [False, True])
def test_a_region_is_installed_only_if_its_code_did_not_change_while_it_compiled(changed: bool) -> None:
    machine = _machine_with_a_cold_loop()
    jit = machine.jit
    assert jit is not None
    block = _send_loop(machine)
    if changed:  # the guest rewrites the loop's ADD immediate meanwhile (as a store to code does)
        machine.memory.load_image(LOOP + 2, bytes([5]))
        machine.cache.invalidate_range(LOOP + 2, 1)
        assert not block.valid
    jit.collect(wait=True)
    assert jit.in_flight is None and not jit.compiling
    assert (id(block) in jit.region_of_head) is not changed
    assert block.artifacts["tier"] == ("cold" if changed else "hot")
    assert len(jit.regions) == (0 if changed else 1)
    assert jit.worker_seconds > 0
    if not changed:  # the worker sent object code only: a dump rebuilds the region's module here
        region = jit.regions[0]
        assert region.source is not None
        assert region.llvm_ir.startswith("define") and f"@{region.name}(" in region.llvm_ir.splitlines()[0]
        assert f"{region.name}:" in region.assembly.splitlines()[0] and region.size > 0


def test_the_worker_s_code_is_released_when_its_region_is_invalidated() -> None:
    """Object code from the worker lives in an engine of its own, closed
    when the region's code is invalidated (MCJIT cannot remove an object
    file from a shared engine); nothing refers to the code any more."""
    machine = _machine_with_a_cold_loop()
    jit = machine.jit
    assert jit is not None
    block = _send_loop(machine)
    jit.collect(wait=True)
    (region,) = jit.regions
    assert region.engine is not None and region.engine is not jit.target.engine and not region.engine.closed
    machine.memory.load_image(LOOP + 2, bytes([5]))  # the ADD's immediate: 3 -> 5
    machine.cache.invalidate_range(LOOP + 2, 1)
    assert not region.live and region.engine.closed and not jit.regions
    assert id(block) not in jit.region_of_head and block.artifacts["tier"] == "cold"
    assert all(entry.function != region.address for entry in jit.table)


def test_code_compiled_in_the_monitor_is_released_too() -> None:
    """A module compiled in the monitor also has an engine of its own
    (removing a module from MCJIT gives back its IR but keeps its code)."""
    machine = Machine(MachineConfig(mode="native", jit="on", jit_compile="foreground", jit_threshold=10,
                                    serial_sink=lambda d: None, max_insns=100_000))
    encoding, _ = Ks(KS_ARCH_X86, KS_MODE_32).asm(PROGRAM.replace("1000", "30000"), BASE)
    machine.memory.load_image(BASE, bytes(encoding))
    machine.slots[Slot.EIP] = BASE
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED and machine.slots[Slot.ESI] == 90000
    jit = machine.jit
    assert jit is not None and jit.regions
    engines = {id(region.engine): region.engine for region in jit.regions}
    assert all(engine is not None and engine is not jit.target.engine and not engine.closed
               for engine in engines.values())
    machine.memory.load_image(LOOP + 2, bytes([5]))
    machine.cache.invalidate_range(LOOP + 2, 1)
    assert not jit.regions and all(engine.closed for engine in engines.values())


def test_a_batch_left_by_a_finished_run_does_not_reach_the_next_machine() -> None:
    """A run that ends with a batch at the worker forgets it; the next
    machine's batch waits until the worker is free (the guest running on
    meanwhile) and gets its own result."""
    first, second = _machine_with_a_cold_loop(), _machine_with_a_cold_loop()
    assert first.jit is not None and second.jit is not None
    first_block = _send_loop(first)
    first.jit.finish()
    assert first.jit.in_flight is None and first_block.artifacts["tier"] == "cold"
    second_block = second.cached_block(LOOP, second.flags)
    second.jit.hot(second_block)  # type: ignore[arg-type]
    second.jit.compile_queue()  # microseconds after the first batch went: the worker is on it
    assert second.jit.worker_busy and second.jit.in_flight is None
    assert second.jit.wake_at() == second.jit.next_poll > second.icount
    assert _send_loop(second) is second_block
    second.jit.collect(wait=True)
    assert id(second_block) in second.jit.region_of_head
    assert not first.jit.regions


def test_compiled_code_from_the_worker_runs_the_loop() -> None:
    """Installed from the worker's object code, the loop's region runs when
    the program is run again, with the same result."""
    machine = _machine_with_a_cold_loop()
    jit = machine.jit
    assert jit is not None
    _send_loop(machine)
    jit.collect(wait=True)
    machine.slots[Slot.EIP] = BASE
    machine.slots[Slot.ESI] = 0
    machine.outcome = None
    outcome = run(machine)
    assert outcome.ending is Ending.HALTED, outcome.message
    assert machine.slots[Slot.ESI] == 3000
    assert jit.native_insns > 2000


def test_without_a_worker_process_the_monitor_compiles(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """When no process can be had, regions compile in the monitor, and
    --stats says why."""
    def refuse(cls):  # type: ignore[no-untyped-def]
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(CompileWorker, "get", classmethod(refuse))
    machine = _machine_with_a_cold_loop()
    jit = machine.jit
    assert jit is not None and not jit.background
    block = machine.cached_block(LOOP, machine.flags)
    jit.hot(block)
    jit.compile_queue()
    assert jit.in_flight is None and id(block) in jit.region_of_head
    report = stats_report(RunResult(machine.outcome, machine, 1.0))  # type: ignore[arg-type]
    assert "compile worker     none (the compile worker could not start: [Errno 11]" in report
    assert "the monitor compiled instead" in report


def test_when_the_worker_dies_with_a_batch_the_monitor_compiles_it() -> None:
    """The monitor does not wait forever for a batch a dead worker had: the
    batch's heads queue again and the monitor compiles them itself from
    then on.  The next machine gets a new worker."""
    machine = _machine_with_a_cold_loop()
    jit = machine.jit
    assert jit is not None and jit.worker is not None
    block = _send_loop(machine)
    jit.worker.process.kill()
    jit.worker.process.join(10)
    jit.collect(wait=True)
    assert not jit.background and jit.in_flight is None and jit.queue == [block]
    assert jit.worker_error == "the compile worker stopped (exit status -9)"
    jit.compile_queue()
    assert id(block) in jit.region_of_head
    again = _machine_with_a_cold_loop()
    assert again.jit is not None and again.jit.background and again.jit.worker is not jit.worker
    block = _send_loop(again)
    again.jit.collect(wait=True)
    assert id(block) in again.jit.region_of_head
