"""Test cases and the machinery every generator shares: the memory layout, the
initial state, register roles, memory operands, and sequence building.

A case is reproducible from (family, seed, index): all randomness comes from
``random.Random(f"{family}/{seed}/{index}")``.

Register roles within one case:

* *pointers* hold values that no instruction of the case changes, so every
  memory operand's address is known when it is generated (the displacement
  is chosen to land in a mapped region whatever the pointer values are);
* *reserved* registers are changed only by the family's own instructions
  (ESI/EDI/ECX in the string family, for instance), never by fillers;
* ESP is changed only by stack instructions and is tracked exactly;
* the rest are free: any instruction may overwrite them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from . import semantics as S
from .encode import (
    EBP,
    ESP,
    Mem,
    Reg,
    check,
    fits8,
    imm,
    mem16,
    mem32,
    reg_name,
    signed16,
    signed32,
)

CODE = 0x1000
CODE_SIZE = 0x1000
# Data regions (address, size).  LOW is reachable with 16-bit addressing.
LOW = (0x2000, 0x6000)
DATA = (0x10000, 0x3000)
STACK = (0x30000, 0x1000)
REGIONS = (LOW, DATA, STACK)
STACK_TOP_MARGIN = 0x100  # bytes kept above and below the tracked ESP
MASK32 = 0xFFFFFFFF

SPECIAL = (0, 1, 2, 3, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x100, 0x7FFE, 0x7FFF, 0x8000, 0x8001,
           0xFFFE, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF)


class Retry(Exception):
    """This instruction (or case) cannot be generated here; try another."""


@dataclass
class Insn:
    raw: bytes
    text: str
    sem: tuple = S.NONE
    writes: frozenset = frozenset()  # 32-bit registers written, explicitly or implicitly
    terminal: bool = False  # may leave an undefined result: nothing may follow it
    # Control flow (labels are instruction indices; len(insns) is the end).
    rel: tuple | None = None  # (position of the displacement, size, target label, o16)
    absolute: tuple | None = None  # (position, size, target label): an address in the bytes
    succ: tuple | None = None  # successors for the flag analysis; None: falls through
    offset: int = 0
    # What Unicorn runs instead (same length), where it has a known bug with
    # these bytes and an equivalent encoding avoids it (see DIFFERENCES.md).
    unicorn_raw: bytes | None = None
    ebp_value: int | None = None  # EBP afterwards, when the generator knows it (ENTER)

    @property
    def address(self) -> int:
        return CODE + self.offset


@dataclass
class Case:
    family: str
    seed: int
    index: int
    insns: list[Insn]
    registers: dict[str, int]
    eflags: int
    memory: dict[int, bytes]
    notes: list[str] = field(default_factory=list)

    @property
    def code(self) -> bytes:
        return b"".join(i.raw for i in self.insns)

    @property
    def unicorn_code(self) -> bytes:
        return b"".join(i.unicorn_raw or i.raw for i in self.insns)

    @property
    def key(self) -> str:
        return f"{self.family}/{self.seed}/{self.index}"

    def insn_at(self, address: int) -> Insn | None:
        for insn in self.insns:
            if insn.address == address:
                return insn
        return None


def random_value(rng: random.Random, width: int = 32) -> int:
    r = rng.random()
    if r < 0.5:
        value = rng.getrandbits(32)
    elif r < 0.7:
        value = rng.choice(SPECIAL)
    elif r < 0.85:
        # a special value in the low bits of a random register
        low = rng.choice(SPECIAL) & rng.choice((0xFF, 0xFFFF))
        value = (rng.getrandbits(32) & ~0xFFFF) | low
        if low <= 0xFF and rng.random() < 0.5:
            value = (value & ~0xFF00) | (rng.getrandbits(8) << 8)
    else:
        value = rng.getrandbits(rng.choice((2, 4, 8, 12, 16)))
        if rng.random() < 0.3:
            value = -value
    return value & ((1 << width) - 1)


def random_flags(rng: random.Random) -> int:
    flags = 0x2
    for bit in (S.CF, S.PF, S.AF, S.ZF, S.SF, S.OF):
        if rng.random() < 0.5:
            flags |= bit
    if rng.random() < 0.3:
        flags |= 0x400  # DF
    return flags


class Gen:
    """The state of one case under construction."""

    def __init__(self, rng: random.Random, family: str) -> None:
        self.rng = rng
        self.family = family
        self.regs = [random_value(rng) for _ in range(8)]
        self.regs[ESP] = STACK[0] + 0x800 + rng.randrange(-0x100, 0x100, 4)
        if rng.random() < 0.1:
            self.regs[ESP] += rng.choice((1, 2, 3))
        self.esp: int | None = self.regs[ESP]  # tracked; None when unknown
        self.ebp_known: int | None = None  # EBP's value when known (stack family)
        self.ptrs: set[int] = set()
        self.reserved: set[int] = set()
        self.eflags = random_flags(rng)
        self.memory = {base: bytearray(rng.randbytes(size)) for base, size in REGIONS}
        self.insns: list[Insn] = []
        self.undefined = 0  # flags that may be undefined here (static, linear)
        self.addr16 = 0.15  # chance of a 16-bit address for a memory operand
        self.mem_chance = 0.4  # chance of a memory operand where one may be used
        self.notes: list[str] = []
        self.written: set[int] = set()  # registers written so far
        self.force_lock = False  # lock every memory destination (the misc family's LOCK forms)
        self.string16 = False  # string instructions use 16-bit addresses (SI, DI, CX)

    # -- registers ------------------------------------------------------------------
    def choose_pointers(self, count: int, exclude: set[int] = frozenset(), in_region: float = 0.6) -> None:
        """Make ``count`` registers pointers (never written in this case)."""
        candidates = [r for r in range(8) if r != ESP and r not in exclude and r not in self.reserved]
        self.rng.shuffle(candidates)
        for reg in candidates[:count]:
            self.ptrs.add(reg)
            if self.rng.random() < in_region:
                # BX, BP, SI and DI also serve 16-bit addresses: sometimes in LOW
                base, size = self.rng.choice((LOW, DATA)) if reg in (3, 5, 6, 7) else DATA
                value = base + self.rng.randrange(0, size)
                if self.rng.random() < 0.3:
                    value |= self.rng.getrandbits(16) << 16  # 16-bit addresses ignore the top
                self.regs[reg] = value & MASK32

    def free_regs(self, width: int = 32, extra_ok: set[int] = frozenset()) -> list[int]:
        """Register numbers (in the encoding of ``width``) that may be written."""
        blocked = (self.ptrs | self.reserved | {ESP}) - set(extra_ok)
        if width == 8:
            return [n for n in range(8) if (n & 3) not in blocked]
        return [n for n in range(8) if n not in blocked]

    def dst_reg(self, width: int, extra_ok: set[int] = frozenset()) -> Reg:
        choices = self.free_regs(width, extra_ok)
        if not choices:
            raise Retry("no free register")
        return Reg(self.rng.choice(choices), width)

    def src_reg(self, width: int) -> Reg:
        return Reg(self.rng.randrange(8), width)

    def width(self, w8: float = 0.3, w16: float = 0.3) -> int:
        r = self.rng.random()
        return 8 if r < w8 else 16 if r < w8 + w16 else 32

    def osize(self, width: int) -> bytes:
        return b"\x66" if width == 16 else b""

    # -- memory -----------------------------------------------------------------------
    def poke(self, address: int, data: bytes) -> None:
        for base, size in REGIONS:
            if base <= address and address + len(data) <= base + size:
                region = self.memory[base]
                region[address - base:address - base + len(data)] = data
                return
        raise AssertionError(f"poke outside the regions: {address:#x}")

    def peek(self, address: int, length: int) -> bytes:
        for base, size in REGIONS:
            if base <= address and address + length <= base + size:
                return bytes(self.memory[base][address - base:address - base + length])
        raise AssertionError(f"peek outside the regions: {address:#x}")

    def target(self, size: int, region: tuple[int, int] | None = None, margin: int = 0) -> int:
        """A random address where ``size`` bytes fit, ``margin`` bytes from the edges."""
        base, length = region or self.rng.choice((DATA, DATA, LOW))
        return base + margin + self.rng.randrange(0, length - size - 2 * margin)

    def mem(self, size: int, write: bool = False, addr16: bool | None = None, region=None,
            margin: int = 0, address: int | None = None) -> Mem:
        """A memory operand of ``size`` bytes somewhere in the data regions."""
        rng = self.rng
        if addr16 is None:
            addr16 = rng.random() < self.addr16
        if addr16:
            if address is None:
                address = self.target(size, LOW, margin)
            return self._mem16(address)
        if address is None:
            address = self.target(size, region, margin)
        return self._mem32(address)

    def _mem32(self, address: int) -> Mem:
        rng = self.rng
        regs = dict(enumerate(self.regs))
        bases: list[int | None] = list(self.ptrs) + [None]
        if self.esp is not None:
            bases.append(ESP)
            regs[ESP] = self.esp
        indexes: list[int | None] = [r for r in self.ptrs if r != ESP] + [None, None]
        base = rng.choice(bases)
        index = rng.choice(indexes)
        scale = rng.choice((1, 2, 4, 8))
        total = (regs[base] if base is not None else 0) + (regs[index] * scale if index is not None else 0)
        disp = (address - total) & MASK32
        if fits8(signed32(disp)):
            disp_size = rng.choice((1, 4)) if disp else rng.choice((0, 1, 4))
        else:
            disp_size = 4
        return mem32(base, index, scale, disp, disp_size, regs)

    def _mem16(self, address: int) -> Mem:
        rng = self.rng
        regs = dict(enumerate(self.regs))
        forms = [(6, 0)]  # [disp16]
        for rm, (base, index) in ((0, (3, 6)), (1, (3, 7)), (2, (5, 6)), (3, (5, 7)), (4, (None, 6)),
                                  (5, (None, 7)), (6, (5, None)), (7, (3, None))):
            if all(r is None or r in self.ptrs for r in (base, index)):
                forms.append((rm, None))
        rm, mod = rng.choice(forms)
        if mod == 0:
            return mem16(6, 0, address & 0xFFFF, regs)
        from .encode import RM16

        base, index = RM16[rm]
        total = sum(regs[r] & 0xFFFF for r in (base, index) if r is not None)
        disp = (address - total) & 0xFFFF
        if disp == 0 and rm != 6 and rng.random() < 0.5:
            mod = 0
        elif -128 <= signed16(disp) <= 127:
            mod = rng.choice((1, 2))
        else:
            mod = 2
        if mod == 1:
            disp &= 0xFF
        return mem16(rm, mod, disp, regs)

    def rm(self, width: int, write: bool, mem_chance: float | None = None, **mem_args) -> Reg | Mem:
        chance = self.mem_chance if mem_chance is None else mem_chance
        if self.rng.random() < chance:
            return self.mem(width // 8, write=write, **mem_args)
        return self.dst_reg(width) if write else self.src_reg(width)

    def segment_prefix(self, write: bool) -> bytes:
        """Sometimes a segment override (all segments are flat; CS only for reads)."""
        if self.rng.random() < 0.06:
            choices = b"\x26\x36\x3e\x64\x65" + (b"" if write else b"\x2e")
            return bytes([self.rng.choice(choices)])
        return b""

    # -- instructions ------------------------------------------------------------------
    def make(self, expect, *, prefix: bytes = b"", opcode: bytes, rm: Reg | Mem | None = None,
             field: int = 0, tail: bytes = b"", sem: tuple = S.NONE, writes=(),
             mem_write: bool = False, terminal: bool = False, owner: bool = False) -> Insn:
        """Build and check one instruction.  ``rm``/``field`` give the ModRM byte;
        ``writes`` the 32-bit registers it changes.  ``owner``: the family's own
        instruction, which may change reserved registers."""
        body = b""
        pre = prefix
        if rm is not None:
            body = rm.modrm(field)
            if isinstance(rm, Mem):
                pre = pre + self.segment_prefix(mem_write) + rm.prefix
        raw = pre + opcode + body + tail
        text = check(raw, expect)
        writes = frozenset(writes)
        bad = writes & (self.ptrs | (set() if owner else self.reserved | {ESP}))
        if bad:
            raise Retry(f"{text} would change {sorted(bad)}")
        return Insn(raw, text, sem, writes, terminal)

    def add(self, insn: Insn) -> None:
        """Append an instruction, keeping the flag analysis (linear code)."""
        reads, defined, undefined = S.static_effect(insn.sem)
        if reads & self.undefined:
            raise Retry(f"{insn.text} would read undefined {S.flag_names(reads & self.undefined)}")
        self.undefined = (self.undefined & ~defined) | undefined
        if EBP in insn.writes:
            self.ebp_known = insn.ebp_value
        self.insns.append(insn)
        self.written |= insn.writes

    def cond(self) -> int:
        """A condition code whose flags are all defined here."""
        codes = [c for c in range(16) if not S.condition_reads(c) & self.undefined]
        if not codes:
            raise Retry("every condition reads an undefined flag")
        return self.rng.choice(codes)

    # -- finishing ---------------------------------------------------------------------------
    def layout(self) -> None:
        """Place the instructions, resolve branch displacements and addresses."""
        offset = 0
        for insn in self.insns:
            insn.offset = offset
            offset += len(insn.raw)
        if offset + 1 > CODE_SIZE:
            raise Retry("code too long")
        ends = [i.offset for i in self.insns] + [offset]
        for insn in self.insns:
            raw = bytearray(insn.raw)
            if insn.rel is not None:
                position, size, label, o16 = insn.rel
                target = CODE + ends[label]
                disp = target - (insn.address + len(raw))
                if size == 1 and not fits8(disp):
                    raise Retry("short branch out of range")
                raw[position:position + size] = imm(disp, size)
            if insn.absolute is not None:
                position, size, label = insn.absolute
                raw[position:position + size] = imm(CODE + ends[label], size)
            if insn.rel is not None or insn.absolute is not None:
                insn.raw = bytes(raw)
                insn.text = check(insn.raw, None, insn.address)

    def flow_check(self) -> None:
        """The flag analysis over the control-flow graph: no instruction may read
        a flag that is undefined on some path to it."""
        count = len(self.insns)
        incoming = [None] * (count + 1)
        incoming[0] = 0
        work = [0]
        while work:
            index = work.pop()
            if index >= count:
                continue
            insn = self.insns[index]
            reads, defined, undefined = S.static_effect(insn.sem)
            state = incoming[index]
            if reads & state:
                raise Retry(f"{insn.text} may read undefined {S.flag_names(reads & state)}")
            out = (state & ~defined) | undefined
            successors = insn.succ if insn.succ is not None else (index + 1,)
            for successor in successors:
                merged = out if incoming[successor] is None else incoming[successor] | out
                if merged != incoming[successor]:
                    incoming[successor] = merged
                    work.append(successor)

    def case(self, seed: int, index: int) -> Case:
        registers = {reg_name(n, 32): v & MASK32 for n, v in enumerate(self.regs)}
        return Case(self.family, seed, index, self.insns, registers, self.eflags,
                    {base: bytes(data) for base, data in self.memory.items()}, self.notes)


def mov_imm(g: Gen, reg: int, value: int, width: int = 32, owner: bool = True) -> Insn:
    """MOV reg, imm (B0+r / B8+r) -- the set-up instruction generators use."""
    if width == 8:
        return g.make("mov", opcode=bytes([0xB0 + reg]), tail=imm(value, 1), writes={reg & 3},
                      owner=owner)
    return g.make("mov", prefix=g.osize(width), opcode=bytes([0xB8 + reg]),
                  tail=imm(value, width // 8), writes={reg}, owner=owner)


def ebp_unused(g: Gen) -> bool:
    return EBP not in g.ptrs
