"""The execution loop: run translated blocks, follow links, serve exits.

The inner loop is the hottest Python in dbt.  A block returns the index of
the exit it took; a linked exit continues straight into the successor, an
unlinked direct exit is looked up and then linked, an indirect exit (or a
monitor exit, which carries a reason) is looked up from EIP every time.

Guest time is the instruction count.  ``machine.deadline`` is the count at
which something is due.  Deadlines are *hard* (a device event, the budget, a
single-step trap, the end of an interrupt shadow: the guest sees when they
happen) or *soft* (the periodic wall-clock check, a batch of regions waiting
for the compiler: the guest cannot tell).  A block that could run past a
hard deadline is replaced by a shorter translation that stops exactly
there, so events happen at the same instruction in every run and every
tier; a soft deadline is served early, at the boundary of the block that
would cross it, so it costs no extra translation.
"""

from __future__ import annotations

import gc
import time
import traceback

from dbt.cache import TranslatedBlock
from dbt.cpu.state import TF, Slot
from dbt.ir import TRAP
from dbt.lift.env import EMULATE, PAGING, TranslationEnv
from dbt.vmm.faults import VECTOR_SHORT, BlockInterrupted, CodeWrite, GuestFault, MmioAccess
from dbt.vmm.jit import NATIVE_EXIT
from dbt.vmm.machine import Machine
from dbt.vmm.outcome import Ending, Outcome

# How often (in instructions) the loop looks at the wall clock for --timeout.
CHECK_INTERVAL_INSNS = 1_000_000

# Allocations between young-generation collections while a guest runs.
GC_THRESHOLD = 20_000

# Monitor exits whose reason asks for more than a look at pending events.
HALTS = frozenset({"hlt", "callout:halt"})
# After these the next instruction runs before any interrupt (STI, MOV SS).
SHADOWS = frozenset({"sti", "shadow", "callout:virtual-if-set", "callout:load-stack-segment"})
GP_VECTOR = 13


class Executor:
    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        config = machine.config
        self.budget_end = config.max_insns if config.max_insns is not None else 1 << 62
        self.timeout_at: float | None = None
        self.next_check = 0
        # EFLAGS.TF was set when the instruction at count step_armed_at began:
        # #DB once it has completed.
        self.step_armed = False
        self.step_armed_at = 0
        # Interrupts are held off until this count (after STI, MOV SS).
        self.shadow_until = 0
        # A trap handler is emulating an instruction: its faults are the guest's.
        self.emulating = False
        # The earliest hard deadline (machine.deadline may be an earlier soft one).
        self.hard_deadline = 0
        # Soft deadlines count as reached (served at a block boundary before them).
        self.early = False
        self.reboots_seen = 0
        if machine.jit is not None:
            machine.jit.executor = self  # it serves monitor exits from native code

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> Outcome:
        machine = self.machine
        machine.started_at = time.perf_counter()
        if machine.config.timeout_seconds is not None:
            self.timeout_at = machine.started_at + machine.config.timeout_seconds
        self.next_check = machine.icount + CHECK_INTERVAL_INSNS
        self._set_deadline()
        # Translation allocates many small objects that live as long as the
        # run: at the collector's default pace it would traverse them again
        # and again, so collections are rarer while the run lasts.  (Freezing
        # the heap would save a little more, but it moves uncollected garbage
        # of earlier runs in the same process -- whole machines with their
        # RAM -- where only a full collection finds it.)
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        try:
            self._loop()
        except Exception as error:  # a monitor bug: report it, never hide it
            machine.outcome = Outcome(
                Ending.MONITOR_ERROR, message=f"internal error in dbt: {error!r}",
                details={"traceback": traceback.format_exc()},
            )
        finally:
            gc.set_threshold(*thresholds)
        assert machine.outcome is not None
        if machine.jit is not None:
            machine.jit.fold_counters()
            machine.jit.finish()
        machine.tracer.finish(machine)
        return machine.outcome

    def _loop(self) -> None:
        machine = self.machine
        slots = machine.slots
        cache = machine.cache
        jit = machine.jit
        hot = jit.threshold if jit is not None else 0  # executions never equal 0
        block: TranslatedBlock | None = None
        while machine.outcome is None:
            if block is None:
                if machine.icount >= machine.deadline:
                    self._service()  # before looking up: it may move EIP
                    continue
                block = self._lookup(slots[Slot.EIP])
                if block is None:
                    continue
            icount = machine.icount
            if icount + block.insn_count > machine.deadline:
                if icount >= machine.deadline or icount + block.insn_count <= self.hard_deadline:
                    # Linked transitions do not store EIP: the block in hand is where we are.
                    slots[Slot.EIP] = block.pc
                    self.early = icount < machine.deadline  # only a soft deadline is near
                    self._service()
                    self.early = False
                    block = None
                    continue
                block = self._shortened(block, machine.deadline - icount)
            executions = block.executions + 1
            block.executions = executions
            if executions == hot:
                jit.hot(block)  # type: ignore[union-attr]
            try:
                exit_index = block.function()
            except BlockInterrupted as interruption:
                self._interrupted(block, interruption)
                block = None
                continue
            # (+=: a native entry has already counted what it ran)
            machine.icount += block.exit_insns[exit_index]
            successor = block.links[exit_index]
            if successor is not None:
                block = successor
                continue
            target = block.exit_targets[exit_index]
            if target is None:
                reason = block.exits[exit_index].reason
                if reason is not None:
                    self.monitor_exit(reason)
                block = None
                continue
            slots[Slot.EIP] = target
            successor = self._lookup(target)
            if successor is not None and successor.flags == block.flags and block.valid:
                if not block.flags & PAGING or (block.pc >> 12) == (target >> 12):
                    cache.link(block, exit_index, successor)
            block = successor

    def _lookup(self, pc: int) -> TranslatedBlock | None:
        """The block at ``pc``, or None after delivering a fetch fault."""
        machine = self.machine
        machine.slots[Slot.EIP] = pc
        machine.unchained += 1
        try:
            return machine.lookup(pc)
        except GuestFault as fault:
            self.exception(fault, pc, pc)
            return None

    def _shortened(self, block: TranslatedBlock, insns: int) -> TranslatedBlock:
        """A translation of ``block``'s code that stops after ``insns`` instructions."""
        machine = self.machine
        flags = TranslationEnv(block.flags).with_limit(insns).flags
        physical = block.physical
        found = machine.cache.find(block.pc, flags, lambda: physical)
        return found if found is not None else machine.translate(block.pc, flags)

    # -- events --------------------------------------------------------------------------
    def _set_deadline(self) -> None:
        machine = self.machine
        # A device event matters to the guest through an interrupt it takes
        # or a device it reads.  Device accesses catch the devices up first
        # (Machine._catch_up_devices), and with IF clear no interrupt can be
        # taken before code that sets IF asks for the monitor (INTR, in
        # ``_service``).  So an event cuts the guest's code at its exact
        # instruction only while IF is set; otherwise it is serviced at the
        # next monitor exit or deadline, and no block is cut short for it.
        event = machine.next_event()
        hard = self.budget_end
        if machine.interrupts_enabled():
            hard = min(hard, event)
            machine.deferred_event = 1 << 62
        else:
            machine.deferred_event = event
        # The shadow after STI or MOV SS matters only to an interrupt that
        # could be taken now; one raised later comes at a device event or a
        # monitor exit, which have deadlines of their own.
        if self.step_armed or (self.shadow_until > machine.icount and machine.interrupt_waiting()):
            hard = min(hard, machine.icount + 1)
        soft = self.next_check
        if machine.jit is not None:
            wake_at = machine.jit.wake_at()
            if wake_at is not None:
                soft = min(soft, wake_at)
        self.hard_deadline = hard
        machine.deadline = min(hard, soft)

    def service(self) -> None:
        """Service the instruction boundary at EIP now (the deadline is reached)."""
        self.early = False
        self._service()

    def _service(self) -> None:
        """Whatever is due at this instruction boundary: the budget, the
        wall clock, a single-step trap, device events, an interrupt."""
        machine = self.machine
        if machine.icount >= self.budget_end:
            machine.request_stop(Outcome(
                Ending.INSTRUCTION_BUDGET,
                message=f"the instruction budget ({self.budget_end:,} instructions) is used up"))
            return
        if machine.icount >= self.next_check or self.early or machine.reboots != self.reboots_seen:
            self.reboots_seen = machine.reboots  # reboots take time but retire nothing
            self.next_check = machine.icount + CHECK_INTERVAL_INSNS
            if self.timeout_at is not None and time.perf_counter() >= self.timeout_at:
                machine.request_stop(Outcome(
                    Ending.TIMEOUT,
                    message=f"the run took longer than {machine.config.timeout_seconds} s"))
                return
        slots = machine.slots
        if self.step_armed and machine.icount > self.step_armed_at:
            self.step_armed = False
            slots[Slot.DR6] |= 1 << 14  # BS: the #DB is a single-step trap
            eip = slots[Slot.EIP]
            machine.deliver_exception(GuestFault(1, None, TRAP), eip, eip)
        if machine.jit is not None and machine.jit.due(self.early):
            machine.jit.attend()
        machine.service_devices()
        if machine.outcome is None and machine.icount >= self.shadow_until:
            vector = machine.pending_interrupt()
            if vector is not None:
                eip = slots[Slot.EIP]
                machine.deliver_exception(GuestFault(vector, None, TRAP), eip, eip, external=True)
                machine.interrupts_delivered += 1
        if not self.step_armed and slots[Slot.EFLAGS] & TF:
            self.step_armed = True
            self.step_armed_at = machine.icount  # the #DB follows the next instruction
        elif not slots[Slot.EFLAGS] & TF:
            self.step_armed = False
        machine.env_changed()
        self._set_deadline()
        # Code that sets IF asks for the monitor only while INTR is up: an
        # interrupt is requested, or a device event passes before the
        # monitor next looks (with IF clear it is not a deadline).
        slots[Slot.INTR] = machine.platform.interrupt_pending(True) or machine.deferred_event < machine.deadline

    def monitor_exit(self, reason: str) -> None:
        """A block returned to the monitor on purpose: count it, and have the
        next instruction boundary serviced (IF, TF or a device may have changed)."""
        machine = self.machine
        if reason == NATIVE_EXIT:
            assert machine.jit is not None  # only compiled code returns it
            machine.jit.serve(self)
            return
        if not self.emulating:  # a trap handler's own exit is counted as its trap
            machine.exits_by_reason[reason] = machine.exits_by_reason.get(reason, 0) + 1
            machine.tracer.monitor_exit(machine, reason, machine.slots[Slot.EIP])
        if reason in HALTS:
            self._halt()
        elif reason in SHADOWS:
            self.shadow_until = machine.icount + 1
        machine.deadline = machine.icount  # the service recomputes the flags word

    def _halt(self) -> None:
        """HLT: sleep until an interrupt; virtual time jumps to the next event."""
        machine = self.machine
        if not machine.interrupts_enabled():
            machine.request_stop(Outcome(
                Ending.HALTED, message="the guest halted with interrupts disabled; nothing can wake it"))
            return
        if machine.interrupt_waiting():
            return  # the next service delivers it
        wake = machine.next_event()
        if wake >= 1 << 62:
            machine.request_stop(Outcome(
                Ending.HALTED, message="the guest halted and no device will ever interrupt it"))
            return
        if not machine.clock.virtual:
            self._sleep_until_event()
            return
        machine.icount = max(machine.icount, min(wake, self.budget_end))

    def _sleep_until_event(self) -> None:
        """HLT under --clock host: the host sleeps until the next device
        event is due (or the --timeout passes)."""
        machine = self.machine
        event_ns = machine.platform.next_event_ns()
        if event_ns is None:
            return
        delay = (event_ns - machine.clock.ns(machine.icount)) / 1e9
        if self.timeout_at is not None:
            delay = min(delay, self.timeout_at - time.perf_counter())
            self.next_check = machine.icount  # the next service looks at the clock
        if delay > 0:
            time.sleep(delay)

    # -- faults ----------------------------------------------------------------------------
    def _interrupted(self, block: TranslatedBlock, interruption: BlockInterrupted) -> None:
        info = block.artifacts["info"]
        index = interruption.insn_index or 0
        address = info.addresses[index]
        self.machine.icount += index
        self.interruption(interruption, address, (address + info.lengths[index]) & 0xFFFFFFFF)

    def interruption(self, interruption: BlockInterrupted, address: int, next_address: int) -> None:
        """The instruction at ``address`` was interrupted (the count is that
        before it): a store to code, a device access, or a guest exception."""
        machine = self.machine
        if isinstance(interruption, CodeWrite):
            machine.cache.invalidate_range(interruption.physical_address, interruption.size_bytes)
            self._run_alone(address, "allow_code_writes")
            return
        if isinstance(interruption, MmioAccess):
            machine.time_icount = machine.icount
            self._run_alone(address, "mmio_exact")
            machine.deadline = machine.icount  # as after port I/O: a device may want service
            return
        assert isinstance(interruption, GuestFault)
        if interruption.is_trap:
            machine.icount += 1
            machine.slots[Slot.EIP] = next_address
        else:
            machine.slots[Slot.EIP] = address
        self.exception(interruption, address, next_address)

    def _trap(self, fault: GuestFault, address: int) -> bool:
        """The monitor's look at an exception of a deprivileged guest: a #GP
        from its kernel at an instruction whose rule says ``emulate`` is
        emulated on the virtual CPU (True); anything else is the guest's and
        is reflected through its IDT (False).  Both are counted."""
        machine = self.machine
        emulation = self._emulation(address)
        # The instruction, decoded: the translation that emulated it before holds it.
        insn = (emulation.artifacts["instructions"][0] if emulation is not None
                else machine.instruction_record(address))
        rule = machine.rules.match(insn) if insn is not None else None
        mnemonic = insn.mnemonic if insn is not None else "?"
        emulate = (
            not self.emulating and fault.vector == GP_VECTOR and not fault.is_software and rule is not None
            and rule.trap == "emulate" and machine.slots[Slot.VCPL] == 0
        )
        if emulate and rule is not None:
            reason = f"emulate {rule.name}"
        elif fault.is_software:
            reason = f"reflect int {fault.vector:#x}"
        else:
            reason = f"reflect {VECTOR_SHORT.get(fault.vector, f'vector {fault.vector}')}"
        machine.traps[(reason, mnemonic)] = machine.traps.get((reason, mnemonic), 0) + 1
        machine.tracer.trap(machine, reason, mnemonic, address)
        if emulate:
            self.emulating = True
            try:
                self._run_alone(address, None, emulation)
            finally:
                self.emulating = False
        return emulate

    def _emulation(self, address: int) -> TranslatedBlock | None:
        """The translation that emulates the instruction at ``address``, if
        the monitor emulated it before (the translation cache keeps it as
        long as the code is unchanged and mapped alike)."""
        try:
            return self.machine.current_block(address, self._alone_flags(None))
        except GuestFault:
            return None

    def _alone_flags(self, permission: str | None) -> int:
        """The translation flags of an instruction run alone (see _run_alone)."""
        flags = self.machine.flags | EMULATE if permission is None else self.machine.flags
        return TranslationEnv(flags).with_limit(1).flags

    def _run_alone(self, address: int, permission: str | None, block: TranslatedBlock | None = None) -> None:
        """Re-execute the instruction at ``address`` by itself, with one MMU
        permission granted: ``allow_code_writes`` (its store changes code
        whose translations are gone) or ``mmio_exact`` (it touches a device
        at an exact instruction count); or, with None, as a trap handler's
        emulation (the translator's rules rewrite it), by ``block`` if the
        caller has its translation."""
        machine = self.machine
        machine.slots[Slot.EIP] = address
        if block is None:
            flags = self._alone_flags(permission)
            if permission == "allow_code_writes":
                # Not cached: its own bytes may be what it rewrites.
                block = machine.translate(address, flags, insert=False)
            else:
                block = machine.lookup(address, flags)
        if permission is not None:
            setattr(machine.mmu, permission, True)
        try:
            exit_index = block.function()
        except BlockInterrupted as interruption:
            if permission is not None:
                setattr(machine.mmu, permission, False)
            self._interrupted(block, interruption)
            return
        finally:
            if permission is not None:
                setattr(machine.mmu, permission, False)
        machine.icount += block.exit_insns[exit_index]
        target = block.exit_targets[exit_index]
        if target is not None:
            machine.slots[Slot.EIP] = target
        reason = block.exits[exit_index].reason
        if reason is not None:
            self.monitor_exit(reason)

    def exception(self, fault: GuestFault, address: int, next_address: int) -> None:
        machine = self.machine
        if machine.view.deprivileged and self._trap(fault, address):
            return
        machine.deliver_exception(fault, address, next_address)
        self.step_armed = False  # delivery cleared TF; the next service re-reads it
        self.machine.deadline = self.machine.icount


def run(machine: Machine) -> Outcome:
    return Executor(machine).run()
