"""The hot tier: IR of a region of blocks becomes one native function through
llvmlite.

A region is a set of translated blocks that run into each other (a loop, a
trace).  Its function keeps the guest registers and lazy-flag slots in
allocas, which LLVM promotes to SSA values (host registers); direct exits
to blocks of the region are branches; every other way out stores the
registers back into the state struct and returns a code.  A small native
dispatcher looks the next EIP up in a hash table of compiled regions and
calls it, so control returns to Python only when the monitor has work: an
exit it must serve, a fault, the instruction budget, a block not compiled.

The lowering consumes the same IR as the cold tier; the meaning of an
instruction is never written here.  Memory accesses do the software-TLB
look-up inline (the MMU mirrors its TLB into native arrays) and call back
into Python on a miss.
"""

from __future__ import annotations

import ctypes
import functools
import time
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm

from dbt.backend import irtext
from dbt.backend.codecache import CodeCache
from dbt.backend.irtext import (
    I1,
    I8,
    I32,
    I64,
    INT,
    Builder,
    Function,
    const,
    function_type,
    pointer_const,
)
from dbt.backend.python import CACHED_SLOTS
from dbt.cpu.state import CR0_PG, CR4_PGE, CR4_PSE, Slot
from dbt.ir import Block, Const, Helper, Inst, Op, Temp, Value
from dbt.memory.mmu import (
    FILL_GLOBAL,
    FILL_LOG_CAPACITY,
    FILL_LOG_HEADER,
    FILL_USER,
    PTE_A,
    PTE_G,
    PTE_P,
    PTE_PS,
    PTE_U,
    TLB_INVALID,
)

# What compiled code returns (and the dispatcher passes on).
CONTINUE = 0  # look the next block up and go on (never leaves the dispatcher)
NEED_LOOKUP = 1  # EIP is not compiled: Python takes over there
BUDGET = 2  # the block at EIP needs more instructions than remain before the deadline
MONITOR = 3  # a monitor exit: exit_arg = reason number, EIP = where to go on
FAULT = 4  # the guest raised: exit_arg = vector, exit_error, exit_index = flavor
INTERRUPTED = 5  # Python raised during a slow path or helper: the JIT holds the exception
SERVED = 6  # the serve callback did the monitor's work and Python should take over
CALLBACK_FAILED = 7  # the serve callback raised: the JIT holds the exception

# dbt_dispatch hands every code but CONTINUE and NEED_LOOKUP to this callback;
# when it returns CONTINUE the dispatcher goes on at EIP under FLAGS_WORD.
SERVE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32)

NO_ERROR_CODE = 0xFFFFFFFF
TABLE_BITS = 16
TABLE_ENTRIES = 1 << TABLE_BITS

STATE = I32.as_pointer()
REGION_TYPE = function_type(I32, [STATE])
# dbt_walk_read(state, ram, ram_size, tlb, log, address, user) -> page offset in RAM or TLB_INVALID
WALK_READ_TYPE = function_type(I32, [STATE, I8.as_pointer(), I32, I32.as_pointer(), I32.as_pointer(), I32, I32])
# The callbacks into Python (see Bindings).
SLOW_LOAD_TYPE = function_type(I64, [I32, I32])
SLOW_STORE_TYPE = function_type(I32, [I32, I32, I32])
HELPER_TYPE = function_type(I64, [I32, I64, I64, I64, I64])
# Slow paths call the runtime's functions in this convention: they keep
# almost every register, so the region's guest registers stay where they
# are across the call instead of being saved and restored around each one
# (measured: 4% less code generation time and object code on the compute
# guest, 3% less compiling on multitask; slow paths are rarely run).
PRESERVING = "preserve_mostcc"
TRAMPOLINES = {"dbt_call_slow_load": SLOW_LOAD_TYPE, "dbt_call_slow_store": SLOW_STORE_TYPE,
               "dbt_call_helper": HELPER_TYPE}


def _trampoline_type(signature: irtext.Type) -> irtext.Type:
    """A trampoline's type: the callback's arguments, then the callback."""
    assert signature.result is not None
    return function_type(signature.result, [*signature.params, signature.as_pointer()])


class TableEntry(ctypes.Structure):
    """One slot of the native look-up table: a region head by EIP and flags."""

    _fields_ = [("eip", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("function", ctypes.c_void_p)]


def table_index(eip: int) -> int:
    """The hash the dispatcher uses (keep in step with ``_dispatcher_ir``)."""
    product = ((eip ^ (eip >> TABLE_BITS)) * 0x9E3779B1) & 0xFFFFFFFF  # 32-bit, as in native code
    return (product >> 16) & (TABLE_ENTRIES - 1)


class NativeTarget:
    """LLVM, initialized once per process: the target machine, the JIT
    engine and the dispatcher."""

    _instance: NativeTarget | None = None

    @classmethod
    def get(cls) -> NativeTarget:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.machine = self._target_machine()
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.machine)
        self.triple = llvm.get_process_triple()
        module = llvm.parse_assembly(_runtime_ir(self.triple))
        self.optimize(module)
        self.engine.add_module(module)
        self.engine.finalize_object()
        # Entered with the GIL held (the monitor has no other threads): each
        # callback from native code then skips taking the GIL back (about
        # 70 ns of 190-280 ns a callback costs, measured).
        self.dispatch = ctypes.PYFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
            self.engine.get_function_address("dbt_dispatch"))
        self.walk_read = self.engine.get_function_address("dbt_walk_read")
        self.trampolines = {name: self.engine.get_function_address(name) for name in TRAMPOLINES}

    @staticmethod
    def _target_machine() -> llvm.TargetMachine:
        return llvm.Target.from_default_triple().create_target_machine(opt=2, codemodel="jitdefault")

    def own_engine(self) -> llvm.ExecutionEngine:
        """An engine of its own for one module of regions' object code.
        MCJIT frees generated code only with its engine (an object file
        cannot be removed from one): closing this engine releases the
        module's code.  (About 0.1 ms to make; each engine owns its target
        machine.)"""
        return llvm.create_mcjit_compiler(llvm.parse_assembly(""), self._target_machine())

    def optimize(self, module: llvm.ModuleRef) -> None:
        """dbt's pass list rather than LLVM's O2 pipeline.

        Region code is straight-line guest blocks over slot variables: what
        pays is turning the slots into SSA values (SROA), folding and
        dead-code elimination (so unread flags vanish) and dead-store
        elimination.  Measured on the compute guest, this list optimizes in
        about a quarter of O2's time and the code runs within 5% of O2's
        speed.  Not run, measured: a second round of combining and CFG
        simplification after DSE (the same assembly for all 21 compute
        modules, for 13-25% of the optimizing time), and value numbering
        (NewGVN: 27 of 105 ms of optimizing, object code 0.3% larger
        without it, execution level with paging off and on).
        """
        # A fresh pass builder and manager for every module: running one
        # pass manager twice aborts the process with this LLVM.
        options = llvm.create_pipeline_tuning_options(speed_level=2)
        builder = llvm.create_pass_builder(self.machine, options)
        passes = llvm.create_new_module_pass_manager()
        passes.add_always_inliner_pass()  # the flag helpers
        passes.add_global_dead_code_eliminate_pass()  # ...whose bodies then go
        passes.add_sroa_pass()
        passes.add_instruction_combine_pass()
        passes.add_simplify_cfg_pass()
        passes.add_sccp_pass()
        passes.add_dead_store_elimination_pass()
        passes.add_aggressive_dce_pass()
        passes.run(module, builder)

    def assembly(self, module: llvm.ModuleRef) -> str:
        return self.machine.emit_assembly(module)


def _runtime_ir(triple: str) -> str:
    """The code every region uses: the dispatcher and the flags helper."""
    intrinsics: set[str] = set()
    functions = [_dispatcher(), _page_walk(), *(_trampoline(name, signature) for name, signature in TRAMPOLINES.items()),
                 *flags_compute_function(intrinsics)]
    return "\n\n".join([f'target triple = "{triple}"', *sorted(intrinsics), *(f.text() for f in functions)])


def _dispatcher() -> Function:
    """dbt_dispatch(state, table, serve): call compiled regions while they say
    CONTINUE; hand any other code, and a miss in the table (NEED_LOOKUP), to
    ``serve`` (the monitor, in Python) and go on if it says CONTINUE too."""
    serve_type = function_type(I32, [I32])
    function = Function("dbt_dispatch", function_type(I32, [STATE, I8.as_pointer(), serve_type.as_pointer()]))
    state, table, serve = function.args
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    found = function.append_basic_block("found")
    missing = function.append_basic_block("missing")
    monitor = function.append_basic_block("monitor")
    done = function.append_basic_block("done")
    b = Builder(function, entry)
    b.branch(loop)
    b.position_at_end(loop)
    flags = b.load(b.gep(state, [const(I32, Slot.FLAGS_WORD)]))  # the monitor may change it
    eip = b.load(b.gep(state, [const(I32, Slot.EIP)]))
    mixed = b.xor(eip, b.lshr(eip, const(I32, TABLE_BITS)))
    index = b.and_(b.lshr(b.mul(mixed, const(I32, 0x9E3779B1)), const(I32, 16)), const(I32, TABLE_ENTRIES - 1))
    # A TableEntry by its byte offsets: eip, flags, function.
    slot = b.gep(table, [b.mul(b.zext(index, I64), const(I64, ctypes.sizeof(TableEntry)))])

    def field(offset: int, kind: Any) -> Any:
        return b.load(b.bitcast(b.gep(slot, [const(I64, offset)]), kind.as_pointer()))

    slot_eip = field(TableEntry.eip.offset, I32)
    slot_flags = field(TableEntry.flags.offset, I32)
    target = field(TableEntry.function.offset, REGION_TYPE.as_pointer())
    hit = b.and_(b.and_(b.icmp_unsigned("==", slot_eip, eip), b.icmp_unsigned("==", slot_flags, flags)),
                 b.icmp_unsigned("!=", target, irtext.Value(target.type, "null")))
    b.cbranch(hit, found, missing)
    b.position_at_end(found)
    counter = b.gep(state, [const(I32, Slot.NATIVE_TRANSITIONS)])
    b.store(b.add(b.load(counter), const(I32, 1)), counter)
    code = b.call(target, [state])
    b.cbranch(b.icmp_unsigned("==", code, const(I32, CONTINUE)), loop, monitor)
    b.position_at_end(missing)
    b.branch(monitor)
    b.position_at_end(monitor)
    reason = b.phi(I32)
    reason.add_incoming(code, found)
    reason.add_incoming(const(I32, NEED_LOOKUP), missing)
    answer = b.call(serve, [reason])
    b.cbranch(b.icmp_unsigned("==", answer, const(I32, CONTINUE)), loop, done)
    b.position_at_end(done)
    b.ret(answer)
    return function


def _page_walk() -> Function:
    """dbt_walk_read(state, ram, ram_size, tlb, log, address, user): the
    page walk of a load whose TLB entry is empty, done in native code for the
    plain case: both levels in RAM and present, readable at the privilege,
    the page in RAM.  It sets the accessed bits as the processor does, fills
    the read TLB entry, records the fill in ``log`` (for the MMU's flush) and
    returns the page's offset in RAM; anything else (a fault, MMIO, a full
    log) returns TLB_INVALID and the monitor's slow path takes the access."""
    function = Function("dbt_walk_read", WALK_READ_TYPE, convention=PRESERVING)
    state, ram, ram_size, tlb, log, address, user = function.args
    b = Builder(function, function.append_basic_block("entry"))
    give_up = function.append_basic_block("give_up")

    def word(value: int) -> irtext.Value:
        return const(I32, value)

    def slot(index: int) -> Any:
        return b.load(b.gep(state, [word(int(index))]))

    def need(condition: Any, name: str) -> None:
        """Go on only if ``condition``; otherwise the monitor walks."""
        go_on = function.append_basic_block(name)
        b.cbranch(condition, go_on, give_up)
        b.position_at_end(go_on)

    def entry_at(physical: Any) -> Any:
        """A page-table entry's pointer in RAM (after a bounds check)."""
        need(b.icmp_unsigned("<=", physical, b.sub(ram_size, word(4))), "entry_in_ram")
        return b.bitcast(b.gep(ram, [b.zext(physical, I64)]), I32.as_pointer())

    def bit(value: Any, mask: int) -> Any:
        return b.icmp_unsigned("!=", b.and_(value, word(mask)), word(0))

    fills = b.gep(log, [word(0)])
    count = b.load(fills)
    need(b.icmp_unsigned("<", count, word(FILL_LOG_CAPACITY)), "log_has_room")
    need(bit(slot(Slot.CR0), CR0_PG), "paging")
    cr4 = slot(Slot.CR4)
    directory = b.and_(slot(Slot.CR3), word(0xFFFFF000))
    pde_pointer = entry_at(b.or_(directory, b.shl(b.lshr(address, word(22)), word(2))))
    pde = b.load(pde_pointer)
    need(bit(pde, PTE_P), "pde_present")
    large = b.and_(bit(pde, PTE_PS), bit(cr4, CR4_PSE))
    large_frame = b.or_(b.and_(pde, word(0xFFC00000)), b.and_(address, word(0x3FF000)))
    small_table = function.append_basic_block("small_page")
    walked = function.append_basic_block("walked")
    large_block = b.block
    b.cbranch(large, walked, small_table)
    b.position_at_end(small_table)
    table = b.and_(pde, word(0xFFFFF000))
    pte_pointer = entry_at(b.or_(table, b.shl(b.and_(b.lshr(address, word(12)), word(0x3FF)), word(2))))
    pte = b.load(pte_pointer)
    need(bit(pte, PTE_P), "pte_present")
    small_rights, small_frame = b.and_(pde, pte), b.and_(pte, word(0xFFFFF000))
    small_end = b.block
    b.branch(walked)
    b.position_at_end(walked)

    def either(kind: Any, large_value: Any, small_value: Any) -> Any:
        merged = b.phi(kind)
        merged.add_incoming(large_value, large_block)
        merged.add_incoming(small_value, small_end)
        return merged

    entry_pointer = either(I32.as_pointer(), pde_pointer, pte_pointer)
    entry = either(I32, pde, pte)
    rights = either(I32, pde, small_rights)
    frame = either(I32, large_frame, small_frame)
    user_access = b.icmp_unsigned("!=", user, word(0))
    need(b.or_(b.not_(user_access), bit(rights, PTE_U)), "allowed")
    page = b.and_(frame, b.and_(slot(Slot.A20_MASK), word(0xFFFFF000)))
    need(b.icmp_unsigned("<=", page, b.sub(ram_size, word(0x1000))), "page_in_ram")
    # Accessed bits, once nothing can fault: the directory entry's (its
    # table was used) and the mapping entry's (the same one for a 4 MiB page).
    b.store(b.or_(pde, word(PTE_A)), pde_pointer)
    b.store(b.or_(entry, word(PTE_A)), entry_pointer)
    linear_page = b.lshr(address, word(12))
    is_global = b.and_(bit(entry, PTE_G), bit(cr4, CR4_PGE))
    record = b.or_(linear_page, b.or_(b.select(is_global, word(FILL_GLOBAL), word(0)),
                                      b.select(user_access, word(FILL_USER), word(0))))
    b.store(record, b.gep(log, [b.add(count, word(FILL_LOG_HEADER))]))
    b.store(b.add(count, word(1)), fills)
    made = b.gep(log, [word(1)])
    b.store(b.add(b.load(made), word(1)), made)
    b.store(page, b.gep(tlb, [b.zext(linear_page, I64)]))
    b.ret(page)
    b.position_at_end(give_up)
    b.ret(word(TLB_INVALID))
    return function


def _trampoline(name: str, signature: irtext.Type) -> Function:
    """name(arguments..., callback) calls the C function ``callback`` with
    the arguments, in the register-preserving convention for its caller."""
    function = Function(name, _trampoline_type(signature), convention=PRESERVING)
    b = Builder(function, function.append_basic_block("entry"))
    *arguments, callback = function.args
    b.ret(b.call(callback, arguments))
    return function


@dataclass
class RegionBlock:
    """What the region compiler needs of one translated block."""

    pc: int
    ir: Block
    insn_count: int
    lengths: list[int]  # of each instruction, for trap return addresses
    addresses: list[int]
    counter: int = -1  # index of its execution counter (-1: none)


def return_site(ir: Block, addresses: list[int], lengths: list[int]) -> int | None:
    """Where a call that ends a block returns to (the address after it,
    which the call pushed), or None if the block does not end in a call."""
    end = (addresses[-1] + lengths[-1]) & 0xFFFFFFFF
    for inst in ir.insts:
        if inst.op is Op.STORE and isinstance(inst.args[1], Const) and inst.args[1].value == end:
            return end
    return None


@dataclass
class Bindings:
    """Host addresses compiled code is bound to: guest RAM, the native TLBs,
    and the callbacks into Python."""

    ram: int
    read_tlb: int
    write_tlb: int
    slow_load: int  # i64 (i32 address, i32 size) -> value, or bit 63 on an interruption
    slow_store: int  # i32 (i32 address, i32 size, i32 value) -> 0, or 1 on an interruption
    helper: int  # i64 (i32 helper, i64 x 4 args) -> result
    helper_ids: dict[str, int]
    reasons: dict[str, int]  # monitor exit reason -> number
    trampolines: dict[str, int]  # the runtime's dbt_call_* by name (see TRAMPOLINES)
    ram_size: int = 0
    code_pages: int = 0  # one byte per RAM page: nonzero when it holds translated code
    counters: int = 0  # uint64 per compiled block: executions in native code
    walk_read: int = 0  # dbt_walk_read in the runtime (0: every TLB miss goes to the monitor)
    fill_log: int = 0  # uint32 array: the TLB fills native code made (see dbt_walk_read)
    user: bool = False  # the read TLB is the user one (the code runs at the guest's CPL 3)

    def symbols(self) -> dict[str, int]:
        """The functions region code calls by name (the callbacks, the page
        walk, the trampolines), which the loader binds to these addresses."""
        functions = {"dbt_slow_load": self.slow_load, "dbt_slow_store": self.slow_store, "dbt_helper": self.helper,
                     "dbt_walk_read": self.walk_read}
        return {**{name: address for name, address in functions.items() if address}, **self.trampolines}


def _link(engine: llvm.ExecutionEngine, bindings: Bindings) -> None:
    """Bind a module's symbols to this machine's functions and make its code
    runnable.  The symbol table is the process's, so binding and finalizing
    go together (the monitor links one module at a time)."""
    for name, address in bindings.symbols().items():
        llvm.add_symbol(name, address)
    engine.finalize_object()


@dataclass
class CompiledRegion:
    name: str
    head: int
    blocks: list[int]
    address: int = 0
    engine: Any = None  # the engine holding this region's module alone (closed when all its regions die)
    live: bool = True
    target: Any = None
    # Linked from object code: what rebuilds the region's module for a dump
    # (bindings, blocks, identity-mapped).
    source: tuple[Bindings, list[RegionBlock], bool] | None = None
    _text: tuple[str, str] | None = None

    def _texts(self) -> tuple[str, str]:
        """The optimized LLVM IR and host assembly of this region's function,
        made on first request (assembly needs another code generation)."""
        if self._text is None:
            if not self.live:
                return "", ""
            if self.source is None:
                return "", ""
            bindings, blocks, identity = self.source
            module = optimized_module(self.target, module_text(
                self.target.triple, bindings, [blocks], [self.name], identity))
            llvm_ir = _function_text(str(module), self.name)
            assembly = _function_text(self.target.assembly(module), self.name, assembly=True)
            self._text = (llvm_ir, assembly)
        return self._text

    @property
    def llvm_ir(self) -> str:
        return self._texts()[0]

    @property
    def assembly(self) -> str:
        return self._texts()[1]

    @property
    def size(self) -> int:
        return _assembly_size(self.assembly)


class RegionCompiler:
    """Lowers the blocks of one region into one LLVM function."""

    def __init__(self, bindings: Bindings, inline_functions: dict[str, Function], region: list[RegionBlock],
                 name: str, identity_mapped: bool = False, intrinsics: set[str] | None = None) -> None:
        self.bind = bindings
        # Paging off and A20 on: a linear address is the physical one, so RAM
        # is reached by a bounds check instead of a TLB look-up.
        self.identity = identity_mapped
        self.inline_functions = inline_functions
        self.region = {block.pc: block for block in region}
        self.head = region[0].pc
        self.function = Function(name, REGION_TYPE)
        self.state = self.function.args[0]
        self.entry = self.function.append_basic_block("entry")
        self.b = Builder(self.function, self.entry, intrinsics)
        self.used_inline: set[str] = set()  # the flag helpers called (the module appends their bodies)
        self.slots: dict[int, irtext.Value] = {}
        for slot in sorted(CACHED_SLOTS | {Slot.BUDGET}):
            self.slots[slot] = self.b.alloca(I32, name=f"s{slot}")
        for slot, variable in self.slots.items():
            self.b.store(self.b.load(self._state_slot(slot)), variable)
        self.labels = {pc: self.function.append_basic_block(f"b_{pc:08x}") for pc in self.region}
        self.written = {Slot.BUDGET} | {inst.aux for block in region for inst in block.ir.insts if inst.op is Op.SET}
        # The blocks calls in the region return to: a computed jump there stays inside.
        self.return_sites = sorted({site for block in region
                                    if (site := return_site(block.ir, block.addresses, block.lengths)) in self.labels})
        # Every block of the region is an entry: the dispatcher finds any of
        # them in its table and the function starts where EIP says.
        unknown = self.function.append_basic_block("not_here")
        switch = self.b.switch(self.b.load(self._state_slot(Slot.EIP)), unknown)
        for pc, label in self.labels.items():
            switch.add_case(const(I32, pc), label)
        self.b.position_at_end(unknown)
        self.b.ret(const(I32, NEED_LOOKUP))
        # Every way out goes through one of two shared blocks (small code),
        # made when first used: "leave" stores the cached registers,
        # "leave_kept" does not (a helper changed the state struct itself).
        self._exits: dict[bool, tuple[irtext.Block, dict[str, irtext.Phi]]] = {}
        self.values: dict[int, Any] = {}
        self.current: RegionBlock | None = None
        self.insn_index = 0
        self.insn_address = 0

    # -- helpers ------------------------------------------------------------------------
    def _state_slot(self, slot: int) -> Any:
        return self.b.gep(self.state, [const(I32, int(slot))])

    def _const(self, value: int, width: int) -> irtext.Value:
        return const(INT[width], value)

    def _ptr(self, address: int, pointee: irtext.Type) -> irtext.Value:
        """A host data address (RAM, a TLB, the counters) as a constant: LLVM
        then reaches all of them from one base register.  They lie in the
        machine's arena, at addresses a later run gets again (see
        ``dbt.memory.arena``)."""
        return pointer_const(address, pointee)

    def _function(self, name: str, signature: irtext.Type, convention: str = "") -> irtext.Value:
        """A host function the region calls (a runtime trampoline, the page
        walk, a callback into Python), by the symbol the loader binds (see
        ``Bindings.symbols``): their addresses differ from run to run, and
        calls are rare enough that a symbol costs nothing measurable."""
        return irtext.external(name, signature, self.b.intrinsics, convention)

    def value(self, v: Value) -> Any:
        if isinstance(v, Const):
            return self._const(v.value, v.width)
        return self.values[v.index]

    def _spill(self, slots: set[int] | None = None) -> None:
        """Store the cached slots the region writes (or some of them) into
        the state struct.  A slot no block of the region sets always holds
        what the struct holds (loaded at entry, and again after a helper
        that writes the struct), so storing it back would change nothing --
        but every exit would carry it, costing code and compile time."""
        for slot, variable in self.slots.items():
            if slot in self.written and (slots is None or slot in slots):
                self.b.store(self.b.load(variable), self._state_slot(slot))

    def _reload(self) -> None:
        for slot, variable in self.slots.items():
            if slot != Slot.BUDGET:
                self.b.store(self.b.load(self._state_slot(slot)), variable)

    _EXIT_FIELDS = ("code", "eip", "refund", "exit_arg", "exit_error", "exit_index", "exit_length")

    def _exit_block(self, kept: bool) -> tuple[irtext.Block, dict[str, irtext.Phi]]:
        block = self.function.append_basic_block("leave_kept" if kept else "leave")
        here = self.b.block
        self.b.position_at_end(block)
        phis = {name: self.b.phi(I32, name=name) for name in self._EXIT_FIELDS}
        if not kept:
            self._spill(set(self.slots) - {Slot.BUDGET})
        # The budget the block's entry charged, less what the exit did not retire.
        budget = self.b.add(self.b.load(self.slots[Slot.BUDGET]), phis["refund"])
        self.b.store(budget, self._state_slot(Slot.BUDGET))
        self.b.store(phis["eip"], self._state_slot(Slot.EIP))
        for name in self._EXIT_FIELDS[3:]:
            self.b.store(phis[name], self._state_slot(Slot[name.upper()]))
        self.b.store(phis["code"], self._state_slot(Slot.EXIT_CODE))
        self.b.ret(phis["code"])
        self.b.position_at_end(here)
        return block, phis

    def _leave(self, code: int, eip: Any, kept: bool = False, refund: int = 0, when: Any = None,
               **extra: Any) -> None:
        """Leave the region: store the registers (unless ``kept``), set EIP
        and the exit slots, give back ``refund`` instructions of the budget,
        return ``code``.  With ``when``, leave only if it holds and go on in
        a new block otherwise.  The branch goes straight to the shared exit
        block: LLVM's code generation costs about 60 us a block here, and
        the compute guest's regions have 15% fewer blocks so (3% less code
        generation time, measured)."""
        if kept not in self._exits:
            self._exits[kept] = self._exit_block(kept)
        block, phis = self._exits[kept]
        values = {"code": const(I32, code), "eip": eip, "refund": const(I32, refund)}
        for name in self._EXIT_FIELDS[3:]:
            values[name] = extra.get(name, const(I32, 0))
        here = self.b.block
        for name, phi in phis.items():
            phi.add_incoming(values[name], here)
        if when is None:
            self.b.branch(block)
            return
        stay = self.function.append_basic_block("on")
        self.b.cbranch(when, block, stay)
        self.b.position_at_end(stay)

    def _unretired(self, completed: bool = False) -> int:
        """The block's entry charged all its instructions; leaving it at
        instruction i retires only i of them (i + 1 if it ``completed``)."""
        block = self.current
        assert block is not None
        return block.insn_count - self.insn_index - (1 if completed else 0)

    def _refund(self, completed: bool = False) -> None:
        """Give the unretired instructions back to the budget and go on."""
        unretired = self._unretired(completed)
        if unretired:
            budget = self.slots[Slot.BUDGET]
            self.b.store(self.b.add(self.b.load(budget), const(I32, unretired)), budget)

    # -- the region ---------------------------------------------------------------------------
    def compile(self) -> Function:
        for pc, block in self.region.items():
            self.current = block
            self.b.position_at_end(self.labels[pc])
            budget = self.slots[Slot.BUDGET]
            remaining = self.b.load(budget)
            short = self.b.icmp_signed("<", remaining, const(I32, block.insn_count))
            self._leave(BUDGET, const(I32, pc), when=short)
            self.b.store(self.b.sub(remaining, const(I32, block.insn_count)), budget)
            if block.counter >= 0 and self.bind.counters:
                counter = self.b.gep(self._ptr(self.bind.counters, I64), [const(I64, block.counter)])
                self.b.store(self.b.add(self.b.load(counter), const(I64, 1)), counter)
            self.values = {}
            for inst in block.ir.insts:
                if not self.lower(inst):
                    break
            if not self.b.block.is_terminated:
                self.b.unreachable()
        return self.function

    def lower(self, inst: Inst) -> bool:
        op, args, b = inst.op, inst.args, self.b
        if op is Op.INSN:
            self.insn_address, self.insn_index, _ = inst.aux
            return True
        if op is Op.GET:
            slot = inst.aux
            pointer = self.slots.get(slot) or self._state_slot(slot)
            self.values[inst.dst.index] = b.load(pointer)  # type: ignore[union-attr]
            return True
        if op is Op.SET:
            slot = inst.aux
            pointer = self.slots.get(slot) or self._state_slot(slot)
            b.store(self.value(args[0]), pointer)
            return True
        if op is Op.LOAD:
            self.values[inst.dst.index] = self._load(inst.aux, self.value(args[0]))  # type: ignore[union-attr]
            return True
        if op is Op.STORE:
            self._store(inst.aux, self.value(args[0]), self.value(args[1]))
            return True
        if op is Op.CALL:
            self._call(inst)
            return True
        if op is Op.RAISE:
            self._raise(inst.aux)
            return False
        if op is Op.RAISE_IF:
            self._raise(inst.aux, when=self.value(args[0]))
            return True
        if op is Op.EXIT:
            self._exit(inst.aux)
            return False
        if op is Op.EXIT_IF:
            self._exit(inst.aux, when=self.value(args[0]))
            return True
        if op is Op.EXIT_INDIRECT:
            reason = inst.aux
            if reason is None:
                self._refund(completed=True)
                self._indirect(self.value(args[0]))
            else:
                self._leave(MONITOR, self.value(args[0]), refund=self._unretired(completed=True),
                            exit_arg=const(I32, self.bind.reasons[reason]))
            return False
        if op is Op.MONITOR_EXIT_IF:
            target, reason = inst.aux
            self._monitor_exit(target, reason, when=self.value(args[0]))
            return True
        assert inst.dst is not None
        self.values[inst.dst.index] = self._pure(inst)
        return True

    def _monitor_exit(self, target: int, reason: str, when: Any = None) -> None:
        self._leave(MONITOR, const(I32, target), refund=self._unretired(completed=True), when=when,
                    exit_arg=const(I32, self.bind.reasons[reason]))

    def _exit(self, target: int, when: Any = None) -> None:
        """Go to ``target``: inside the region, or out to the dispatcher."""
        if target not in self.labels:
            self._leave(CONTINUE, const(I32, target), refund=self._unretired(completed=True), when=when)
        elif when is None:
            self._refund(completed=True)
            self.b.branch(self.labels[target])
        else:
            taken = self.function.append_basic_block(f"exit_{self.insn_address:08x}")
            stay = self.function.append_basic_block(f"exit_{self.insn_address:08x}_on")
            self.b.cbranch(when, taken, stay)
            self.b.position_at_end(taken)
            self._refund(completed=True)
            self.b.branch(self.labels[target])
            self.b.position_at_end(stay)

    def _indirect(self, target: Any) -> None:
        """A computed jump (RET, JMP or CALL through a register): to a block
        a call in this region returns to, it stays inside; anywhere else it
        leaves for the dispatcher.  (Only return sites are looked for: every
        way into a block costs each of its cached registers a phi, and so
        compile time.)  The flags are those of the whole region: far
        transfers, which change them, return to the monitor instead."""
        if self.return_sites:
            elsewhere = self.function.append_basic_block(f"indirect_{self.insn_address:08x}")
            switch = self.b.switch(target, elsewhere)
            for pc in self.return_sites:
                switch.add_case(const(I32, pc), self.labels[pc])
            self.b.position_at_end(elsewhere)
        self._leave(CONTINUE, target)

    def _raise(self, aux: tuple[int, int | None, int], when: Any = None) -> None:
        vector, error_code, flavor = aux
        self._leave(
            FAULT, const(I32, self.insn_address), refund=self._unretired(), when=when,
            exit_arg=const(I32, vector),
            exit_error=const(I32, NO_ERROR_CODE if error_code is None else error_code),
            exit_index=const(I32, flavor),
            exit_length=const(I32, self.current.lengths[self.insn_index]),  # type: ignore[union-attr]
        )

    def _interrupted(self, when: Any = None) -> None:
        self._leave(INTERRUPTED, const(I32, self.insn_address), refund=self._unretired(), when=when,
                    exit_length=const(I32, self.current.lengths[self.insn_index]))  # type: ignore[union-attr]

    # -- pure operations ----------------------------------------------------------------------
    def _pure(self, inst: Inst) -> Any:
        b, op = self.b, inst.op
        a = [self.value(x) for x in inst.args]
        binary = {Op.ADD: b.add, Op.SUB: b.sub, Op.MUL: b.mul, Op.AND: b.and_, Op.OR: b.or_,
                  Op.XOR: b.xor, Op.SHL: b.shl, Op.LSHR: b.lshr, Op.ASHR: b.ashr, Op.UDIV: b.udiv,
                  Op.UREM: b.urem, Op.SDIV: b.sdiv, Op.SREM: b.srem}
        if op in binary:
            return binary[op](a[0], a[1])
        width = inst.args[-1].width if op is Op.SELECT else inst.args[0].width
        if op is Op.NOT:
            return b.xor(a[0], self._const((1 << width) - 1, width))
        if op is Op.NEG:
            return b.sub(self._const(0, width), a[0])
        if op is Op.CTPOP:
            return b.ctpop(a[0])
        if op is Op.CTTZ:
            return b.cttz(a[0], const(I1, 0))
        if op is Op.CTLZ:
            return b.ctlz(a[0], const(I1, 0))
        if op is Op.ZEXT:
            return b.zext(a[0], INT[inst.aux])
        if op is Op.SEXT:
            return b.sext(a[0], INT[inst.aux])
        if op is Op.TRUNC:
            return b.trunc(a[0], INT[inst.aux])
        if op is Op.SELECT:
            return b.select(a[0], a[1], a[2])
        if op in (Op.EQ, Op.NE, Op.ULT, Op.ULE):
            return b.icmp_unsigned({Op.EQ: "==", Op.NE: "!=", Op.ULT: "<", Op.ULE: "<="}[op], a[0], a[1])
        if op in (Op.SLT, Op.SLE):
            return b.icmp_signed("<" if op is Op.SLT else "<=", a[0], a[1])
        raise AssertionError(f"no LLVM lowering for {op}")

    # -- memory ------------------------------------------------------------------------------------
    def _tlb_offset(self, table: int, address: Any) -> Any:
        b = self.b
        page = b.lshr(address, const(I32, 12))
        entry = b.gep(self._ptr(table, I32), [b.zext(page, I64)])
        return b.load(entry)

    def _fast_path(self, table: int, address: Any, size: int) -> tuple[Any, Any]:
        """(hit condition, host pointer as i8*) for an access of ``size`` bytes."""
        b = self.b
        if self.identity:
            in_ram = b.icmp_unsigned("<=", address, const(I32, self.bind.ram_size - size))
            if table == self.bind.write_tlb:
                # Stores to pages with translated code take the slow path.
                page = b.zext(b.lshr(address, const(I32, 12)), I64)
                page_index = b.select(in_ram, page, const(I64, 0))
                flag = b.load(b.gep(self._ptr(self.bind.code_pages, I8), [page_index]))
                in_ram = b.and_(in_ram, b.icmp_unsigned("==", flag, const(I8, 0)))
            pointer = b.gep(self._ptr(self.bind.ram, I8), [b.zext(address, I64)])
            return in_ram, pointer
        offset = self._tlb_offset(table, address)
        within = b.and_(address, const(I32, 0xFFF))
        valid = b.icmp_unsigned("!=", offset, const(I32, TLB_INVALID))
        fits = b.icmp_unsigned("<=", within, const(I32, 0x1000 - size))
        host = b.add(b.zext(offset, I64), b.zext(within, I64))
        pointer = b.gep(self._ptr(self.bind.ram, I8), [host])
        return b.and_(valid, fits), pointer

    def _load(self, width: int, address: Any) -> Any:
        b = self.b
        size = width // 8
        hit, pointer = self._fast_path(self.bind.read_tlb, address, size)
        fast = self.function.append_basic_block("ld_fast")
        slow = self.function.append_basic_block("ld_slow")
        done = self.function.append_basic_block("ld_done")
        b.cbranch(hit, fast, slow)
        b.position_at_end(fast)
        fast_value = b.load(b.bitcast(pointer, INT[width].as_pointer()), align=1)
        b.branch(done)
        b.position_at_end(slow)
        walked: tuple[Any, Any] | None = None
        if not self.identity and self.bind.walk_read:
            walked = self._walked_load(width, address, done)
        self._publish_block_start()
        raw = self._call_back("dbt_call_slow_load", "dbt_slow_load", [address, const(I32, size)])
        failed = b.icmp_signed("<", raw, const(I64, 0))
        self._interrupted(when=failed)
        slow_value = b.trunc(raw, INT[width])
        slow_end = b.block
        b.branch(done)
        b.position_at_end(done)
        phi = b.phi(INT[width])
        phi.add_incoming(fast_value, fast)
        if walked is not None:
            phi.add_incoming(*walked)
        phi.add_incoming(slow_value, slow_end)
        return phi

    def _walked_load(self, width: int, address: Any, done: Any) -> tuple[Any, Any]:
        """A load that missed the TLB: walk the page tables in native code
        (``dbt_walk_read``) and load, or go on to the monitor's slow path
        where the builder stands when this returns.  (value, its block)."""
        b = self.b
        size = width // 8
        within = b.and_(address, const(I32, 0xFFF))
        walk = self.function.append_basic_block("ld_walk")
        walked = self.function.append_basic_block("ld_walked")
        monitor = self.function.append_basic_block("ld_monitor")
        b.cbranch(b.icmp_unsigned("<=", within, const(I32, 0x1000 - size)), walk, monitor)
        b.position_at_end(walk)
        page = b.call(self._function("dbt_walk_read", WALK_READ_TYPE, PRESERVING), convention=PRESERVING, arguments=[
            self.state, self._ptr(self.bind.ram, I8), const(I32, self.bind.ram_size),
            self._ptr(self.bind.read_tlb, I32), self._ptr(self.bind.fill_log, I32), address,
            const(I32, int(self.bind.user))])
        b.cbranch(b.icmp_unsigned("!=", page, const(I32, TLB_INVALID)), walked, monitor)
        b.position_at_end(walked)
        host = b.add(b.zext(page, I64), b.zext(within, I64))
        pointer = b.gep(self._ptr(self.bind.ram, I8), [host])
        value = b.load(b.bitcast(pointer, INT[width].as_pointer()), align=1)
        b.branch(done)
        b.position_at_end(monitor)
        return value, walked

    def _store(self, width: int, address: Any, value: Any) -> None:
        b = self.b
        size = width // 8
        hit, pointer = self._fast_path(self.bind.write_tlb, address, size)
        fast = self.function.append_basic_block("st_fast")
        slow = self.function.append_basic_block("st_slow")
        done = self.function.append_basic_block("st_done")
        b.cbranch(hit, fast, slow)
        b.position_at_end(fast)
        b.store(value, b.bitcast(pointer, INT[width].as_pointer()), align=1)
        b.branch(done)
        b.position_at_end(slow)
        wide = b.zext(value, I32) if width < 32 else value
        self._publish_block_start()
        status = self._call_back("dbt_call_slow_store", "dbt_slow_store", [address, const(I32, size), wide])
        self._interrupted(when=b.icmp_unsigned("!=", status, const(I32, 0)))
        b.branch(done)
        b.position_at_end(done)

    # -- helpers -------------------------------------------------------------------------------------
    def _call(self, inst: Inst) -> None:
        b = self.b
        helper: Helper = inst.aux
        args = [self.value(x) for x in inst.args]
        inline = self.inline_functions.get(helper.name)
        if inline is not None:
            # The flag helpers are inlined: where the region knows which
            # operation set the flags (a loop's back edge) LLVM folds the switch.
            self.used_inline.add(helper.name)
            self.values[inst.dst.index] = b.call(inline, args)  # type: ignore[union-attr]
            return
        if helper.reads_state or helper.writes_state:
            self._spill()
        wide = [b.zext(a, I64) if a.type.width < 64 else a for a in args]
        wide += [const(I64, 0)] * (4 - len(wide))
        exit_code = self._state_slot(Slot.EXIT_CODE)
        b.store(const(I32, 0), exit_code)
        self._publish_block_start()
        result = self._call_back("dbt_call_helper", "dbt_helper",
                                 [const(I32, self.bind.helper_ids[helper.name]), *wide])
        failed = b.icmp_unsigned("!=", b.load(exit_code), const(I32, 0))
        if helper.writes_state:
            self._interrupted_after_spill(when=failed)
            self._reload()
        else:
            self._interrupted(when=failed)
        if inst.dst is not None:
            self.values[inst.dst.index] = b.trunc(result, INT[inst.dst.width]) if inst.dst.width < 64 else result

    def _call_back(self, trampoline: str, callback: str, arguments: list[irtext.Value]) -> irtext.Value:
        """Call the callback into Python named ``callback`` (see
        ``Bindings.symbols``) through the runtime's register-preserving
        trampoline."""
        signature = TRAMPOLINES[trampoline]
        function = self._function(trampoline, _trampoline_type(signature), PRESERVING)
        return self.b.call(function, [*arguments, self._function(callback, signature)], convention=PRESERVING)

    def _publish_block_start(self) -> None:
        """Before a callback into Python: the state's budget slot says what
        was left when the current block began, so the monitor reads the
        instruction count at the block's start (a helper adds its index, as
        in the cold tier) -- the time a device or RDTSC sees.  Every way out
        of the region stores the true budget again."""
        block = self.current
        assert block is not None
        budget = self.b.load(self.slots[Slot.BUDGET])
        start = self.b.add(budget, const(I32, block.insn_count))
        self.b.store(start, self._state_slot(Slot.BUDGET))

    def _interrupted_after_spill(self, when: Any = None) -> None:
        # The helper may have changed the state; the block's handler in the
        # cold tier would restore the committed registers, which the spill
        # before the call stored: leave them as they are.
        self._leave(INTERRUPTED, const(I32, self.insn_address), kept=True, refund=self._unretired(), when=when,
                    exit_length=const(I32, self.current.lengths[self.insn_index]))  # type: ignore[union-attr]


def lower_ir_function(block: Block, params: tuple[Temp, ...], result: Value, name: str,
                      intrinsics: set[str]) -> Function:
    """An IR function with no state access (the flags helper's bodies) in LLVM."""
    function = Function(name, function_type(I32, [I32] * len(params)), linkage="internal")
    builder = Builder(function, function.append_basic_block("entry"), intrinsics)
    fake = RegionCompiler.__new__(RegionCompiler)
    fake.b = builder
    fake.values = {p.index: arg for p, arg in zip(params, function.args, strict=True)}
    for inst in block.insts:
        fake.values[inst.dst.index] = RegionCompiler._pure(fake, inst)  # type: ignore[arg-type, union-attr]
    value = RegionCompiler.value(fake, result)  # type: ignore[arg-type]
    builder.ret(value)
    return function


def flags_compute_function(intrinsics: set[str], inline: bool = False, flag: str | None = None) -> list[Function]:
    """flags_compute(cc_op, dst, src, src2) (or flag_<flag>) in LLVM: a
    switch over the per-kind bodies that ``dbt.lift.flags`` defines; the
    function first, then the bodies it calls."""
    from dbt.cpu.state import CcOp
    from dbt.lift.flags import flag_function, flags_function

    base = "flags_compute" if flag is None else f"flag_{flag}"
    name = f"dbt_inline_{base}" if inline else f"dbt_{base}"
    function = Function(name, function_type(I32, [I32, I32, I32, I32]), linkage="internal" if inline else "",
                        attributes="alwaysinline" if inline else "")
    cc_op, dst, src, src2 = function.args
    entry = function.append_basic_block("entry")
    otherwise = function.append_basic_block("unknown")
    builder = Builder(function, entry, intrinsics)
    switch = builder.switch(cc_op, otherwise)
    builder.position_at_end(otherwise)
    builder.ret(const(I32, 0))
    bodies = []
    for op in CcOp:
        if flag is None:
            block, params, result = flags_function(op.value)
        else:
            block, params, result = flag_function(op.value, flag)
        body = lower_ir_function(block, params, result, f"{name}_{op.name.lower()}", intrinsics)
        bodies.append(body)
        case = function.append_basic_block(f"case_{op.name.lower()}")
        switch.add_case(op.value, case)
        builder.position_at_end(case)
        builder.ret(builder.call(body, [dst, src, src2]))
    return [function, *bodies]


def region_names(regions: list[list[RegionBlock]]) -> list[str]:
    """Symbol names for a module's region functions.  Every module is linked
    in an engine of its own, so they need differ only within it; they are
    the same in every run, as the code cache needs."""
    return [f"guest_0x{region[0].pc:08x}_{index}" for index, region in enumerate(regions)]


def module_text(triple: str, bindings: Bindings, regions: list[list[RegionBlock]], names: list[str],
                identity_mapped: bool = False) -> str:
    """The LLVM IR of one module holding a function for each region."""
    # The flag helpers' bodies are the same in every module: rendered once,
    # the text of those the regions call is appended.
    inline = {name: Function(f"dbt_inline_{name}", function_type(I32, [I32] * 4)) for name in INLINE_HELPERS}
    intrinsics: set[str] = set()
    parts, used = [f'target triple = "{triple}"'], set()
    for region, name in zip(regions, names, strict=True):
        compiler = RegionCompiler(bindings, inline, region, name, identity_mapped, intrinsics)
        parts.append(compiler.compile().text())
        used |= compiler.used_inline
    for name in sorted(used):
        helper_intrinsics, text = _inline_text(name)
        intrinsics |= helper_intrinsics
        parts.append(text)
    return "\n\n".join([parts[0], *sorted(intrinsics), *parts[1:]]) + "\n"


def optimized_module(target: NativeTarget, text: str) -> llvm.ModuleRef:
    parsed = llvm.parse_assembly(text)
    target.optimize(parsed)
    return parsed


def _generated(target: NativeTarget, text: str, seconds: dict[str, float], cache: CodeCache | None) -> bytes:
    """The object code of a module's text: from the code cache if it has
    it, or optimized and generated now (and kept there)."""
    key = None
    if cache is not None:
        started = time.perf_counter()
        key = cache.key(text)
        code = cache.load(key)
        seconds["cache"] = time.perf_counter() - started
        if code is not None:
            return code
    started = time.perf_counter()
    parsed = optimized_module(target, text)
    optimized = time.perf_counter()
    code = target.machine.emit_object(parsed)
    seconds["optimize"] = optimized - started
    seconds["codegen"] = time.perf_counter() - optimized
    if cache is not None and key is not None:
        cache.store(key, code)
    return code


def compile_module(target: NativeTarget, bindings: Bindings, regions: list[list[RegionBlock]],
                   identity_mapped: bool = False, cache: CodeCache | None = None) -> list[CompiledRegion]:
    """Compile regions (each a list of blocks, head first) into one module,
    in this thread, in an engine of its own (see ``NativeTarget.own_engine``);
    with ``cache``, through the code cache.  (Object code linked into the
    engine, as the worker's is: measured as fast as handing MCJIT the
    module, 0.48 against 0.49 s for the compute guest's modules.)"""
    names = region_names(regions)
    code, seconds = object_code(target, bindings, regions, names, identity_mapped, cache)
    for step, value in seconds.items():
        COMPILE_TIMES[step] += value
    return load_object(target, code, regions, names, bindings, identity_mapped)


def object_code(target: NativeTarget, bindings: Bindings, regions: list[list[RegionBlock]], names: list[str],
                identity_mapped: bool = False, cache: CodeCache | None = None) -> tuple[bytes, dict[str, float]]:
    """A module's host object code (through ``cache`` if given), and the
    seconds each step took: what the compile worker does with a batch, and
    the monitor when it compiles itself."""
    started = time.perf_counter()
    text = module_text(target.triple, bindings, regions, names, identity_mapped)
    seconds = {"build": time.perf_counter() - started}
    return _generated(target, text, seconds, cache), seconds


def load_object(target: NativeTarget, code: bytes, regions: list[list[RegionBlock]], names: list[str],
                bindings: Bindings, identity_mapped: bool) -> list[CompiledRegion]:
    """Link a module's object code (generated in this process, by the
    compile worker, or from the code cache) in an engine of its own (see
    ``NativeTarget.own_engine``)."""
    engine = target.own_engine()
    engine.add_object_file(llvm.ObjectFileRef.from_data(code))
    _link(engine, bindings)
    return [CompiledRegion(name, region[0].pc, [block.pc for block in region], target=target,
                           address=engine.get_function_address(name), engine=engine,
                           source=(bindings, region, identity_mapped))
            for region, name in zip(regions, names, strict=True)]


COMPILE_TIMES = {"build": 0.0, "optimize": 0.0, "codegen": 0.0, "cache": 0.0}


INLINE_HELPERS = ("flags_compute", "flag_c", "flag_p", "flag_a", "flag_z", "flag_s", "flag_o")


def warm_up(target: NativeTarget) -> None:
    """Render what every module appends (the flag helpers) ahead of the first batch."""
    for name in INLINE_HELPERS:
        _inline_text(name)


@functools.lru_cache(maxsize=16)
def _inline_text(name: str) -> tuple[frozenset[str], str]:
    """The LLVM text of one inlinable flag helper and its per-kind bodies,
    and the intrinsics they declare."""
    intrinsics: set[str] = set()
    functions = flags_compute_function(intrinsics, inline=True, flag=None if name == "flags_compute" else name[-1])
    return frozenset(intrinsics), "\n\n".join(function.text() for function in functions)


def _function_text(text: str, name: str, assembly: bool = False) -> str:
    """One function's part of a module's LLVM IR or assembly listing."""
    lines = text.splitlines()
    start = None
    for index, line in enumerate(lines):
        if (assembly and line.startswith(f"{name}:")) or (not assembly and line.startswith("define") and f"@{name}(" in line):
            start = index
            break
    if start is None:
        return ""
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if assembly and (line.startswith(".Lfunc_end") or line.strip().startswith(".size")):
            break
        if not assembly and line.startswith("}"):
            end += 1
            break
        end += 1
    return "\n".join(lines[start:end])


def _assembly_size(assembly: str) -> int:
    """A size estimate for perf maps: instructions in the listing, 4 bytes each."""
    return 4 * sum(1 for line in assembly.splitlines() if line.startswith("\t") and not line.startswith("\t."))

