"""The hot tier's manager: which blocks get compiled, when, and how control
moves between Python and native code.

Blocks count their executions; a block that reaches the threshold becomes
the head of a region: it and the hot blocks its direct exits lead to
(within one page when paging is on), compiled together into one native
function.  Regions wait in a queue and are compiled in batches, several per
LLVM module.  A compiled head's Python function is replaced by an entry
into the native dispatcher, which runs region after region until the
monitor has work; what the native code returns is then served here.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbt.backend.codecache import CodeCache
from dbt.backend.llvm import (
    BUDGET,
    CALLBACK_FAILED,
    COMPILE_TIMES,
    CONTINUE,
    FAULT,
    INTERRUPTED,
    MONITOR,
    NEED_LOOKUP,
    NO_ERROR_CODE,
    SERVE,
    SERVED,
    TABLE_ENTRIES,
    Bindings,
    CompiledRegion,
    NativeTarget,
    RegionBlock,
    TableEntry,
    compile_module,
    load_object,
    region_names,
    return_site,
    table_index,
)
from dbt.backend.python import Exit
from dbt.backend.worker import CompileWorker, ModuleJob, WorkerStopped
from dbt.cpu.state import Slot
from dbt.ir import Op
from dbt.lift.env import A20_OFF, PAGING
from dbt.memory.mmu import USER
from dbt.vmm.faults import BlockInterrupted, GuestFault

if TYPE_CHECKING:
    from dbt.cache import TranslatedBlock
    from dbt.vmm.machine import Machine

SLOW_LOAD = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint32)
SLOW_STORE = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32)
HELPER = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint64,
                          ctypes.c_uint64, ctypes.c_uint64)

# Executions before a block is compiled.  Measured on the compute guest
# (make bench): lower thresholds compile lukewarm code (compile time grows
# faster than the run shrinks), higher ones leave hot loops longer in Python.
DEFAULT_THRESHOLD = 200
BATCH_REGIONS = 8  # compile once this many regions wait...
BATCH_DELAY_INSNS = 20_000  # ...or once the oldest waited this many instructions
# While the compile worker has a batch, how often the monitor looks for the
# result (a look from native code costs a return to the dispatcher's callback).
POLL_INSNS = 20_000
# With --jit always every block is compiled on its first use, before it runs.
BATCH_ALWAYS = 1
BATCH_DELAY_ALWAYS_INSNS = 0
# Callbacks in a row with no instruction retired before the dispatcher hands
# control back to Python's loop anyway (a bound on any spin without progress).
MAX_IDLE_SERVES = 64
MAX_REGION_BLOCKS = 48
COUNTERS = 1 << 16  # execution counters for compiled blocks
NATIVE_EXIT = "native"  # the exit reason a head block's native entry returns


@dataclass
class ModuleBatch:
    """One module of a batch the compile worker has: its regions, as blocks
    and as what the compiler reads of them, and their function names."""

    bindings: Bindings
    identity: bool
    regions: list[tuple[TranslatedBlock, list[TranslatedBlock]]]  # (head, members)
    blocks: list[list[RegionBlock]]
    names: list[str]

    def job(self, cache: CodeCache | None) -> ModuleJob:
        return ModuleJob(self.bindings, self.blocks, self.names, self.identity,
                         str(cache.directory) if cache is not None else None)


class Jit:
    def __init__(self, machine: Machine, policy: str = "on", threshold: int = DEFAULT_THRESHOLD,
                 background: bool = True, cache: str | None = None) -> None:
        if policy not in ("on", "always"):
            raise ValueError(f"unknown JIT policy {policy!r}")
        self.machine = machine
        self.policy = policy
        # Object code kept across runs (the worker's look-ups are added to its counts).
        self.code_cache = CodeCache(cache) if cache is not None else None
        # Compile in the worker process while the guest runs on (``always``
        # compiles a block before its first run, so it cannot wait).
        self.background = background and policy == "on"
        self.worker_error: str | None = None  # why regions compile in the monitor after all
        self.worker: CompileWorker | None = None  # the one that has (or last had) our batch
        if self.background:
            try:
                self.worker = CompileWorker.get()  # started now, it is ready by the first batch
            except OSError as error:  # no process to be had (a limit on processes, memory)
                self.background = False
                self.worker_error = f"the compile worker could not start: {error}"
        self.threshold = 1 if policy == "always" else threshold
        self.target = NativeTarget.get()
        self.slots = machine.slots
        self.state_address = ctypes.addressof(machine.state)
        self.table = (TableEntry * TABLE_ENTRIES)()
        # The table indices in use, with the EIP and flags their entries hold.
        self.installed: dict[int, tuple[int, int]] = {}
        self.installed_pages: dict[int, set[int]] = {}  # EIP page -> table indices published there
        self.native_tlb = machine.mmu.enable_native_tlb()
        self.pending: BaseException | None = None  # raised inside a callback
        self._callbacks = (SLOW_LOAD(self._slow_load), SLOW_STORE(self._slow_store), HELPER(self._helper))
        self._serve_callback = SERVE(self._serve_from_native)
        self.serve_address = ctypes.cast(self._serve_callback, ctypes.c_void_p).value
        self.executor: Any = None  # set by the executor that runs the machine
        self.running = False  # native code is on the stack
        self.doomed: list[Callable[[], object]] = []  # releases of native code, for once it is not
        self.helper_list = sorted(machine.helpers)
        self.helper_functions = [machine.helpers[name] for name in self.helper_list]
        self.helper_arity: dict[int, int] = {}
        self.reasons: dict[str, int] = {}
        self.reason_names: list[str] = []
        self.queue: list[TranslatedBlock] = []
        self.queued_at = 0
        # The batch the worker is compiling: its job number and, per module,
        # the (head, members) of each region and their names.
        self.in_flight: tuple[int, list[ModuleBatch]] | None = None
        self.compiling: set[int] = set()  # ids of the blocks in that batch
        self.next_poll = 0
        self.worker_busy = False  # with another machine's batch: ours waits
        self.worker_seconds = 0.0  # what the worker spent on this machine's batches
        # Counts the times EIP-to-code mappings changed (CR3 loads, INVLPG...).
        self.generation = 0
        # Set when the table lost entries since native code last ran or was
        # served (a CR3 load, INVLPG): EIP's entry may be gone.
        self.table_emptied = False
        self.regions: list[CompiledRegion] = []
        self.region_of_head: dict[int, CompiledRegion] = {}  # id(head block) -> region
        self.compile_seconds = 0.0
        self.native_entries = 0
        self.native_transitions = 0
        self.native_lookups_missed = 0
        self.native_republished = 0  # table misses of compiled code, published from the dispatcher
        self.native_insns = 0  # instructions retired in compiled code
        self.native_block_runs = 0  # compiled blocks begun in native code (folded from the counters)
        self.native_seconds = 0.0
        self.native_served = 0  # monitor exits served from the dispatcher, which then went on
        self.idle_serves = 0  # callbacks in a row with nothing retired between them
        self.last_code = 0
        # Executions of compiled blocks in native code, one counter each,
        # added to the blocks' own counts by ``fold_counters``.
        self.counters = machine.memory.table(ctypes.c_uint64, COUNTERS)
        self.counted: list[TranslatedBlock | None] = []
        self.entry_icount = 0
        self.entry_budget = 0

    # -- bindings ------------------------------------------------------------------------
    def bindings(self, privilege: int) -> Bindings:
        read_tlb, write_tlb = self.native_tlb[privilege]
        slow_load, slow_store, helper = self._callbacks
        return Bindings(
            ram=self.machine.memory.host_address,
            read_tlb=ctypes.addressof(read_tlb), write_tlb=ctypes.addressof(write_tlb),
            slow_load=ctypes.cast(slow_load, ctypes.c_void_p).value or 0,
            slow_store=ctypes.cast(slow_store, ctypes.c_void_p).value or 0,
            helper=ctypes.cast(helper, ctypes.c_void_p).value or 0,
            helper_ids={name: index for index, name in enumerate(self.helper_list)},
            reasons=self.reasons,
            ram_size=self.machine.memory.size_bytes,
            counters=ctypes.addressof(self.counters),
            walk_read=self.target.walk_read,
            trampolines=self.target.trampolines,
            fill_log=ctypes.addressof(self.machine.mmu.fill_log),
            user=privilege == USER,
            code_pages=self.machine.memory.code_pages_address,
        )

    def _reason_id(self, reason: str) -> int:
        if reason not in self.reasons:
            self.reasons[reason] = len(self.reason_names)
            self.reason_names.append(reason)
        return self.reasons[reason]

    # -- callbacks from native code ------------------------------------------------------------
    def _sync_icount(self) -> None:
        """The count at the start of the current block (helpers add their index)."""
        self.machine.icount = self.entry_icount + self.entry_budget - self.slots[Slot.BUDGET]

    def _slow_load(self, address: int, size: int) -> int:
        try:
            self._sync_icount()
            return self.machine.mmu.compiled_load_miss(address, size, self.machine.mmu.privilege())
        except BaseException as error:  # noqa: BLE001 (handed back to Python's side below)
            self.pending = error
            return -1

    def _slow_store(self, address: int, size: int, value: int) -> int:
        try:
            self._sync_icount()
            self.machine.mmu.slow_store(address, size, value, self.machine.mmu.privilege())
            return 0
        except BaseException as error:  # noqa: BLE001
            self.pending = error
            return 1

    def _helper(self, number: int, a: int, b: int, c: int, d: int) -> int:
        try:
            self._sync_icount()
            arity = self.helper_arity[number]
            function = self.helper_functions[number]
            if arity == 4:
                result = function(a, b, c, d)
            else:
                result = function(*(a, b, c, d)[:arity])
            return (result or 0) & 0xFFFFFFFFFFFFFFFF
        except BaseException as error:  # noqa: BLE001
            self.pending = error
            self.slots[Slot.EXIT_CODE] = INTERRUPTED
            return 0

    # -- hotness and compilation -----------------------------------------------------------------
    def hot(self, block: TranslatedBlock) -> None:
        """``block`` reached the threshold: queue it as a region head."""
        if id(block) in self.region_of_head or block.artifacts.get("tier") == "queued":
            return
        block.artifacts["tier"] = "queued"
        block.artifacts["queued_generation"] = self.generation
        if not self.queue:
            self.queued_at = self.machine.icount
        self.queue.append(block)
        if len(self.queue) >= self.batch_size:
            self.compile_queue()
        elif len(self.queue) == 1:
            # Have the executor compile the batch soon even if it stays small.
            self.machine.deadline = min(self.machine.deadline, self.queued_at + self.batch_delay)

    @property
    def batch_size(self) -> int:
        return BATCH_ALWAYS if self.policy == "always" else BATCH_REGIONS

    @property
    def batch_delay(self) -> int:
        if self.policy == "always":
            return BATCH_DELAY_ALWAYS_INSNS
        # Compiling beside the guest costs it nothing: a batch goes as soon
        # as the worker is free (and grows while it is busy).
        return 0 if self.background else BATCH_DELAY_INSNS

    def due(self, early: bool = False) -> bool:
        """There is compile work for the monitor: a batch whose delay is over
        (``early``: nearly over), or the worker's result to look for."""
        wake_at = self.wake_at()
        return wake_at is not None and (early or self.machine.icount >= wake_at)

    def wake_at(self) -> int | None:
        """The instruction count at which the monitor should next call ``attend``."""
        if self.in_flight is not None or self.worker_busy:
            return self.next_poll
        if self.queue:
            return self.queued_at + self.batch_delay
        return None

    def attend(self) -> None:
        """Install the worker's result if it is in, and start the next batch."""
        if self.in_flight is not None:
            self.collect()
            if self.in_flight is not None:
                self.next_poll = self.machine.icount + POLL_INSNS
                return
        if self.queue:
            self.compile_queue()

    def compile_queue(self) -> None:
        if self.in_flight is not None:
            return  # one batch at a time: the queue goes when the worker answers
        self.worker_busy = False
        if self.background and self.queue and self._worker().busy():
            # Still on a batch of a run that has ended: look again later.
            self.worker_busy = True
            self.next_poll = self.machine.icount + POLL_INSNS
            return
        heads = [block for block in self.queue if block.valid]
        self.queue = []
        if not heads:
            return
        started = time.perf_counter()
        by_privilege: dict[tuple[int, bool], list[tuple[TranslatedBlock, list[TranslatedBlock]]]] = {}
        taken: set[int] = set()  # blocks placed in a region of this batch
        for head in heads:
            if id(head) in taken or id(head) in self.region_of_head or id(head) in self.compiling:
                continue  # already inside a region: reachable natively
            members = self._region(head, taken)
            taken.update(id(block) for block in members)
            for member in members:
                self._note_calls_and_reasons(member)
            identity = not head.flags & (PAGING | A20_OFF)
            key = (self.machine.privilege(head.flags), identity)
            by_privilege.setdefault(key, []).append((head, members))
        if self.background:
            if by_privilege:
                self._submit(by_privilege)
        else:
            for (privilege, identity), regions in by_privilege.items():
                compiled = compile_module(
                    self.target, self.bindings(privilege),
                    [[self._region_block(block) for block in members] for _, members in regions], identity,
                    self.code_cache)
                for (head, members), region in zip(regions, compiled, strict=True):
                    self._install(head, members, region)
        self._count_compile(time.perf_counter() - started)

    def _worker(self) -> CompileWorker:
        """The compile worker (a new one if the last stopped between batches)."""
        self.worker = CompileWorker.get()
        return self.worker

    def _count_compile(self, seconds: float) -> None:
        self.compile_seconds += seconds
        self.machine.compile_seconds += seconds

    def _submit(self, by_privilege: dict[tuple[int, bool], list[tuple[TranslatedBlock, list[TranslatedBlock]]]]
                ) -> None:
        """Hand the batch to the compile worker; the guest goes on meanwhile."""
        modules = []
        for (privilege, identity), regions in by_privilege.items():
            blocks = [[self._region_block(block) for block in members] for _, members in regions]
            modules.append(ModuleBatch(self.bindings(privilege), identity, regions, blocks, region_names(blocks)))
        number = self._worker().submit(self, [module.job(self.code_cache) for module in modules])
        self.in_flight = (number, modules)
        self.compiling = {id(block) for module in modules for _, members in module.regions for block in members}
        self.next_poll = self.machine.icount + POLL_INSNS

    def collect(self, wait: bool = False) -> None:
        """Link the worker's object code and install the regions whose
        blocks are all still valid (the guest ran on while they compiled)."""
        assert self.in_flight is not None
        number, modules = self.in_flight
        assert self.worker is not None
        try:
            result = self.worker.take(number, wait)
        except WorkerStopped as error:
            # The batch is lost with the process: its heads queue again, and
            # from now on the monitor compiles them itself.
            self.background = False
            self.worker_error = str(error)
            self.queue += [head for head in self._abandon_batch() if head.valid]
            self.queued_at = self.machine.icount
            return
        if result is None:
            return
        started = time.perf_counter()
        self.in_flight = None
        self.compiling = set()
        if result.codes is None:
            raise RuntimeError(f"the compile worker failed: {result.error}")
        for name, seconds in result.seconds.items():
            COMPILE_TIMES[name] += seconds
            self.worker_seconds += seconds
        if self.code_cache is not None:
            self.code_cache.hits += result.cache_hits
            self.code_cache.misses += result.cache_misses
        for module, code in zip(modules, result.codes, strict=True):
            compiled = load_object(self.target, code, module.blocks, module.names, module.bindings, module.identity)
            for (head, members), region in zip(module.regions, compiled, strict=True):
                if all(block.valid for block in members) and id(head) not in self.region_of_head:
                    self._install(head, members, region)
                else:
                    region.live = False  # a block changed while it compiled: forgotten
                    head.artifacts["tier"] = "cold"  # it may become hot again
        self._count_compile(time.perf_counter() - started)

    def finish(self) -> None:
        """The run is over: a batch still compiling is not wanted."""
        if self.in_flight is not None:
            assert self.worker is not None
            self.worker.forget(self.in_flight[0])
            for head in self._abandon_batch():
                head.artifacts["tier"] = "cold"  # queued again if it runs on

    def _abandon_batch(self) -> list[TranslatedBlock]:
        """Stop waiting for the worker's batch; its region heads."""
        assert self.in_flight is not None
        _, modules = self.in_flight
        self.in_flight, self.compiling = None, set()
        return [head for module in modules for head, _ in module.regions]

    def _note_calls_and_reasons(self, block: TranslatedBlock) -> None:
        """Number the monitor-exit reasons and learn the helpers' arities the
        compiled code will pass through the callbacks."""
        for exit_ in block.exits:
            if exit_.reason is not None:
                self._reason_id(exit_.reason)
        for inst in block.artifacts["ir"].insts:
            if inst.op is Op.CALL:
                self.helper_arity[self.helper_list.index(inst.aux.name)] = len(inst.aux.arg_widths)

    def _region(self, head: TranslatedBlock, taken: set[int]) -> list[TranslatedBlock]:
        """The head and the hot blocks reachable from it by direct exits that
        no other region holds yet, and the blocks other regions hold that
        lie on a cycle back to the head.

        A loop whose blocks sit in two regions crosses the dispatcher at
        every iteration (spilling and reloading the guest's registers): the
        compute guest's heapsort loop did so 23 million times, as an outer
        loop compiled after its inner one does once per inner run.  Such
        blocks are compiled again into this region; blocks elsewhere that
        do not lead back to the head stay exits to the dispatcher (a copy of
        them would cost compile time and save no crossing per iteration)."""
        cache = self.machine.cache
        members = [head]
        position = {head.pc: 0}
        successors: list[list[int]] = []  # per member: indices of its members among its exits
        sites: list[int] = []  # the calls' return sites, as addresses
        elsewhere: set[int] = set()  # member indices other regions (or this batch) hold too
        hot_enough = max(1, self.threshold // 4)
        index = 0
        while index < len(members):
            block = members[index]
            index += 1
            targets: list[int] = []
            successors.append(targets)
            # A call's return lands on the block after it: computed, so not
            # an exit target, but the region's own code can take it there.
            site = _return_site(block)
            if site is not None:
                sites.append(site)
            candidates = [*enumerate(block.exit_targets), (None, site)]
            for exit_index, target in candidates:
                if target is None:
                    continue
                if target in position:
                    targets.append(position[target])
                    continue
                if len(members) >= MAX_REGION_BLOCKS:
                    continue
                linked = block.links[exit_index] if exit_index is not None else None
                successor = linked or cache.jump_cache.get((target, block.flags))
                if successor is None or not successor.valid or successor.flags != head.flags:
                    continue
                if head.flags & PAGING and (target >> 12) != (head.pc >> 12):
                    continue  # another page's mapping can change under the region
                if successor.executions < hot_enough and self.policy != "always":
                    continue
                if id(successor) in taken or id(successor) in self.region_of_head or id(successor) in self.compiling:
                    elsewhere.add(len(members))
                position[target] = len(members)
                targets.append(len(members))
                members.append(successor)
        if not elsewhere:
            return members
        # A computed jump (a RET) may go to any return site in the region.
        returning_to = [position[site] for site in sites if site in position]
        for source, block in enumerate(members):
            if _ends_in_a_computed_jump(block):
                successors[source].extend(returning_to)
        # Keep a block held elsewhere only if it leads back to the head, then
        # only the blocks still reachable from the head.
        predecessors: list[list[int]] = [[] for _ in members]
        for source, targets in enumerate(successors):
            for target in targets:
                predecessors[target].append(source)
        returns = _closure([0], predecessors)
        kept = {i for i in range(len(members)) if i not in elsewhere or i in returns}
        reachable = _closure([0], [[t for t in targets if t in kept] for targets in successors])
        return [block for i, block in enumerate(members) if i in reachable]

    def _install(self, head: TranslatedBlock, members: list[TranslatedBlock], region: CompiledRegion) -> None:
        """Every block of the region becomes a way into native code: its
        Python function enters the dispatcher, and the dispatcher's table
        finds it.  The table maps EIPs: if the mappings changed since the
        head was queued, its EIP may now name other code, so the blocks are
        published only when Python next reaches them."""
        region.members = members  # type: ignore[attr-defined]
        self.regions.append(region)
        publish = head.artifacts.get("queued_generation", self.generation) == self.generation
        for block in members:
            block.artifacts.setdefault("regions", []).append(region)
            block.artifacts["region"] = region  # .llvm_ir and .assembly on request
            if id(block) not in self.region_of_head:
                self._enter_natively(block, region, publish)
                block.artifacts["tier"] = "hot"

    def _enter_natively(self, block: TranslatedBlock, region: CompiledRegion, publish: bool = True) -> None:
        self.region_of_head[id(block)] = region
        block.artifacts["cold_function"] = block.function
        if not block.exits or block.exits[-1].reason != NATIVE_EXIT:
            block.exits.append(Exit(None, 0, NATIVE_EXIT))
            block.links.append(None)
            block.exit_insns = block.exit_insns + (0,)
            block.exit_targets = block.exit_targets + (None,)
        native_exit = len(block.exits) - 1

        def enter() -> int:
            self.run(block, region)
            return native_exit

        block.function = enter
        if publish:
            self._publish(block, region)

    def _publish(self, block: TranslatedBlock, region: CompiledRegion) -> None:
        index = table_index(block.pc)
        entry = self.table[index]
        entry.eip, entry.flags, entry.function = block.pc, block.flags, region.address
        self.installed[index] = (block.pc, block.flags)
        for page in block.eip_pages:
            self.installed_pages.setdefault(page, set()).add(index)

    def _region_block(self, block: TranslatedBlock) -> RegionBlock:
        info = block.artifacts["info"]
        counter = block.artifacts.get("counter")
        if counter is None and len(self.counted) < COUNTERS:
            counter = block.artifacts["counter"] = len(self.counted)
            self.counted.append(block)
        return RegionBlock(block.pc, block.artifacts["ir"], block.insn_count, info.lengths, info.addresses,
                           -1 if counter is None else counter)

    def fold_counters(self) -> None:
        """Add native executions into the blocks' counts (for reports)."""
        counters = self.counters
        for index, block in enumerate(self.counted):
            if counters[index]:
                self.native_block_runs += counters[index]
                if block is not None:
                    block.executions += counters[index]
                    block.artifacts["native_executions"] = (
                        block.artifacts.get("native_executions", 0) + counters[index])
                counters[index] = 0

    @property
    def stayed_native(self) -> float:
        """The share of compiled blocks' starts that came from compiled code
        (the block before it in the region, another region through the
        native table, or a monitor exit served in place) rather than from
        Python: a measure of chaining that does not depend on how the code
        is cut into regions."""
        runs = self.native_block_runs
        return max(runs - self.native_entries, 0) / runs if runs else 0.0

    # -- invalidation ----------------------------------------------------------------------------
    def block_invalidated(self, block: TranslatedBlock) -> None:
        self.fold_counters()
        for region in block.artifacts.get("regions", ()):
            if region.live:
                self._kill(region)

    def _kill(self, region: CompiledRegion) -> None:
        region.live = False
        for index in list(self.installed):
            if self.table[index].function == region.address:
                self.table[index].function = None
                self.installed.pop(index, None)
        for block in getattr(region, "members", ()):
            if self.region_of_head.get(id(block)) is region:
                del self.region_of_head[id(block)]
                block.function = block.artifacts.get("cold_function", block.function)
                block.artifacts["tier"] = "cold"
        # The native code is released with the last live region of its
        # module: closing the module's own engine frees it.
        engine = region.engine
        if engine is not None and not any(r.live and r.engine is engine for r in self.regions):
            if self.running:  # a callback from native code: its caller may be in this code
                self.doomed.append(engine.close)
            else:
                engine.close()
        self.regions = [r for r in self.regions if r.live]

    def forget_virtual(self, keep_page: int | None = None) -> None:
        """Mappings from EIP to code changed: empty the native look-up table
        (heads re-publish themselves when Python reaches them again) but
        for the entries on the EIP page ``keep_page``, whose mapping did not."""
        self.generation += 1
        if keep_page in self.installed_pages:
            if len(self.installed_pages) > 1:
                self.forget_pages(tuple([page for page in self.installed_pages if page != keep_page]))
            return
        self.table_emptied = True
        for index in self.installed:
            self.table[index].function = None
        self.installed.clear()
        self.installed_pages.clear()

    def forget_pages(self, eip_pages: tuple[int, ...]) -> None:
        """The code at these EIP pages may map elsewhere now (INVLPG): drop
        their table entries (an index reused since by another page's block
        is dropped too, and published again at its next miss)."""
        self.generation += 1
        self.table_emptied = True
        for page in eip_pages:
            for index in self.installed_pages.pop(page, ()):
                self.table[index].function = None
                self.installed.pop(index, None)

    def flush(self) -> None:
        for region in list(self.regions):
            self._kill(region)
        self.forget_virtual()

    # -- running native code -------------------------------------------------------------------------
    def run(self, head: TranslatedBlock, region: CompiledRegion) -> None:
        """Enter native code at ``head`` and run until it returns; leave the
        machine as the cold tier would (EIP, icount) and note what to serve."""
        if self.running:
            raise RuntimeError("native code entered again from a callback")
        slots = self.slots
        index = table_index(head.pc)
        if self.table[index].function != region.address:
            self._publish(head, region)
        slots[Slot.EIP] = head.pc
        slots[Slot.FLAGS_WORD] = head.flags
        slots[Slot.NATIVE_TRANSITIONS] = 0
        slots[Slot.EXIT_CODE] = 0
        self._arm()
        self.table_emptied = False
        self.native_entries += 1
        self.running = True
        started = time.perf_counter()
        try:
            code = self.target.dispatch(self.state_address, ctypes.addressof(self.table), self.serve_address)
        finally:
            self.running = False
            self.native_seconds += time.perf_counter() - started
            self._retire()
            self.native_transitions += slots[Slot.NATIVE_TRANSITIONS]
            while self.doomed:
                self.doomed.pop()()
        self.last_code = code
        if code == NEED_LOOKUP:
            self.native_lookups_missed += 1

    def _arm(self) -> None:
        """Give native code the instructions left before the deadline."""
        machine = self.machine
        budget = min(machine.deadline - machine.icount, 0x7FFFFFFF)
        self.entry_icount = machine.icount
        self.entry_budget = budget
        self.slots[Slot.BUDGET] = budget

    def _retire(self) -> int:
        """Count what native code retired since it was armed."""
        retired = self.entry_budget - self.slots[Slot.BUDGET]
        self.native_insns += retired
        self.machine.icount = self.entry_icount + retired
        self.entry_icount, self.entry_budget = self.machine.icount, self.slots[Slot.BUDGET]
        return retired

    def _serve_from_native(self, code: int) -> int:
        """The dispatcher's callback: a region returned ``code``.  Serve it as
        the executor would after a return to Python and, when nothing needs
        Python's loop (a block to translate or shorten, a batch to compile, the
        end of the run), let the dispatcher go on at the new EIP."""
        try:
            started = time.perf_counter()
            machine = self.machine
            executor = self.executor
            if self._retire():
                self.idle_serves = 0
            else:
                self.idle_serves += 1
                if self.idle_serves > MAX_IDLE_SERVES:
                    self.idle_serves = 0
                    return code  # no progress in native code: let Python's loop look
            self.last_code = code
            if code == NEED_LOOKUP:
                if not self._publish_at_eip():
                    return NEED_LOOKUP
                self.native_republished += 1
                return CONTINUE
            if code == BUDGET and machine.icount < machine.deadline:
                return BUDGET  # the next block must be cut short: Python's loop does it
            if code != BUDGET:
                self.serve(executor)
            if machine.outcome is None and machine.icount >= machine.deadline:
                if self.due() and not self.background:
                    return SERVED  # compile from Python's loop
                executor.service()  # (a worker's result is installed here, and its next batch sent)
            if machine.outcome is not None or machine.icount >= machine.deadline:
                return SERVED
            self.slots[Slot.FLAGS_WORD] = machine.flags
            if self.table_emptied and not self._published_at_eip():
                self._publish_at_eip()  # (after a CR3 load, say): spare the dispatcher a miss
            self._arm()
            self.native_served += 1
            self.native_seconds -= time.perf_counter() - started
            return CONTINUE
        except BaseException as error:  # noqa: BLE001 (raised again by serve below)
            self.pending = error
            return CALLBACK_FAILED
        finally:
            # Serving may have moved the count (an emulated instruction, HLT
            # skipping to the next event): native code counts on from here.
            self.entry_icount, self.entry_budget = self.machine.icount, self.slots[Slot.BUDGET]
            self.table_emptied = False

    def _published_at_eip(self) -> bool:
        """Whether the dispatcher's table has an entry for EIP as it is."""
        eip = self.slots[Slot.EIP]
        return self.installed.get(table_index(eip)) == (eip, self.machine.flags)

    def _publish_at_eip(self) -> bool:
        """The dispatcher missed EIP in its table (after a CR3 load emptied
        it, say): if the block there is compiled, publish it and say so.
        Translating, or running a cold block, is left to Python's loop."""
        machine = self.machine
        try:
            block = machine.cached_block(self.slots[Slot.EIP], machine.flags)
        except GuestFault:
            return False  # Python's loop delivers the fetch fault
        if block is None or len(block.ranges) > 1 or id(block) not in self.region_of_head:
            return False
        self._publish(block, self.region_of_head[id(block)])
        self.slots[Slot.FLAGS_WORD] = machine.flags  # what the dispatcher compares the entry with
        return True

    def serve(self, executor: Any) -> None:
        """What the last native run returned, served by the executor."""
        code = self.last_code
        slots = self.slots
        if code in (NEED_LOOKUP, BUDGET, SERVED):
            return
        if code == CALLBACK_FAILED:
            pending, self.pending = self.pending, None
            raise RuntimeError("serving a monitor exit from compiled code failed") from pending
        if code == MONITOR:
            executor.monitor_exit(self.reason_names[slots[Slot.EXIT_ARG]])
            return
        address = slots[Slot.EIP]
        next_address = (address + slots[Slot.EXIT_LENGTH]) & 0xFFFFFFFF
        if code == FAULT:
            error = slots[Slot.EXIT_ERROR]
            fault = GuestFault(slots[Slot.EXIT_ARG], None if error == NO_ERROR_CODE else error,
                               slots[Slot.EXIT_INDEX])
            if fault.is_trap:
                self.machine.icount += 1
                slots[Slot.EIP] = next_address
            executor.exception(fault, address, next_address)
            return
        if code == INTERRUPTED:
            pending, self.pending = self.pending, None
            if not isinstance(pending, BlockInterrupted):
                raise RuntimeError("a callback from compiled code failed") from pending
            executor.interruption(pending, address, next_address)
            return
        raise RuntimeError(f"compiled code returned {code}")

    # -- reports ------------------------------------------------------------------------------------
    def native_symbols(self) -> list[tuple[int, int, str]]:
        return [(r.address, max(r.size, 1), r.name.rsplit("_", 1)[0]) for r in self.regions if r.live]


def _closure(start: list[int], edges: list[list[int]]) -> set[int]:
    """The nodes reachable from ``start`` along ``edges`` (start included)."""
    seen = set(start)
    stack = list(start)
    while stack:
        for following in edges[stack.pop()]:
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def _return_site(block: TranslatedBlock) -> int | None:
    info = block.artifacts["info"]
    return return_site(block.artifacts["ir"], info.addresses, info.lengths)


def _ends_in_a_computed_jump(block: TranslatedBlock) -> bool:
    last = block.artifacts["ir"].insts[-1]
    return last.op is Op.EXIT_INDIRECT and last.aux is None
