"""The virtual machine: CPU state, memory, devices, the translation cache, and
the translator that fills it.  ``dbt.vmm.executor`` runs it."""

from __future__ import annotations

import gc
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from dbt.backend.python import Runtime, compile_block
from dbt.cache import TranslatedBlock, TranslationCache
from dbt.cpu.state import (
    CR0_ET,
    CR0_PE,
    EFLAGS_FIXED_ONE,
    SEGMENT_FIELDS,
    CpuState,
    Seg,
    Slot,
)
from dbt.decode import Decoder, Instruction
from dbt.devices.bus import Bus
from dbt.devices.debugexit import DebugExit
from dbt.devices.pc import PcPlatform
from dbt.devices.uart import Uart16550
from dbt.ir import Op
from dbt.lift.block import lift_block
from dbt.lift.context import LiftContext
from dbt.lift.env import ATTR_DB, ATTR_G, ATTR_P, ATTR_S, TranslationEnv, flags_word
from dbt.lift.shadow import OPERATIONS
from dbt.memory.mmu import SUPERVISOR, USER, Mmu
from dbt.memory.physical import PAGE_SHIFT, PhysicalMemory
from dbt.rules import RuleSet, default_rules
from dbt.vmm.clock import Clock
from dbt.vmm.faults import GuestFault
from dbt.vmm.helpers import bind_helpers
from dbt.vmm.modes import Mode, make_view
from dbt.vmm.monitor import Monitor
from dbt.vmm.outcome import Ending, Outcome
from dbt.vmm.system import SystemOps
from dbt.vmm.tracer import Tracer

GP = 13

# What the real-time clock reads at virtual time zero (with --clock virtual).
VIRTUAL_EPOCH = datetime(2024, 1, 1, 0, 0, 0)


@dataclass
class MachineConfig:
    memory_bytes: int = 64 << 20
    clock: str = "virtual"
    max_insns: int | None = None  # stop after this many instructions
    timeout_seconds: float | None = None  # stop after this much wall-clock time
    on_triple_fault: str = "stop"  # or "reset": reboot the kernel, as a PC resets
    mode: str = "bt"  # native, bt or trap (dbt.vmm.modes)
    deprivilege: str = "0/1/3"  # bt and trap: the guest kernel at real CPL 1, or 3 with "0/3"
    rules_directory: str | None = None  # translator rules (default: the repository's)
    tracer: Tracer | None = None  # an observer of translation and execution (dbt.trace)
    jit: str = "on"  # the hot tier: off, on (hot regions) or always (every block, for testing)
    jit_threshold: int | None = None  # executions before a block is compiled (default: dbt.vmm.jit)
    # Where hot regions compile: in a worker process while the guest runs on
    # (background), or in the monitor while the guest waits (foreground).
    jit_compile: str = "background"
    jit_cache: str | None = None  # a directory keeping compiled regions' object code across runs
    serial_sink: Callable[[bytes], None] | None = None  # default: stdout
    serial_input: bytes | BinaryIO | None = None
    debugcon_sink: Callable[[bytes], None] | None = None  # port 0xE9 (default: discarded)
    on_reset: str = "stop"  # the guest reset the PC (8042, port 0x92/0xCF9): "stop" or "reboot"
    cache_capacity_blocks: int = 65536


@dataclass
class BlockInfo:
    """Per-instruction facts of a block that the monitor needs after a fault."""

    addresses: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)


class Machine:
    # Every machine of this process.  A machine is a web of cycles (devices,
    # closures and the cache all point back at it), so the last reference to
    # it going away does not free its RAM: that waits for a full collection,
    # which a process with a large heap runs rarely.  A new machine therefore
    # collects first when an older one may be dead; a single run never does.
    existing: weakref.WeakSet[Machine] = weakref.WeakSet()

    def __init__(self, config: MachineConfig | None = None) -> None:
        if Machine.existing:
            gc.collect()
        Machine.existing.add(self)
        self.config = config or MachineConfig()
        self.state = CpuState()
        self.slots = memoryview(self.state).cast("B").cast("I")  # type: ignore[arg-type]
        self.bus = Bus(before_access=self._catch_up_devices)
        # The count of a device event the executor let pass unserviced (with
        # IF clear no interrupt can be taken); 1 << 62 when there is none.
        self.deferred_event = 1 << 62
        # At a fixed host address only for a code cache, which needs it.
        self.memory = PhysicalMemory(self.config.memory_bytes, self.bus,
                                     fixed_address=self.config.jit_cache is not None)
        self.mmu = Mmu(self.memory, self.slots)
        self.cache = TranslationCache(self.config.cache_capacity_blocks)
        self.decoder = Decoder()
        self.clock = Clock(self.config.clock)
        self.tracer = self.config.tracer or Tracer()
        self.mode = Mode.parse(self.config.mode)
        if self.config.deprivilege not in ("0/1/3", "0/3"):
            raise ValueError(f"unknown deprivileging {self.config.deprivilege!r}: 0/1/3 or 0/3")
        self.view = make_view(self.slots, self.mode, 1 if self.config.deprivilege == "0/1/3" else 3)
        self.system = SystemOps(self)
        self.monitor = Monitor(self)
        self.traps: dict[tuple[str, str], int] = {}  # (reason, instruction) -> count, trap mode
        self.outcome: Outcome | None = None

        self.icount = 0
        self.deadline = 0  # the executor services events when icount reaches it
        self.started_at = 0.0
        self.translate_seconds = 0.0
        self.compile_seconds = 0.0  # the hot tier's LLVM compilation
        self.lift_errors: list[str] = []
        self.exits_by_reason: dict[str, int] = {}
        self.unchained = 0  # block transitions that needed a look-up
        self._wire_cache()
        self.serial_output = bytearray()
        # The instruction count devices see as "now" (exact inside a block too).
        self.time_icount = 0
        self.reboot: Callable[[], None] | None = None  # set by whoever loaded the kernel
        self.interrupts_delivered = 0
        self.reboots = 0
        self.rebooted_at = 0  # icount at the last reboot
        self._attach_devices()
        self.helpers = bind_helpers(self)
        self.helpers.update(self.monitor.helpers())
        self._rules: RuleSet | None = None
        self.runtimes = tuple(
            Runtime(self.slots, self.mmu.loads[p], self.mmu.stores[p], self.helpers)
            for p in (SUPERVISOR, USER)
        )
        self.flags = 0
        self.jit = None
        # A tracer that watches every block needs each to run in Python.
        if self.config.jit != "off" and not self.tracer.wants_blocks:
            from dbt.vmm.jit import DEFAULT_THRESHOLD, Jit

            self.jit = Jit(self, self.config.jit, self.config.jit_threshold or DEFAULT_THRESHOLD,
                           background=self.config.jit_compile == "background", cache=self.config.jit_cache)
            self.cache.on_invalidated = self.jit.block_invalidated
            self.cache.on_forget_virtual = self.jit.forget_virtual
            self.cache.on_forget_pages = self.jit.forget_pages
        self.reset_cpu()

    # -- construction ---------------------------------------------------------------------
    def _wire_cache(self) -> None:
        memory, cache, mmu = self.memory, self.cache, self.mmu

        def protect(page: int) -> None:
            if page < memory.page_count:
                memory.code_pages[page] = 1
                mmu.protect_code_page(page)

        def release(page: int) -> None:
            if page < memory.page_count:
                memory.code_pages[page] = 0

        cache.on_page_protected = protect
        cache.on_page_released = release
        memory.code_write = cache.code_write
        memory.code_invalidate = cache.invalidate_range

    def _attach_devices(self) -> None:
        self.platform = self._new_platform()
        sink = self.config.serial_sink or self._stdout_sink
        self.uart = Uart16550(self._recording_sink(sink), raise_irq=lambda level: self.platform.irq(4, level))
        self.bus.attach(self.uart)
        self.bus.attach(DebugExit(self.request_stop))
        source = self.config.serial_input
        if isinstance(source, (bytes, bytearray)):
            self.uart.feed(bytes(source))
        elif source is not None:
            self.uart.attach_input(source)

    def _new_platform(self) -> PcPlatform:
        start = VIRTUAL_EPOCH if self.clock.virtual else datetime.now(UTC).replace(tzinfo=None)
        return PcPlatform(
            self.bus, self.now_ns,
            memory_read=self.memory.read, memory_write=self.memory.write,
            request_reset=self._reset_requested, set_a20=self._set_a20,
            debugcon_sink=self.config.debugcon_sink or (lambda data: None),
            wall_clock_start=start, memory_bytes=self.config.memory_bytes,
        )

    def reset_platform(self) -> None:
        """The motherboard's devices as after a reset (the UART keeps its
        output and input streams, as the terminal outlives the reset)."""
        kept = [d for d in self.bus.devices if d is self.uart or isinstance(d, DebugExit)]
        self.bus = self.memory.bus = Bus(before_access=self._catch_up_devices)
        self.platform = self._new_platform()
        for device in kept:
            self.bus.attach(device)
        self.slots[Slot.A20_MASK] = 0xFFFFFFFF

    def _recording_sink(self, sink: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def record(data: bytes) -> None:
            self.serial_output += data
            sink(data)

        return record

    @staticmethod
    def _stdout_sink(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        if b"\n" in data:
            sys.stdout.buffer.flush()

    def reset_cpu(self) -> None:
        """The state a Multiboot loader leaves: 32-bit protected mode, flat
        segments, paging and interrupts off."""
        slots = self.slots
        for index in range(len(slots)):
            slots[index] = 0
        slots[Slot.EFLAGS] = EFLAGS_FIXED_ONE
        slots[Slot.CR0] = CR0_PE | CR0_ET
        slots[Slot.A20_MASK] = 0xFFFFFFFF
        self.load_flat_segment(Seg.CS, 0x08, code=True)
        for segment in (Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS):
            self.load_flat_segment(segment, 0x10, code=False)
        self.env_changed()
        if self.view.deprivileged:
            self.monitor.enter()

    def load_flat_segment(self, segment: int, selector: int, code: bool) -> None:
        """Put a flat 4 GiB ring-0 descriptor in a segment register's cache."""
        kind = 0xB if code else 0x3  # execute/read or read/write, accessed
        attr = kind | ATTR_S | ATTR_P | ATTR_DB | ATTR_G
        self.set_segment_cache(segment, selector, 0, 0xFFFFFFFF, attr)

    def set_segment_cache(self, segment: int, selector: int, base: int, limit: int, attr: int) -> None:
        """Fill a hidden descriptor cache, with the offset windows limit checks use."""
        slots = self.slots
        first = Slot.ES_SEL + segment * len(SEGMENT_FIELDS)
        readable, writable = segment_rights(attr, selector, segment)
        low, high = offset_window(attr, limit)
        empty = (1, 0)
        rlo, rhi = (low, high) if readable else empty
        wlo, whi = (low, high) if writable else empty
        for offset, value in enumerate((selector, base, limit, attr, rlo, rhi, wlo, whi)):
            slots[first + offset] = value & 0xFFFFFFFF

    # -- platform wiring -------------------------------------------------------------------
    def now_ns(self) -> int:
        return self.clock.ns(self.time_icount)

    @property
    def apic_base(self) -> int:
        return self.platform.apic_base_msr

    @apic_base.setter
    def apic_base(self, value: int) -> None:
        self.platform.apic_base_msr = value

    def _set_a20(self, enabled: bool) -> None:
        self.slots[Slot.A20_MASK] = 0xFFFFFFFF if enabled else 0xFFEFFFFF
        self.mmu.flush()
        self.cache.forget_virtual()
        self.env_changed()

    def _reset_requested(self) -> None:
        if self.config.on_reset == "reboot" and self.reboot is not None:
            self.reboot_or_stop(Outcome(Ending.SHUTDOWN, message="the guest reset the machine"))
            return
        self.request_stop(Outcome(Ending.SHUTDOWN, message="the guest reset the machine"))

    def reboot_or_stop(self, ending: Outcome) -> None:
        """Reset the PC and boot the kernel again, unless the guest got here
        again without retiring an instruction since the last reset: that
        loop would never end, so the run ends with ``ending``."""
        assert self.reboot is not None
        if self.reboots and self.icount == self.rebooted_at:
            ending.message += ("; the guest did not retire one instruction since the last reset, "
                               "so the run stops rather than reset forever")
            self.request_stop(ending)
            return
        self.reboot()
        self.rebooted_at = self.icount
        self.deadline = self.icount  # have the executor look at once

    # -- control ---------------------------------------------------------------------------
    def request_stop(self, outcome: Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
        self.deadline = self.icount  # have the executor look at once

    def env_changed(self) -> None:
        """Recompute the translation flags word after a change of CPU mode."""
        self.flags = flags_word(self.slots, self.mode, self.slots[Slot.VCPL])

    def interrupts_enabled(self) -> bool:
        """EFLAGS.IF as the guest set it (the virtual IF when deprivileged)."""
        return self.view.interrupts_enabled()

    # -- devices and exceptions ----------------------------------------------------------
    def next_event(self) -> int:
        """The instruction count at which a device next needs service."""
        event_ns = self.platform.next_event_ns()
        if event_ns is None:
            return 1 << 62
        now_ns = self.clock.ns(self.icount)
        return self.icount + (self.clock.insns_for(event_ns - now_ns) if event_ns > now_ns else 0)

    def _catch_up_devices(self) -> None:
        """Before the guest touches a device: if an event the executor let
        pass is due by now, the devices perform it first, so the access sees
        them as if it had been serviced at its time."""
        if self.time_icount >= self.deferred_event:
            self.platform.advance(self.clock.ns(self.time_icount))

    def service_devices(self) -> None:
        """Let devices whose time has come act (raise interrupts, etc.)."""
        self.time_icount = self.icount
        self.platform.advance(self.clock.ns(self.icount))

    def port_in(self, port: int, size_bytes: int, insn_index: int) -> int:
        """IN from the device bus by the instruction ``insn_index`` into the
        current block: the value, with bit 32 set if the monitor must look
        before the next instruction (see ``_device_news``)."""
        self.time_icount = self.icount + insn_index
        before = self.deadline, self.flags
        value = self.bus.io_read(port & 0xFFFF, size_bytes)
        return value | self._device_news(before) << 32

    def port_out(self, port: int, value: int, size_bytes: int, insn_index: int) -> int:
        """OUT to the device bus: 1 if the monitor must look before the next instruction."""
        self.time_icount = self.icount + insn_index
        before = self.deadline, self.flags
        self.bus.io_write(port & 0xFFFF, size_bytes, value)
        return self._device_news(before)

    def _device_news(self, before: tuple[int, int]) -> int:
        """1 if a device access needs the monitor before the guest goes on: it
        ended or reset the run (the deadline moved), changed the translation
        flags (the A20 gate), left an interrupt requested, or brought the
        next device event before the deadline; else 0 and the block goes on."""
        if (self.deadline, self.flags) != before or self.outcome is not None:
            return 1
        if self.platform.interrupt_pending(True):
            return 1
        return int(self.next_event() < self.deadline)

    def interrupt_waiting(self) -> bool:
        """Whether a maskable interrupt could be taken now (nothing acknowledged)."""
        return self.platform.interrupt_pending(self.view.interrupts_enabled())

    def pending_interrupt(self) -> int | None:
        """The vector of a maskable interrupt to take now (acknowledged), if any."""
        if not self.platform.interrupt_pending(self.view.interrupts_enabled()):
            return None
        return self.platform.acknowledge_interrupt()

    def deliver_exception(self, fault: GuestFault, address: int, next_address: int,
                          external: bool = False) -> None:
        """Deliver an exception the instruction at ``address`` raised (or an
        external interrupt) through the guest's IDT, escalating to #DF and
        triple fault as the SDM's exception classes say."""
        from dbt.vmm.interrupts import deliver

        deliver(self, fault, address, next_address, external)

    def stop_unsupported(self, what: str) -> None:
        eip = self.slots[Slot.EIP]
        self.request_stop(Outcome(
            Ending.UNSUPPORTED, message=f"{what}: dbt does not implement this",
            details={"instruction": self.instruction_at(eip)},
        ))

    # -- translation -----------------------------------------------------------------------
    def privilege(self, flags: int) -> int:
        """The paging privilege of code translated under ``flags``: user for
        the guest's ring 3.  Its kernel is supervisor even when deprivileged
        to CPL 3 (the 0/3 model), as the monitor's shadow page tables make it."""
        return USER if TranslationEnv(flags).vcpl == 3 else SUPERVISOR

    def fetcher(self, env: TranslationEnv) -> Callable[[int], tuple[bytes, Exception | None]]:
        slots = self.slots
        cs_base, cs_limit = slots[Slot.CS_BASE], slots[Slot.CS_LIMIT]
        privilege = self.privilege(env.flags)
        mmu = self.mmu

        def fetch(eip: int) -> tuple[bytes, Exception | None]:
            count = 15
            limit_fault = None
            if not env.flat:
                if eip > cs_limit:
                    return b"", GuestFault(GP, 0)
                if cs_limit - eip < 14:
                    count = cs_limit - eip + 1
                    limit_fault = GuestFault(GP, 0)
            data, fault = mmu.fetch((cs_base + eip) & 0xFFFFFFFF, count, privilege)
            return data, fault or limit_fault

        return fetch

    def translate(self, pc: int, flags: int, insert: bool = True) -> TranslatedBlock:
        """Translate the block at EIP ``pc`` (raises a fault if it cannot be fetched)."""
        started = time.perf_counter()
        env = TranslationEnv(flags)
        privilege = self.privilege(env.flags)
        cs_base = self.slots[Slot.CS_BASE]
        first_linear = (cs_base + pc) & 0xFFFFFFFF
        lifted = lift_block(pc, env, self.fetcher(env), self.decoder, self.rewriter(env),
                            lambda: self.mmu.code_physical(first_linear, privilege) >> PAGE_SHIFT)
        self.lift_errors.extend(lifted.errors)
        comments = {i: insn.text for i, insn in enumerate(lifted.instructions)}
        compiled = compile_block(lifted.ir, self.runtimes[privilege], comments)
        physical = self.mmu.code_physical(first_linear, privilege)
        size = max(lifted.ir.size_bytes, 1)
        first_part = min(size, 4096 - (first_linear & 0xFFF))
        ranges = [(physical, physical + first_part)]
        if first_part < size:
            second = self.mmu.code_physical((first_linear + first_part) & 0xFFFFFFFF, privilege)
            ranges.append((second, second + size - first_part))
        block = TranslatedBlock(pc, physical, flags, compiled.function, compiled.exits,
                                lifted.ir.insn_count, ranges)
        info = BlockInfo()
        for inst in lifted.ir.insts:
            if inst.op is Op.INSN:
                info.addresses.append(inst.aux[0])
                info.lengths.append(inst.aux[2])
        block.artifacts.update(
            ir=lifted.ir, instructions=lifted.instructions, python=compiled.source, info=info,
            rules=lifted.rules_fired,
        )
        if self.tracer.wants_blocks:
            block.function = self._observed(block, block.function)
        if insert:
            self.cache.insert(block)
            self.tracer.translated(self, block)
        self.translate_seconds += time.perf_counter() - started
        return block

    def _observed(self, block: TranslatedBlock, function: Callable[[], int]) -> Callable[[], int]:
        tracer = self.tracer

        def observed() -> int:
            tracer.block_entered(self, block)
            return function()

        return observed

    @property
    def rules(self) -> RuleSet:
        if self._rules is None:
            self._rules = default_rules(self.config.rules_directory)
        return self._rules

    def rewriter(self, env: TranslationEnv) -> Callable[[LiftContext, Instruction], bool] | None:
        """The binary translator's rewriter for guest kernel code (and for
        the trap handlers' emulation); None: translate as the hardware runs it."""
        if not (env.mode == Mode.BT and env.vcpl == 0) and not env.emulate:
            return None
        rules = self.rules

        def rewrite(ctx: LiftContext, insn: Instruction) -> bool:
            rule = rules.match(insn)
            if rule is None:
                return False
            ctx.rules_fired.append((insn.address, rule.name, rule.bt))
            ctx.privilege_level = env.vcpl
            try:
                return OPERATIONS[rule.bt](ctx, insn)
            finally:
                ctx.privilege_level = env.cpl

        return rewrite

    def cached_block(self, pc: int, flags: int) -> TranslatedBlock | None:
        """The cached translation of the code at ``pc`` under ``flags``, if
        any.  Raises GuestFault if the code's page is not mapped."""
        privilege = self.privilege(flags)
        cs_base = self.slots[Slot.CS_BASE]
        return self.cache.find(pc, flags, lambda: self.mmu.code_physical((cs_base + pc) & 0xFFFFFFFF, privilege))

    def current_block(self, pc: int, flags: int) -> TranslatedBlock | None:
        """The cached translation of the code at ``pc`` under ``flags`` if
        its bytes are still what it was translated from: one spanning two
        pages is dropped when the second page now maps elsewhere.  Raises
        GuestFault if the code's page is not mapped."""
        block = self.cached_block(pc, flags)
        if block is not None and len(block.ranges) > 1 and not self._second_page_current(block, self.privilege(flags)):
            self.cache.invalidate(block)
            return None
        return block

    def lookup(self, pc: int, flags: int | None = None) -> TranslatedBlock:
        """The block at ``pc`` under ``flags`` (default: the current ones),
        translated if need be.  Raises GuestFault if its code cannot be
        fetched."""
        flags = self.flags if flags is None else flags
        block = self.current_block(pc, flags)
        return block if block is not None else self.translate(pc, flags)

    def _second_page_current(self, block: TranslatedBlock, privilege: int) -> bool:
        cs_base = self.slots[Slot.CS_BASE]
        first_linear = (cs_base + block.pc) & 0xFFFFFFFF
        second_linear = ((first_linear >> PAGE_SHIFT) + 1) << PAGE_SHIFT
        try:
            physical = self.mmu.code_physical(second_linear & 0xFFFFFFFF, privilege)
        except GuestFault:
            return False
        return physical == block.ranges[1][0]

    # -- reporting -------------------------------------------------------------------------
    def native_symbols(self) -> list[tuple[int, int, str]]:
        """(host address, size in bytes, name) of every piece of compiled
        guest code, for perf maps; empty while the hot tier compiled nothing."""
        return self.jit.native_symbols() if self.jit is not None else []

    def registers(self) -> dict[str, int]:
        slots = self.slots
        names = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip"]
        result = {name: slots[index] for index, name in enumerate(names)}
        result["eflags"] = self.eflags()
        for segment in ("cs", "ss", "ds", "es", "fs", "gs"):
            result[segment] = slots[Slot[f"{segment.upper()}_SEL"]]
        for control in ("cr0", "cr2", "cr3", "cr4"):
            result[control] = slots[Slot[control.upper()]]
        return result

    def eflags(self) -> int:
        """EFLAGS with the lazy arithmetic flags computed."""
        from dbt.cpu.state import ARITH_FLAGS, CcOp
        from dbt.vmm.helpers import flags_table

        slots = self.slots
        cc_op = slots[Slot.CC_OP]
        value = slots[Slot.EFLAGS]
        if cc_op == CcOp.EFLAGS:
            return value
        arith = flags_table()[cc_op](slots[Slot.CC_DST], slots[Slot.CC_SRC], slots[Slot.CC_SRC2])
        return (value & ~ARITH_FLAGS & 0xFFFFFFFF) | arith

    def set_eflags(self, value: int) -> None:
        from dbt.cpu.state import CcOp

        self.slots[Slot.EFLAGS] = (value | EFLAGS_FIXED_ONE) & 0xFFFFFFFF
        self.slots[Slot.CC_OP] = CcOp.EFLAGS

    def instruction_record(self, eip: int) -> Instruction | None:
        """The decoded instruction at ``eip`` in the current mode, or None."""
        try:
            env = TranslationEnv(self.flags)
            code, _ = self.fetcher(env)(eip)
            return self.decoder.decode(code, eip, env.code_bits) if code else None
        except GuestFault:
            return None

    def instruction_at(self, eip: int) -> str:
        """The instruction at ``eip`` as text, for reports (never raises)."""
        try:
            env = TranslationEnv(self.flags)
            code, _ = self.fetcher(env)(eip)
            insn = self.decoder.decode(code, eip, env.code_bits) if code else None
        except Exception:  # a report must not fail because memory is odd
            return "(cannot read the instruction)"
        if insn is None:
            return f"(invalid: {code[:8].hex(' ')})" if code else "(no code there)"
        return f"{insn.text}  [{insn.raw.hex(' ')}]"


def segment_rights(attr: int, selector: int, segment: int) -> tuple[bool, bool]:
    """(readable, writable) through a segment register with this descriptor."""
    if not attr & ATTR_P or not attr & ATTR_S:
        return False, False
    kind = attr & 0xF
    if kind & 0x8:  # code: readable if R, never writable
        return bool(kind & 0x2), False
    return True, bool(kind & 0x2)


def offset_window(attr: int, limit: int) -> tuple[int, int]:
    """The valid offsets [low, high] for a data or code segment."""
    kind = attr & 0xF
    expand_down = not kind & 0x8 and kind & 0x4
    if expand_down:
        top = 0xFFFFFFFF if attr & ATTR_DB else 0xFFFF
        if limit >= top:
            return 1, 0  # no offset lies above the limit
        return limit + 1, top
    return 0, limit
