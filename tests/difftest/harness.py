"""Running a case on dbt and on Unicorn, and comparing the outcomes.

Unicorn maps exactly the code page and the data regions (so a stray access
is an error there); dbt's RAM outside those regions must stay all zeros (so a
stray store is caught there too).

How the two report exceptions (checked by ``test_exception_reporting``):
#DE, #BR and #UD are faults, EIP stays at the instruction; INT3 (#BP),
INTO (#OF) and INT n are traps, EIP points after the instruction.  Unicorn
delivers #DE/#BR/#BP/#OF/INT n through ``UC_HOOK_INTR`` with EIP as above,
and an invalid opcode as ``UC_ERR_INSN_INVALID`` with EIP at it; dbt's
SnippetRunner reports the same addresses, so EIP is compared as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

os.environ.setdefault("DBT_STRICT_LIFT", "1")

import capstone  # noqa: E402
from unicorn import UC_ARCH_X86, UC_HOOK_CODE, UC_HOOK_INTR, UC_MODE_32, Uc, UcError  # noqa: E402
from unicorn import unicorn_const as UC  # noqa: E402
from unicorn import x86_const as X  # noqa: E402

from dbt.cpu.state import IF, IOPL_MASK, Slot  # noqa: E402
from dbt.lift.env import TranslationEnv  # noqa: E402
from dbt.testing import SnippetRunner  # noqa: E402
from dbt.vmm.outcome import Ending  # noqa: E402

from . import semantics as S  # noqa: E402
from .cases import CODE, CODE_SIZE, REGIONS, Case  # noqa: E402

GENERAL = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
UC_REGS = (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX,
           X.UC_X86_REG_ESP, X.UC_X86_REG_EBP, X.UC_X86_REG_ESI, X.UC_X86_REG_EDI)
FAULTS = frozenset({0, 5, 6})  # vectors reported at the faulting instruction
VECTOR_NAMES = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 13: "#GP", 14: "#PF"}
MAX_INSNS = 20_000


@dataclass
class Outcome:
    registers: dict[str, int]  # eight general registers and eip
    eflags: int
    memory: dict[int, bytes]
    exception: int | None
    error: str | None = None  # the run did not end normally or by a guest exception
    trace: list[tuple[int, int]] = field(default_factory=list)  # (address, ECX before) per instruction


def vector_name(vector: int | None) -> str:
    if vector is None:
        return "none"
    return VECTOR_NAMES.get(vector, f"vector {vector}")


# -- Unicorn --------------------------------------------------------------------------------------
class UnicornSide:
    def __init__(self, regions=REGIONS, map_all: int | None = None, max_insns: int = MAX_INSNS) -> None:
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        self.max_insns = max_insns
        self.uc = uc
        if map_all:
            uc.mem_map(0, map_all)
            self.mapped = [(0, map_all)]
        else:
            uc.mem_map(CODE, CODE_SIZE)
            for base, size in regions:
                uc.mem_map(base, size)
            self.mapped = [(CODE, CODE_SIZE), *regions]
        self.regions = regions
        self._trace: list[tuple[int, int]] = []
        self._exception: int | None = None
        self.tracing = True
        self._guarded: int | None = None
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        code_range = (0, map_all - 1) if map_all else (CODE, CODE + CODE_SIZE - 1)
        uc.hook_add(UC_HOOK_CODE, self._on_code, begin=code_range[0], end=code_range[1])
        # Unicorn does not clear its record of an exception it reported through
        # the hook instead of delivering it: the next contributory exception
        # becomes #DF, the one after a triple fault that silently stops the CPU.
        # Every run starts from this fresh context.
        self._context = uc.context_save()

    def _on_interrupt(self, uc: Uc, vector: int, _data) -> None:
        self._exception = vector
        uc.emu_stop()

    def _on_code(self, uc: Uc, address: int, size: int, _data) -> None:
        if self.tracing:
            self._trace.append((address, uc.reg_read(X.UC_X86_REG_ECX)))
        if idiv_would_crash(uc, address, size):
            # QEMU's IDIV helpers divide on the host: INT_MIN / -1 kills the
            # process with SIGFPE.  The architectural result is #DE with
            # nothing changed, which is the state right now.
            self._guarded = address
            uc.emu_stop()

    def run(self, code: bytes, registers: dict[str, int], eflags: int, memory: dict[int, bytes],
            read_back=None, single_step: bool = False) -> Outcome:
        """Run ``code`` at CODE until its end.  ``single_step`` runs one
        instruction per ``emu_start``, so that no translation block holds
        more than one instruction (see DIFFERENCES.md, "Unicorn's lazy flags
        across a translation block")."""
        uc = self.uc
        uc.context_restore(self._context)
        self._trace = []
        self._exception = None
        self._guarded = None
        page = code + b"\xf4"
        uc.mem_write(CODE, page + bytes(CODE_SIZE - len(page)))
        for base, data in memory.items():
            uc.mem_write(base, data)
        uc.ctl_remove_cache(CODE, CODE + CODE_SIZE)
        for reg, name in zip(UC_REGS, GENERAL, strict=True):
            uc.reg_write(reg, registers.get(name, 0))
        uc.reg_write(X.UC_X86_REG_EFLAGS, eflags)
        error = None
        end = CODE + len(code)
        try:
            if single_step:
                pc = CODE
                for _ in range(self.max_insns):
                    uc.emu_start(pc, end, count=1)
                    pc = uc.reg_read(X.UC_X86_REG_EIP)
                    if pc == end or self._exception is not None or self._guarded is not None:
                        break
            else:
                uc.emu_start(CODE, end, count=self.max_insns)
        except UcError as exc:
            if exc.errno == UC.UC_ERR_INSN_INVALID:
                self._exception = 6
            else:
                error = f"Unicorn: {exc}"
        result = {name: uc.reg_read(reg) for reg, name in zip(UC_REGS, GENERAL, strict=True)}
        result["eip"] = uc.reg_read(X.UC_X86_REG_EIP)
        if self._guarded is not None and error is None:
            self._exception = 0
            result["eip"] = self._guarded
        if error is None and self._exception is None and result["eip"] != end:
            error = f"Unicorn stopped at {result['eip']:#x} (instruction limit?)"
        regions = read_back if read_back is not None else [(b, len(d)) for b, d in memory.items()]
        contents = {base: bytes(uc.mem_read(base, size)) for base, size in regions}
        return Outcome(result, uc.reg_read(X.UC_X86_REG_EFLAGS), contents, self._exception, error,
                       self._trace)


_PREFIXES = frozenset(b"\xf0\xf2\xf3\x2e\x36\x3e\x26\x64\x65\x66\x67")
_CS_DETAIL = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
_CS_DETAIL.detail = True
_CS_REG = {capstone.x86.X86_REG_EAX: X.UC_X86_REG_EAX, capstone.x86.X86_REG_ECX: X.UC_X86_REG_ECX,
           capstone.x86.X86_REG_EDX: X.UC_X86_REG_EDX, capstone.x86.X86_REG_EBX: X.UC_X86_REG_EBX,
           capstone.x86.X86_REG_ESP: X.UC_X86_REG_ESP, capstone.x86.X86_REG_EBP: X.UC_X86_REG_EBP,
           capstone.x86.X86_REG_ESI: X.UC_X86_REG_ESI, capstone.x86.X86_REG_EDI: X.UC_X86_REG_EDI,
           capstone.x86.X86_REG_AX: X.UC_X86_REG_AX, capstone.x86.X86_REG_CX: X.UC_X86_REG_CX,
           capstone.x86.X86_REG_DX: X.UC_X86_REG_DX, capstone.x86.X86_REG_BX: X.UC_X86_REG_BX,
           capstone.x86.X86_REG_SP: X.UC_X86_REG_SP, capstone.x86.X86_REG_BP: X.UC_X86_REG_BP,
           capstone.x86.X86_REG_SI: X.UC_X86_REG_SI, capstone.x86.X86_REG_DI: X.UC_X86_REG_DI}


def idiv_would_crash(uc: Uc, address: int, size: int) -> bool:
    """Whether the instruction at ``address`` is a 16- or 32-bit IDIV of the
    most negative dividend by -1 (which crashes QEMU's helper on the host)."""
    try:
        # (the hook's size is garbage, 0xf1f1f1f1, for an invalid instruction)
        raw = bytes(uc.mem_read(address, min(size, 15)))
    except UcError:
        return False
    i = 0
    while i < len(raw) and raw[i] in _PREFIXES:
        i += 1
    if i + 1 >= len(raw) or raw[i] != 0xF7 or (raw[i + 1] >> 3) & 7 != 7:
        return False
    insn = next(_CS_DETAIL.disasm(raw, address, 1), None)
    if insn is None or insn.mnemonic.split()[-1] != "idiv":
        return False
    op = insn.operands[0]
    width = op.size * 8
    if op.type == capstone.x86.X86_OP_REG:
        divisor = uc.reg_read(_CS_REG[op.reg])
    else:
        mem = op.mem
        ea = mem.disp
        if mem.base:
            ea += uc.reg_read(_CS_REG[mem.base])
        if mem.index:
            ea += uc.reg_read(_CS_REG[mem.index]) * mem.scale
        ea &= 0xFFFF if insn.addr_size == 2 else 0xFFFFFFFF
        try:
            divisor = int.from_bytes(uc.mem_read(ea, op.size), "little")
        except UcError:
            return False
    mask = (1 << width) - 1
    if divisor & mask != mask:
        return False
    high = uc.reg_read(X.UC_X86_REG_EDX) & mask
    low = uc.reg_read(X.UC_X86_REG_EAX) & mask
    return high == 1 << (width - 1) and low == 0


# -- dbt --------------------------------------------------------------------------------------------
class DbtSide:
    def __init__(self, max_insns: int = MAX_INSNS, jit: str = "off") -> None:
        self.runner = SnippetRunner(max_insns=max_insns, jit=jit)
        self.ram = self.runner.machine.memory.ram
        self.zero = bytearray(len(self.ram))
        self.accept_escalation = True
        self.escalations = 0  # exceptions that came back as triple faults

    def run(self, code: bytes, registers: dict[str, int], eflags: int, memory: dict[int, bytes],
            read_back=None, stray_check: bool = True) -> Outcome:
        regions = read_back if read_back is not None else [(b, len(d)) for b, d in memory.items()]
        error = None
        try:
            result = self.runner.run(code, registers, eflags, memory=memory, read_back=regions)
        except RuntimeError as exc:
            outcome = self.runner.machine.outcome
            details = outcome.details.get("traceback", "") if outcome else ""
            ending = outcome.ending if outcome else None
            machine = self.runner.machine
            regs = {name: machine.slots[i] for i, name in enumerate(GENERAL)}
            regs["eip"] = machine.slots[8]
            if ending is Ending.TRIPLE_FAULT and outcome.vector is not None and self.accept_escalation:
                # The snippet machine's IDT cannot deliver anything, so an exception
                # escalates to a triple fault instead of ending the run as an
                # unhandled exception (DIFFERENCES.md, section 4.3).  The state is
                # that of the first exception: read it and compare all of it.
                self.escalations += 1
                result = self._state(regions, outcome.vector, regs)
                return self._after(code, regions, result, None, stray_check)
            self._wipe()
            return Outcome(regs, 0, {}, None, f"dbt: {exc} ({ending}) {details}".strip())
        if result.lift_errors:
            error = f"dbt lift errors: {result.lift_errors}"
        outcome = Outcome(result.registers, self.guest_eflags(result.eflags), result.memory,
                          result.exception, None)
        return self._after(code, regions, outcome, error, stray_check)

    def guest_eflags(self, eflags: int) -> int:
        """EFLAGS as the guest sees it (as its PUSHF would store them).  When
        the monitor runs the guest deprivileged, the guest's IF and IOPL are
        virtual (slots VIF and VIOPL) and the real ones are the monitor's;
        SnippetRunner reports the real ones (DIFFERENCES.md, section 4.3)."""
        slots = self.runner.machine.slots
        if TranslationEnv(self.runner.machine.flags).mode == 0:
            return eflags
        eflags &= ~(IF | IOPL_MASK) & 0xFFFFFFFF
        return eflags | (IF if slots[Slot.VIF] else 0) | ((slots[Slot.VIOPL] & 3) << 12)

    def _state(self, regions, vector: int, registers: dict[str, int]) -> Outcome:
        machine = self.runner.machine
        memory = {base: bytes(self.ram[base:base + size]) for base, size in regions}
        return Outcome(registers, self.guest_eflags(machine.eflags()), memory, vector, None)

    def _after(self, code: bytes, regions, result: Outcome, error: str | None,
               stray_check: bool) -> Outcome:
        if stray_check:
            for base, size in regions:
                self.ram[base:base + size] = bytes(size)
            self.ram[CODE:CODE + len(code) + 1] = bytes(len(code) + 1)
            if self.ram != self.zero:
                where = next(i for i in range(len(self.ram)) if self.ram[i])
                error = (error or "") + f"dbt wrote outside the case's regions (first at {where:#x})"
                self._wipe()
        result.error = error
        return result

    def ending(self) -> Ending | None:
        outcome = self.runner.machine.outcome
        return outcome.ending if outcome else None

    def _wipe(self) -> None:
        self.ram[:] = self.zero


# -- analysis and comparison ----------------------------------------------------------------------------
@dataclass
class Analysis:
    undefined_flags: int = 0  # arithmetic flags undefined at the end
    undefined_regs: dict[str, int] = field(default_factory=dict)  # register -> undefined bits
    undefined_mem: set[int] = field(default_factory=set)  # undefined byte addresses
    problems: list[str] = field(default_factory=list)  # the case itself is unsound
    executed: list[str] = field(default_factory=list)


def analyse(case: Case, outcome: Outcome) -> Analysis:
    """The exact undefined state at the end, from Unicorn's instruction trace."""
    analysis = Analysis()
    trace = list(outcome.trace)
    if trace and outcome.exception in FAULTS and trace[-1][0] == outcome.registers["eip"]:
        trace = trace[:-1]  # the faulting instruction did not happen
    undefined = 0
    for address, ecx in trace:
        insn = case.insn_at(address)
        if insn is None:
            analysis.problems.append(f"executed {address:#x}, which is not an instruction start")
            continue
        analysis.executed.append(insn.text)
        reads, defined, undef, dest = S.dynamic_effect(insn.sem, ecx)
        if reads & undefined:
            analysis.problems.append(
                f"{insn.text} at {address:#x} read undefined {S.flag_names(reads & undefined)}")
        undefined = (undefined & ~defined) | undef
        if dest is not None:
            if dest[0] == "reg":
                name = GENERAL[dest[1]]
                analysis.undefined_regs[name] = analysis.undefined_regs.get(name, 0) | dest[2]
            else:
                analysis.undefined_mem.update(range(dest[1], dest[1] + dest[2]))
    analysis.undefined_flags = undefined
    return analysis


def compare(case: Case, dbt: Outcome, uni: Outcome, analysis: Analysis) -> list[str]:
    """The differences, as lines of text (empty when the outcomes agree)."""
    diffs: list[str] = []
    if dbt.error:
        diffs.append(dbt.error)
    if uni.error:
        diffs.append(uni.error)
    diffs += [f"case problem: {p}" for p in analysis.problems]
    if diffs:
        return diffs
    if dbt.exception != uni.exception:
        diffs.append(f"exception: dbt={vector_name(dbt.exception)} unicorn={vector_name(uni.exception)}")
    for name in (*GENERAL, "eip"):
        mask = 0xFFFFFFFF & ~analysis.undefined_regs.get(name, 0)
        a, b = dbt.registers[name], uni.registers[name]
        if (a ^ b) & mask:
            diffs.append(f"{name}: dbt={a:#010x} unicorn={b:#010x} (initial {case.registers.get(name, 0):#010x})")
    mask = 0xFFFFFFFF & ~analysis.undefined_flags
    if (dbt.eflags ^ uni.eflags) & mask:
        bits = (dbt.eflags ^ uni.eflags) & mask
        diffs.append(f"eflags: dbt={dbt.eflags:#010x} unicorn={uni.eflags:#010x} differ in {S.flag_names(bits)}"
                     f" ({bits:#x}); not compared: {S.flag_names(analysis.undefined_flags)}")
    for base, data in uni.memory.items():
        other = dbt.memory.get(base, b"")
        if other == data:
            continue
        initial = case.memory.get(base, b"")
        shown = 0
        for i, (x, y) in enumerate(zip(other, data, strict=False)):
            if x != y and base + i not in analysis.undefined_mem:
                if shown < 8:
                    was = f" (initial {initial[i]:02x})" if i < len(initial) else ""
                    diffs.append(f"memory {base + i:#x}: dbt={x:02x} unicorn={y:02x}{was}")
                shown += 1
        if shown > 8:
            diffs.append(f"... {shown - 8} more differing bytes in the region at {base:#x}")
    return diffs


def listing(case: Case) -> list[str]:
    return [f"  {i.address:#07x}: {i.raw.hex(' '):<32} {i.text}" for i in case.insns]


def describe(case: Case, diffs: list[str], analysis: Analysis | None = None, limit: int = 12) -> str:
    regs = " ".join(f"{n}={case.registers[n]:#010x}" for n in GENERAL)
    lines = [f"case {case.key}   (re-run: .venv/bin/python -m tests.difftest.replay "
             f"{case.family} {case.seed} {case.index})",
             f"  code: {case.code.hex(' ')}", *listing(case),
             f"  initial: {regs}",
             f"  eflags={case.eflags:#010x} ({S.flag_names(case.eflags)}); memory: regions "
             + ", ".join(f"{b:#x}+{len(d):#x}" for b, d in case.memory.items())
             + " filled from the case's random generator"]
    if analysis is not None and analysis.executed:
        lines.append(f"  executed: {' ; '.join(analysis.executed[:40])}")
    lines.append("  differences:")
    lines += [f"    {d}" for d in diffs[:limit]]
    if len(diffs) > limit:
        lines.append(f"    ... and {len(diffs) - limit} more")
    return "\n".join(lines)


class Harness:
    """Both sides, kept for a whole test session (one per worker process)."""

    def __init__(self, jit: str = "off") -> None:
        self.dbt = DbtSide(jit=jit)
        self.unicorn = UnicornSide()
        self.read_back = [(base, size) for base, size in REGIONS]
        self.block_flag_bugs: list[str] = []  # cases where only single-stepped Unicorn agreed

    def run_case(self, case: Case) -> tuple[list[str], Analysis, Outcome, Outcome]:
        """Run both sides and compare.  When they disagree, Unicorn runs the case
        again one instruction at a time; if that agrees with dbt, the
        disagreement was Unicorn's flag bug across translation blocks and the
        case passes (counted in ``self.block_flag_bugs``)."""
        uni = self.unicorn.run(case.unicorn_code, case.registers, case.eflags, case.memory,
                               self.read_back)
        dbt = self.dbt.run(case.code, case.registers, case.eflags, case.memory, self.read_back)
        analysis = analyse(case, uni)
        diffs = compare(case, dbt, uni, analysis)
        if diffs and not dbt.error:
            stepped = self.unicorn.run(case.unicorn_code, case.registers, case.eflags, case.memory,
                                       self.read_back, single_step=True)
            stepped_analysis = analyse(case, stepped)
            if not compare(case, dbt, stepped, stepped_analysis):
                self.block_flag_bugs.append(case.key)
                return [], stepped_analysis, dbt, stepped
            diffs.append("(Unicorn run one instruction at a time disagrees with dbt too)")
        return diffs, analysis, dbt, uni
