"""The instruction families of the campaign and their generators.

Every generator takes a ``Gen`` and returns the instructions it wants appended
(a few set-up MOVs may precede the instruction of interest); it raises
``Retry`` when the instruction cannot be placed in this case (a register it
would change is a pointer, a flag it reads may be undefined, ...).

A family is a set-up function (register roles, initial values, memory) and
weighted generators; a case is 1-6 picks, most from the family, some from
the filler pool, so that flags flow between instructions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from . import semantics as S
from .cases import (
    CODE,
    DATA,
    LOW,
    MASK32,
    SPECIAL,
    STACK,
    Case,
    Gen,
    Insn,
    Retry,
    mov_imm,
    random_value,
)
from .encode import EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP, Mem, Reg, imm

ALU_NAMES = ("add", "or", "adc", "sbb", "and", "sub", "xor", "cmp")
ALU_SEM = {"add": S.ARITH, "sub": S.ARITH, "cmp": S.ARITH, "adc": S.CARRY_ARITH,
           "sbb": S.CARRY_ARITH, "and": S.LOGIC, "or": S.LOGIC, "xor": S.LOGIC}
COND = S.CONDITION_NAMES
SHIFT_FIELD = {"rol": 0, "ror": 1, "rcl": 2, "rcr": 3, "shl": 4, "shr": 5, "sal": 6, "sar": 7}
COUNTS = (0, 1, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 18, 24, 31, 32, 33, 63, 0x80, 0xFF)


def imm_value(rng: random.Random, size: int) -> int:
    return random_value(rng, 8 * size)


def writes_of(op, write: bool = True) -> set[int]:
    return {op.base_reg} if write and isinstance(op, Reg) else set()


def lock_prefix(g: Gen, op, chance: float = 0.2) -> bytes:
    if not isinstance(op, Mem):
        return b""
    return b"\xf0" if g.force_lock or g.rng.random() < chance else b""


# -- arithmetic and logic -----------------------------------------------------------------
def alu(g: Gen, names=ALU_NAMES, lock: float = 0.2) -> list[Insn]:
    rng = g.rng
    name = rng.choice(names)
    n = ALU_NAMES.index(name)
    w = g.width()
    osz = g.osize(w)
    stores = name != "cmp"
    sem = ALU_SEM[name]
    form = rng.choice(("rm_r", "r_rm", "acc_imm", "rm_imm", "rm_imm"))
    if form == "rm_r":
        dst = g.rm(w, write=stores)
        src = g.src_reg(w)
        pre = (lock_prefix(g, dst, lock) if stores else b"") + osz
        return [g.make(name, prefix=pre, opcode=bytes([(n << 3) | (w != 8)]), rm=dst, field=src.num,
                       sem=sem, writes=writes_of(dst, stores), mem_write=stores)]
    if form == "r_rm":
        dst = g.dst_reg(w) if stores else g.src_reg(w)
        src = g.rm(w, write=False)
        if isinstance(src, Reg) and rng.random() < 0.15:
            src = Reg(dst.num, w)  # xor r, r / sub r, r idioms
        return [g.make(name, prefix=osz, opcode=bytes([(n << 3) | 2 | (w != 8)]), rm=src,
                       field=dst.num, sem=sem, writes=writes_of(dst, stores))]
    if form == "acc_imm":
        size = min(w, 32) // 8
        return [g.make(name, prefix=osz, opcode=bytes([(n << 3) | 4 | (w != 8)]),
                       tail=imm(imm_value(rng, size), size), sem=sem,
                       writes={EAX} if stores else set())]
    dst = g.rm(w, write=stores)
    pre = (lock_prefix(g, dst, lock) if stores else b"") + osz
    if w == 8:
        opcode = b"\x82" if rng.random() < 0.1 else b"\x80"
        tail = imm(imm_value(rng, 1), 1)
    elif rng.random() < 0.5:
        opcode, tail = b"\x83", imm(imm_value(rng, 1), 1)
    else:
        opcode, tail = b"\x81", imm(imm_value(rng, w // 8), w // 8)
    return [g.make(name, prefix=pre, opcode=opcode, rm=dst, field=n, tail=tail, sem=sem,
                   writes=writes_of(dst, stores), mem_write=stores)]


def arith(g: Gen) -> list[Insn]:
    return alu(g, ("add", "adc", "sub", "sbb", "cmp"))


def logic_alu(g: Gen) -> list[Insn]:
    return alu(g, ("and", "or", "xor"))


def incdec(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(("inc", "dec"))
    w = g.width()
    if w != 8 and rng.random() < 0.4:
        dst = g.dst_reg(w)
        return [g.make(name, prefix=g.osize(w), opcode=bytes([(0x40 if name == "inc" else 0x48) + dst.num]),
                       sem=S.INCDEC, writes={dst.num})]
    dst = g.rm(w, write=True)
    return [g.make(name, prefix=lock_prefix(g, dst) + g.osize(w), opcode=b"\xfe" if w == 8 else b"\xff",
                   rm=dst, field=0 if name == "inc" else 1, sem=S.INCDEC, writes=writes_of(dst),
                   mem_write=True)]


def unary(g: Gen, name: str) -> list[Insn]:
    w = g.width()
    dst = g.rm(w, write=True)
    field = {"not": 2, "neg": 3}[name]
    insn = g.make(name, prefix=lock_prefix(g, dst) + g.osize(w), opcode=b"\xf6" if w == 8 else b"\xf7",
                  rm=dst, field=field, sem=S.ARITH if name == "neg" else S.NONE,
                  writes=writes_of(dst), mem_write=True)
    if name == "neg" and insn.raw[0] == 0xF0:
        # Unicorn's LOCK NEG sets the flags from the old value: it runs the
        # instruction without LOCK (a DS prefix keeps the length; a later
        # segment prefix still wins).  DIFFERENCES.md, "LOCK NEG".
        insn.unicorn_raw = b"\x3e" + insn.raw[1:]
    return [insn]


def neg(g: Gen) -> list[Insn]:
    return unary(g, "neg")


def not_(g: Gen) -> list[Insn]:
    return unary(g, "not")


def test(g: Gen) -> list[Insn]:
    rng = g.rng
    w = g.width()
    osz = g.osize(w)
    form = rng.choice(("rm_r", "acc_imm", "rm_imm"))
    if form == "rm_r":
        return [g.make("test", prefix=osz, opcode=b"\x84" if w == 8 else b"\x85", rm=g.rm(w, False),
                       field=g.src_reg(w).num, sem=S.LOGIC)]
    if form == "acc_imm":
        return [g.make("test", prefix=osz, opcode=b"\xa8" if w == 8 else b"\xa9",
                       tail=imm(imm_value(rng, w // 8), w // 8), sem=S.LOGIC)]
    field = 1 if rng.random() < 0.1 else 0
    insn = g.make("test", prefix=osz, opcode=b"\xf6" if w == 8 else b"\xf7", rm=g.rm(w, False),
                  field=field, tail=imm(imm_value(rng, w // 8), w // 8), sem=S.LOGIC)
    if field == 1:
        # F6/F7 /1 is an alias of TEST /0 on Intel and AMD processors; Unicorn
        # raises #UD for it, so Unicorn runs the /0 encoding.  DIFFERENCES.md.
        insn.unicorn_raw = alias_to_canonical(insn.raw)
    return [insn]


def alias_to_canonical(raw: bytes) -> bytes:
    """The bytes of an F6/F7 /1 instruction with the ModRM reg field set to 0."""
    i = 0
    while raw[i] in (0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65):
        i += 1
    assert raw[i] in (0xF6, 0xF7) and (raw[i + 1] >> 3) & 7 == 1
    return raw[:i + 1] + bytes([raw[i + 1] & ~0x38]) + raw[i + 2:]


def as_ud2(raw: bytes) -> bytes:
    """UD2 padded to the length of ``raw``: what Unicorn runs for an
    instruction the SDM says raises #UD but Unicorn executes."""
    return b"\x0f\x0b" + raw[2:]


# -- multiplication and division ----------------------------------------------------------------
def mul1(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(("mul", "imul"))
    w = g.width()
    src = g.rm(w, write=False)
    out = []
    if rng.random() < 0.3:  # make the high half zero or a sign extension sometimes
        acc = g.free_regs(32)
        if EAX in acc:
            out.append(mov_imm(g, EAX, rng.choice(SPECIAL) if rng.random() < 0.5 else rng.getrandbits(w // 2), owner=False))
    out.append(g.make(name, prefix=g.osize(w), opcode=b"\xf6" if w == 8 else b"\xf7", rm=src,
                      field=4 if name == "mul" else 5, sem=S.MUL,
                      writes={EAX} if w == 8 else {EAX, EDX}))
    return out


def imul_n(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.4 else 32
    dst = g.dst_reg(w)
    src = g.rm(w, write=False)
    form = rng.choice(("2", "imm8", "imm"))
    if form == "2":
        return [g.make("imul", prefix=g.osize(w), opcode=b"\x0f\xaf", rm=src, field=dst.num,
                       sem=S.MUL, writes={dst.num})]
    if form == "imm8":
        return [g.make("imul", prefix=g.osize(w), opcode=b"\x6b", rm=src, field=dst.num,
                       tail=imm(imm_value(rng, 1), 1), sem=S.MUL, writes={dst.num})]
    return [g.make("imul", prefix=g.osize(w), opcode=b"\x69", rm=src, field=dst.num,
                   tail=imm(imm_value(rng, w // 8), w // 8), sem=S.MUL, writes={dst.num})]


def _divisor_value(rng: random.Random, w: int, signed: bool) -> int:
    m = 1 << w
    while True:
        d = random_value(rng, w) if rng.random() < 0.7 else rng.randrange(1, 1 << rng.randrange(1, w + 1))
        if signed and rng.random() < 0.4:
            d = (-d) & (m - 1)
        if d & (m - 1):
            return d & (m - 1)


def division_values(rng: random.Random, w: int, signed: bool) -> tuple[int, int]:
    """(dividend of 2w bits, divisor of w bits): mostly quotients that fit,
    some that overflow by a little, some divisors of zero."""
    m = 1 << w
    r = rng.random()
    if r < 0.06:
        return rng.getrandbits(2 * w), 0
    d = _divisor_value(rng, w, signed)
    if not signed:
        if r < 0.8:
            q = random_value(rng, w) if rng.random() < 0.5 else rng.randrange(m)
            rem = rng.randrange(d)
        else:
            q, rem = m + rng.choice((0, 0, 1, rng.randrange(m))), rng.randrange(d)
        return (q * d + rem) % (m * m), d
    sd = d - m if d >= m // 2 else d
    half = m // 2
    if r < 0.8:
        q = rng.choice((rng.randrange(-half, half), -half, half - 1, 0, -1, 1))
    elif r < 0.9:
        q = rng.choice((half, -half - 1, half + 1))  # just out of range
    else:
        return (1 << (2 * w - 1)), m - 1  # the most negative dividend by -1
    rem = rng.randrange(abs(sd))
    product = q * sd
    if product < 0 or (product == 0 and rng.random() < 0.5):
        rem = -rem
    dividend = product + rem
    return dividend % (m * m), d


def divide(g: Gen) -> list[Insn]:
    rng = g.rng
    signed = rng.random() < 0.5
    name = "idiv" if signed else "div"
    w = g.width(0.25, 0.3)
    divisor = g.rm(w, write=False)
    out: list[Insn] = []
    if rng.random() < 0.75:
        dividend, d = division_values(rng, w, signed)
        if w == 8:
            out.append(g.make("mov", prefix=b"\x66", opcode=b"\xb8", tail=imm(dividend, 2),
                              writes={EAX}))
        else:
            out.append(mov_imm(g, EDX, dividend >> w, w, owner=False))
            out.append(mov_imm(g, EAX, dividend & ((1 << w) - 1), w, owner=False))
        if isinstance(divisor, Mem):
            g.poke(divisor.address, imm(d, w // 8))
        elif divisor.base_reg not in (EAX, EDX) and divisor.base_reg in g.free_regs(32):
            out.append(mov_imm(g, divisor.num, d, w, owner=False))
    out.append(g.make(name, prefix=g.osize(w), opcode=b"\xf6" if w == 8 else b"\xf7", rm=divisor,
                      field=7 if signed else 6, sem=S.DIV, writes={EAX} if w == 8 else {EAX, EDX}))
    return out


# -- decimal adjustment -------------------------------------------------------------------------
def bcd_digits(rng: random.Random) -> int:
    return (rng.randrange(10) << 4) | rng.randrange(10)


def bcd(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(("daa", "das", "aaa", "aas", "aam", "aad"))
    out: list[Insn] = []
    if name in ("daa", "das", "aaa", "aas") and rng.random() < 0.5:
        # a realistic preparation: AL from an addition or subtraction of (packed or unpacked) BCD
        packed = name in ("daa", "das")
        first = bcd_digits(rng) if packed else rng.randrange(10) | (rng.randrange(16) << 8)
        if rng.random() < 0.2:
            first = rng.getrandbits(16)
        out.append(g.make("mov", prefix=b"\x66", opcode=b"\xb8", tail=imm(first, 2), writes={EAX}))
        op = rng.choice(("add", "adc") if name in ("daa", "aaa") else ("sub", "sbb"))
        second = bcd_digits(rng) if packed else rng.randrange(10)
        n = ALU_NAMES.index(op)
        out.append(g.make(op, opcode=bytes([(n << 3) | 4]), tail=imm(second, 1), sem=ALU_SEM[op],
                          writes={EAX}))
    if name in ("aam", "aad"):
        r = rng.random()
        base = 10 if r < 0.6 else 0 if r < 0.7 else rng.randrange(256)
        opcode = b"\xd4" if name == "aam" else b"\xd5"
        out.append(g.make(name, opcode=opcode, tail=bytes([base]), sem=S.AAM, writes={EAX}))
    else:
        opcode = {"daa": b"\x27", "das": b"\x2f", "aaa": b"\x37", "aas": b"\x3f"}[name]
        out.append(g.make(name, opcode=opcode, sem=S.DAA if name in ("daa", "das") else S.AAA,
                          writes={EAX}))
    return out


# -- shifts and rotates ------------------------------------------------------------------------
def shift(g: Gen, names=tuple(SHIFT_FIELD)) -> list[Insn]:
    rng = g.rng
    name = rng.choice(names)
    w = g.width()
    dst = g.rm(w, write=True)
    kind = "rot" if name in ("rol", "ror", "rcl", "rcr") else "shift"
    form = rng.choice(("1", "imm", "imm", "cl", "cl"))
    out: list[Insn] = []
    base = 0xD0 if form == "1" else 0xC0 if form == "imm" else 0xD2
    opcode = bytes([base + (w != 8)])
    tail = b""
    if form == "1":
        count: int | str = 1
    elif form == "imm":
        count = rng.choice(COUNTS) if rng.random() < 0.7 else rng.randrange(256)
        tail = bytes([count])
    else:
        count = "cl"
        if rng.random() < 0.3 and ECX in g.free_regs(32):
            out.append(g.make("mov", opcode=b"\xb1", tail=bytes([rng.choice(COUNTS)]), writes={ECX}))
    out.append(g.make(name, prefix=g.osize(w), opcode=opcode, rm=dst, field=SHIFT_FIELD[name],
                      tail=tail, sem=(kind, name, w, count), writes=writes_of(dst), mem_write=True))
    return out


def rotate(g: Gen) -> list[Insn]:
    return shift(g, ("rol", "ror", "rcl", "rcr"))


def plain_shift(g: Gen) -> list[Insn]:
    return shift(g, ("shl", "shr", "sal", "sar"))


def double_shift(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(("shld", "shrd"))
    w = 16 if rng.random() < 0.45 else 32
    dst = g.rm(w, write=True)
    src = g.src_reg(w)
    out: list[Insn] = []
    if rng.random() < 0.5:
        count: int | str = rng.choice(COUNTS) if rng.random() < 0.7 else rng.randrange(256)
        opcode = b"\x0f\xa4" if name == "shld" else b"\x0f\xac"
        tail = bytes([count])
    else:
        count = "cl"
        opcode = b"\x0f\xa5" if name == "shld" else b"\x0f\xad"
        tail = b""
        if rng.random() < 0.3 and ECX in g.free_regs(32):
            out.append(g.make("mov", opcode=b"\xb1", tail=bytes([rng.choice(COUNTS)]), writes={ECX}))
    dest = ("reg", dst.base_reg, 0xFFFF) if isinstance(dst, Reg) else ("mem", dst.address, 2)
    terminal = w == 16 and (count == "cl" or (count & 31) > 16)
    out.append(g.make(name, prefix=g.osize(w), opcode=opcode, rm=dst, field=src.num, tail=tail,
                      sem=("shd", name, w, count, dest), writes=writes_of(dst), mem_write=True,
                      terminal=terminal))
    return out


# -- bit operations -----------------------------------------------------------------------------
BT_FIELD = {"bt": 4, "bts": 5, "btr": 6, "btc": 7}
BT_OPCODE = {"bt": 0xA3, "bts": 0xAB, "btr": 0xB3, "btc": 0xBB}


def bit_test(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(tuple(BT_FIELD))
    w = 16 if rng.random() < 0.35 else 32
    write = name != "bt"
    osz = g.osize(w)
    form = rng.choice(("reg_reg", "mem_reg", "mem_reg", "reg_imm", "mem_imm"))
    if form == "reg_reg":
        base = g.dst_reg(w) if write else g.src_reg(w)
        offset = g.src_reg(w)
        return [g.make(name, prefix=osz, opcode=bytes([0x0F, BT_OPCODE[name]]), rm=base,
                       field=offset.num, sem=S.BT, writes=writes_of(base, write))]
    if form in ("reg_imm", "mem_imm"):
        base = g.dst_reg(w) if write and form == "reg_imm" else g.src_reg(w) if form == "reg_imm" \
            else g.mem(w // 8, write=write)
        pre = (lock_prefix(g, base) if write else b"") + osz
        return [g.make(name, prefix=pre, opcode=b"\x0f\xba", rm=base, field=BT_FIELD[name],
                       tail=bytes([rng.randrange(256)]), sem=S.BT, writes=writes_of(base, write),
                       mem_write=write)]
    # memory base with a register offset: the offset reaches outside the operand
    offset_reg = g.dst_reg(32)
    r = rng.random()
    if r < 0.4:
        bit = rng.randrange(w)
    elif r < 0.75:
        bit = rng.randrange(-64, 64)
    else:
        bit = rng.randrange(-0x7000, 0x7000)
    size = w // 8
    word = (bit >> (w.bit_length() - 1)) * size
    out = []
    value = bit & 0xFFFFFFFF
    if w == 16:
        value = (rng.getrandbits(16) << 16) | (bit & 0xFFFF)  # only the low half counts
    out.append(mov_imm(g, offset_reg.num, value, owner=False))
    addr16 = rng.random() < 0.2
    if addr16:
        access = LOW[0] + 0x1000 + rng.randrange(0, 0x3000)
        mem = g._mem16((access - word) & 0xFFFF)
    else:
        access = DATA[0] + 0x1000 + rng.randrange(0, 0x1000 - size)
        mem = g._mem32((access - word) & MASK32)
    pre = (lock_prefix(g, mem) if write else b"") + osz
    out.append(g.make(name, prefix=pre, opcode=bytes([0x0F, BT_OPCODE[name]]), rm=mem,
                      field=offset_reg.num, sem=S.BT, mem_write=write))
    return out


def bit_scan(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(("bsf", "bsr"))
    w = 16 if rng.random() < 0.4 else 32
    dst = g.dst_reg(w)
    src = g.rm(w, write=False)
    out = []
    r = rng.random()
    value = 0 if r < 0.3 else (1 << rng.randrange(w)) if r < 0.5 else None
    if value is not None:
        if isinstance(src, Mem):
            g.poke(src.address, imm(value, w // 8))
        elif src.base_reg in g.free_regs(32) and src.base_reg != dst.base_reg:
            out.append(mov_imm(g, src.num, value, w, owner=False))
    out.append(g.make(name, prefix=g.osize(w), opcode=b"\x0f\xbc" if name == "bsf" else b"\x0f\xbd",
                      rm=src, field=dst.num, sem=S.BSF, writes={dst.num}))
    return out


# -- data movement ---------------------------------------------------------------------------------
def mov(g: Gen) -> list[Insn]:
    rng = g.rng
    w = g.width()
    osz = g.osize(w)
    form = rng.choice(("rm_r", "r_rm", "r_imm", "rm_imm", "moffs"))
    if form == "rm_r":
        dst = g.rm(w, write=True)
        return [g.make("mov", prefix=osz, opcode=b"\x88" if w == 8 else b"\x89", rm=dst,
                       field=g.src_reg(w).num, writes=writes_of(dst), mem_write=True)]
    if form == "r_rm":
        dst = g.dst_reg(w)
        return [g.make("mov", prefix=osz, opcode=b"\x8a" if w == 8 else b"\x8b", rm=g.rm(w, False),
                       field=dst.num, writes={dst.base_reg})]
    if form == "r_imm":
        dst = g.dst_reg(w)
        return [mov_imm(g, dst.num, imm_value(rng, w // 8), w, owner=False)]
    if form == "rm_imm":
        dst = g.rm(w, write=True)
        return [g.make("mov", prefix=osz, opcode=b"\xc6" if w == 8 else b"\xc7", rm=dst,
                       tail=imm(imm_value(rng, w // 8), w // 8), writes=writes_of(dst), mem_write=True)]
    store = rng.random() < 0.5
    opcode = bytes([0xA0 + (2 if store else 0) + (w != 8)])
    if rng.random() < 0.2:
        address = g.target(w // 8, LOW)
        pre, tail = b"\x67", imm(address, 2)
    else:
        address = g.target(w // 8)
        pre, tail = b"", imm(address, 4)
    seg = g.segment_prefix(store)
    return [g.make("mov", prefix=seg + osz + pre, opcode=opcode, tail=tail,
                   writes=set() if store else {EAX})]


def movx(g: Gen) -> list[Insn]:
    rng = g.rng
    name = rng.choice(("movzx", "movsx"))
    src_w = 8 if rng.random() < 0.6 else 16
    dst_w = 16 if rng.random() < 0.3 else 32
    dst = g.dst_reg(dst_w)
    opcode = {("movzx", 8): 0xB6, ("movzx", 16): 0xB7, ("movsx", 8): 0xBE, ("movsx", 16): 0xBF}[(name, src_w)]
    return [g.make(name, prefix=g.osize(dst_w), opcode=bytes([0x0F, opcode]), rm=g.rm(src_w, False),
                   field=dst.num, writes={dst.num})]


def xchg(g: Gen) -> list[Insn]:
    rng = g.rng
    w = g.width()
    osz = g.osize(w)
    if w != 8 and rng.random() < 0.3:
        other = g.dst_reg(w)
        if EAX not in g.free_regs(32) or other.num == 0:
            raise Retry("xchg eax needs eax")
        return [g.make("xchg", prefix=osz, opcode=bytes([0x90 + other.num]), writes={EAX, other.num})]
    first = g.rm(w, write=True)
    second = g.dst_reg(w)
    pre = lock_prefix(g, first) + osz
    return [g.make("xchg", prefix=pre, opcode=b"\x86" if w == 8 else b"\x87", rm=first, field=second.num,
                   writes=writes_of(first) | {second.base_reg}, mem_write=True)]


def bswap(g: Gen) -> list[Insn]:
    dst = g.dst_reg(32)
    if g.rng.random() < 0.15:
        # BSWAP of a 16-bit register: the SDM says the result is undefined.
        return [g.make("bswap", prefix=b"\x66", opcode=bytes([0x0F, 0xC8 + dst.num]),
                       sem=("undef_dest", ("reg", dst.num, 0xFFFF)), writes={dst.num}, terminal=True)]
    return [g.make("bswap", opcode=bytes([0x0F, 0xC8 + dst.num]), writes={dst.num})]


def lea(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.25 else 32
    dst = g.dst_reg(w)
    if rng.random() < 0.3:
        mem = g._mem16(rng.getrandbits(16))
    else:
        mem = g._mem32(rng.getrandbits(32))  # never accessed: any address will do
    return [g.make("lea", prefix=g.osize(w), opcode=b"\x8d", rm=mem, field=dst.num, writes={dst.num})]


def convert(g: Gen) -> list[Insn]:
    name = g.rng.choice(("cbw", "cwde", "cwd", "cdq"))
    opcode = b"\x98" if name in ("cbw", "cwde") else b"\x99"
    prefix = b"\x66" if name in ("cbw", "cwd") else b""
    return [g.make(name, prefix=prefix, opcode=opcode, writes={EAX} if opcode == b"\x98" else {EDX})]


def lahf_sahf(g: Gen) -> list[Insn]:
    if g.rng.random() < 0.5:
        return [g.make("lahf", opcode=b"\x9f", sem=S.LAHF, writes={EAX})]
    return [g.make("sahf", opcode=b"\x9e", sem=S.SAHF)]


def setcc(g: Gen) -> list[Insn]:
    code = g.cond()
    dst = g.rm(8, write=True)
    field = g.rng.randrange(8) if g.rng.random() < 0.1 else 0  # the reg field is ignored
    return [g.make("set" + COND[code], opcode=bytes([0x0F, 0x90 + code]), rm=dst, field=field,
                   sem=S.COND(code), writes=writes_of(dst), mem_write=True)]


def cmovcc(g: Gen) -> list[Insn]:
    code = g.cond()
    w = 16 if g.rng.random() < 0.35 else 32
    dst = g.dst_reg(w)
    return [g.make("cmov" + COND[code], prefix=g.osize(w), opcode=bytes([0x0F, 0x40 + code]),
                   rm=g.rm(w, False), field=dst.num, sem=S.COND(code), writes={dst.num})]


def xlat(g: Gen) -> list[Insn]:
    if EBX not in g.ptrs:
        raise Retry("xlat needs ebx as a pointer")
    rng = g.rng
    ebx = g.regs[EBX]
    use16 = LOW[0] <= (ebx & 0xFFFF) and (ebx & 0xFFFF) + 256 <= LOW[0] + LOW[1]
    use32 = any(b <= ebx and ebx + 256 <= b + s for b, s in (LOW, DATA, STACK))
    if use16 and (not use32 or rng.random() < 0.5):
        return [g.make("xlatb", prefix=g.segment_prefix(False) + b"\x67", opcode=b"\xd7", writes={EAX})]
    if use32:
        return [g.make("xlatb", prefix=g.segment_prefix(False), opcode=b"\xd7", writes={EAX})]
    raise Retry("ebx does not point at a table")


# -- exchange and compare ------------------------------------------------------------------------
def xadd(g: Gen) -> list[Insn]:
    w = g.width()
    dst = g.rm(w, write=True)
    src = g.dst_reg(w)
    return [g.make("xadd", prefix=lock_prefix(g, dst) + g.osize(w),
                   opcode=b"\x0f\xc0" if w == 8 else b"\x0f\xc1", rm=dst, field=src.num, sem=S.ARITH,
                   writes=writes_of(dst) | {src.base_reg}, mem_write=True)]


def cmpxchg(g: Gen) -> list[Insn]:
    rng = g.rng
    w = g.width()
    if EAX not in g.free_regs(32):
        raise Retry("cmpxchg changes eax")
    dst = g.rm(w, write=True)
    src = g.src_reg(w)
    out = []
    if rng.random() < 0.5:  # make the comparison succeed
        value = random_value(rng, w)
        if isinstance(dst, Mem):
            g.poke(dst.address, imm(value, w // 8))
            out.append(mov_imm(g, EAX, value, w, owner=False))
        elif dst.base_reg != EAX:
            out.append(mov_imm(g, EAX, value, w, owner=False))
            out.append(mov_imm(g, dst.num, value, w, owner=False))
    out.append(g.make("cmpxchg", prefix=lock_prefix(g, dst) + g.osize(w),
                      opcode=b"\x0f\xb0" if w == 8 else b"\x0f\xb1", rm=dst, field=src.num,
                      sem=S.ARITH, writes=writes_of(dst) | {EAX}, mem_write=True))
    return out


def cmpxchg8b(g: Gen) -> list[Insn]:
    rng = g.rng
    if {EAX, EDX} - set(g.free_regs(32)):
        raise Retry("cmpxchg8b changes eax and edx")
    mem = g.mem(8, write=True)
    out = []
    if rng.random() < 0.5:
        low, high = random_value(rng), random_value(rng)
        g.poke(mem.address, imm(low, 4) + imm(high, 4))
        out += [mov_imm(g, EAX, low, owner=False), mov_imm(g, EDX, high, owner=False)]
    out.append(g.make("cmpxchg8b", prefix=lock_prefix(g, mem, 0.3), opcode=b"\x0f\xc7", rm=mem,
                      field=1, sem=S.CMPXCHG8B, writes={EAX, EDX}, mem_write=True))
    return out


# -- the stack ----------------------------------------------------------------------------------------
def _stack_room(g: Gen, below: int, above: int = 0) -> int:
    """The tracked ESP, if ``below`` bytes under it and ``above`` over it are in the stack region."""
    if g.esp is None:
        raise Retry("esp unknown")
    if g.esp - below < STACK[0] + 0x40 or g.esp + above > STACK[0] + STACK[1] - 0x40:
        raise Retry("stack out of room")
    return g.esp


def push(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.25 else 32
    size = w // 8
    _stack_room(g, size)
    osz = g.osize(w)
    form = rng.choice(("reg", "reg", "rm_reg", "imm8", "imm", "mem", "mem"))
    if form == "reg":
        insn = g.make("push", prefix=osz, opcode=bytes([0x50 + rng.randrange(8)]), writes={ESP}, owner=True)
    elif form == "rm_reg":
        insn = g.make("push", prefix=osz, opcode=b"\xff", rm=g.src_reg(w), field=6, writes={ESP}, owner=True)
    elif form == "imm8":
        insn = g.make("push", prefix=osz, opcode=b"\x6a", tail=imm(imm_value(rng, 1), 1), writes={ESP}, owner=True)
    elif form == "imm":
        insn = g.make("push", prefix=osz, opcode=b"\x68", tail=imm(imm_value(rng, size), size), writes={ESP},
                      owner=True)
    else:
        if rng.random() < 0.4:  # an operand near the top of the stack, addressed through ESP
            mem = g._mem32(g.esp + rng.randrange(-8, 24))
        else:
            mem = g.mem(size)
        insn = g.make("push", prefix=osz, opcode=b"\xff", rm=mem, field=6, writes={ESP}, owner=True)
    g.esp -= size
    return [insn]


def pop(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.25 else 32
    size = w // 8
    esp = _stack_room(g, 0, size)
    osz = g.osize(w)
    form = rng.choice(("reg", "reg", "rm_reg", "mem", "mem"))
    if form in ("reg", "rm_reg"):
        if rng.random() < 0.05 and not g.ptrs:
            num = ESP  # POP ESP: ESP becomes the popped value
        else:
            num = g.dst_reg(w).num
        if form == "reg":
            insn = g.make("pop", prefix=osz, opcode=bytes([0x58 + num]), writes={ESP, num}, owner=True,
                          terminal=num == ESP)
        else:
            insn = g.make("pop", prefix=osz, opcode=b"\x8f", rm=Reg(num, w), writes={ESP, num},
                          owner=True, terminal=num == ESP)
        if num == EBP:
            g.ebp_known = None
    else:
        g.esp = esp + size  # an ESP-based destination is computed after the increment
        try:
            if rng.random() < 0.4:
                mem = g._mem32(esp + rng.randrange(-8, 24))
            else:
                mem = g.mem(size, write=True)
        finally:
            g.esp = esp
        insn = g.make("pop", prefix=osz, opcode=b"\x8f", rm=mem, writes={ESP}, owner=True, mem_write=True)
    g.esp = None if insn.terminal else esp + size
    return [insn]


def pusha_popa(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.3 else 32
    size = w // 8
    if rng.random() < 0.5:
        _stack_room(g, 8 * size)
        insn = g.make("pushal" if w == 32 else "pushaw", prefix=g.osize(w), opcode=b"\x60",
                      writes={ESP}, owner=True)
        g.esp -= 8 * size
        return [insn]
    esp = _stack_room(g, 0, 8 * size)
    every = {r for r in range(8) if r != ESP}
    insn = g.make("popal" if w == 32 else "popaw", prefix=g.osize(w), opcode=b"\x61",
                  writes=every | {ESP}, owner=True)
    g.esp = esp + 8 * size
    g.ebp_known = None
    return [insn]


def enter_leave(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.2 else 32
    size = w // 8
    if EBP in g.ptrs:
        raise Retry("ebp is a pointer")
    if rng.random() < 0.5:
        level_byte = rng.choice((0, 0, 1, 2, 3, 4)) if rng.random() < 0.9 else rng.randrange(256)
        level = level_byte & 31
        allocation = rng.choice((0, 4, 8, 0x10, 0x22, rng.randrange(0x100)))
        esp = _stack_room(g, size * (level + 1) + allocation)
        if level > 1:
            if g.ebp_known is None:
                raise Retry("enter with a nesting level needs a known ebp")
            low = g.ebp_known - size * (level - 1)
            if low < STACK[0] or g.ebp_known > STACK[0] + STACK[1]:
                raise Retry("enter would copy frames from outside the stack")
        insn = g.make("enter", prefix=g.osize(w), opcode=b"\xc8", tail=imm(allocation, 2) + bytes([level_byte]),
                      writes={ESP, EBP}, owner=True)
        frame = esp - size
        g.esp = frame - size * level - allocation
        insn.ebp_value = frame
        return [insn]
    ebp = g.ebp_known
    if ebp is None or not (STACK[0] + 0x40 <= ebp <= STACK[0] + STACK[1] - 0x40):
        raise Retry("leave needs ebp in the stack")
    insn = g.make("leave", prefix=g.osize(w), opcode=b"\xc9", writes={ESP, EBP}, owner=True)
    g.esp = ebp + size
    g.ebp_known = None
    return [insn]


# IOPL NT AC ID, then bits POPF must ignore (reserved, RF, VM, VIF, VIP); TF is
# set separately, more rarely.  Not IF:
# with IF set the HLT that ends a snippet waits for dbt's timer (DIFFERENCES.md).
EFLAGS_OTHER = (0x1000, 0x2000, 0x4000, 0x40000, 0x200000,
                0x8, 0x20, 0x8000, 0x10000, 0x20000, 0x80000, 0x100000, 0x400000, 0x80000000)


def popf_value(rng: random.Random) -> int:
    value = 0
    for bit in (S.CF, S.PF, S.AF, S.ZF, S.SF, S.OF, 0x400):
        if rng.random() < 0.5:
            value |= bit
    for bit in EFLAGS_OTHER:
        if rng.random() < 0.15:
            value |= bit
    if rng.random() < 0.5:
        value |= 0x2
    if rng.random() < 0.1:
        value |= 0x100  # TF: #DB (a trap) after the next instruction
    return value  # IF (0x200) stays clear


def pushf_popf(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.25 else 32
    size = w // 8
    osz = g.osize(w)
    esp = _stack_room(g, size)
    r = rng.random()
    if r < 0.35:
        g.esp = esp - size
        return [g.make("pushfd" if w == 32 else "pushf", prefix=osz, opcode=b"\x9c", sem=S.PUSHF,
                       writes={ESP}, owner=True)]
    if r < 0.55:  # PUSHF; POPF round trip
        out = [g.make("pushfd" if w == 32 else "pushf", prefix=osz, opcode=b"\x9c", sem=S.PUSHF,
                      writes={ESP}, owner=True)]
    else:
        value = popf_value(rng)
        out = [g.make("push", prefix=osz, opcode=b"\x68", tail=imm(value, size), writes={ESP}, owner=True)]
    out.append(g.make("popfd" if w == 32 else "popf", prefix=osz, opcode=b"\x9d", sem=S.POPF,
                      writes={ESP}, owner=True))
    return out


# -- strings ----------------------------------------------------------------------------------
STRING_OPCODE = {"movs": 0xA4, "cmps": 0xA6, "stos": 0xAA, "lods": 0xAC, "scas": 0xAE}


def string_op(g: Gen) -> list[Insn]:
    rng = g.rng
    kind = rng.choice(tuple(STRING_OPCODE))
    w = g.width(0.4, 0.25)
    suffix = {8: "b", 16: "w", 32: "d"}[w]
    opcode = bytes([STRING_OPCODE[kind] + (w != 8)])
    r = rng.random()
    rep = b"" if r < 0.3 else b"\xf3" if r < 0.7 else b"\xf2"
    addr16 = g.string16
    prefix = rep + (g.segment_prefix(False) if kind in ("movs", "lods", "cmps") else b"") + g.osize(w)
    if addr16:
        prefix += b"\x67"
    out = []
    if rep and rng.random() < 0.3:
        count = rng.choice((0, 1, 2, 3, 5, 8, 12))
        if addr16:
            out.append(g.make("mov", prefix=b"\x66", opcode=b"\xb9", tail=imm(count, 2), writes={ECX}, owner=True))
        else:
            out.append(mov_imm(g, ECX, count))
    writes = {"movs": {ESI, EDI}, "cmps": {ESI, EDI}, "stos": {EDI}, "lods": {ESI, EAX}, "scas": {EDI}}[kind]
    if rep:
        writes = writes | {ECX}
    if kind in ("cmps", "scas"):
        sem = ("repcmp", 16 if addr16 else 32) if rep else S.ARITH
    else:
        sem = S.NONE
    out.append(g.make(kind + suffix, prefix=prefix, opcode=opcode, sem=sem, writes=writes, owner=True))
    return out


def direction(g: Gen) -> list[Insn]:
    if g.rng.random() < 0.5:
        return [g.make("cld", opcode=b"\xfc")]
    return [g.make("std", opcode=b"\xfd")]


# -- miscellaneous ----------------------------------------------------------------------------
def nop(g: Gen) -> list[Insn]:
    rng = g.rng
    r = rng.random()
    if r < 0.25:
        return [g.make("nop", opcode=b"\x90")]
    if r < 0.35:
        return [g.make("nop", prefix=b"\x66", opcode=b"\x90")]
    if r < 0.45:
        return [g.make("pause", prefix=b"\xf3", opcode=b"\x90")]
    # 0F 1F /0: a memory operand that is never accessed (any address)
    w = 16 if rng.random() < 0.3 else 32
    mem = g._mem16(rng.getrandbits(16)) if rng.random() < 0.2 else g._mem32(rng.getrandbits(32))
    return [g.make("nop", prefix=g.osize(w), opcode=b"\x0f\x1f", rm=mem)]


def flag_control(g: Gen) -> list[Insn]:
    name = g.rng.choice(("clc", "stc", "cmc", "cld", "std"))
    opcode = {"clc": 0xF8, "stc": 0xF9, "cmc": 0xF5, "cld": 0xFC, "std": 0xFD}[name]
    sem = {"clc": S.CLC_STC, "stc": S.CLC_STC, "cmc": S.CMC}.get(name, S.NONE)
    return [g.make(name, opcode=bytes([opcode]), sem=sem)]


def software_interrupt(g: Gen) -> list[Insn]:
    rng = g.rng
    r = rng.random()
    if r < 0.3:
        return [g.make("int3", opcode=b"\xcc")]
    if r < 0.7:
        return [g.make("into", opcode=b"\xce", sem=S.INTO)]
    if r < 0.8:
        return [g.make("ud2", opcode=b"\x0f\x0b")]
    vector = rng.choice((0, 1, 3, 4, 5, 7, 8, 13, 14, 0x20, 0x21, 0x80, 0xFF, rng.randrange(256)))
    if vector == 6:
        # Unicorn reports INT 6 as the #UD fault (EIP at the instruction), not
        # as a software interrupt (EIP after it).  DIFFERENCES.md, "INT 6".
        vector = 7
    return [g.make("int", opcode=b"\xcd", tail=bytes([vector]))]


def bound(g: Gen) -> list[Insn]:
    rng = g.rng
    w = 16 if rng.random() < 0.35 else 32
    size = w // 8
    mem = g.mem(2 * size)
    reg = g.dst_reg(w)
    index = random_value(rng, w)
    out = [mov_imm(g, reg.num, index, w, owner=False)]
    m = 1 << w

    def signed(v: int) -> int:
        return v - m if v >= m // 2 else v

    si = signed(index)
    r = rng.random()
    if r < 0.5:  # inside
        lower = rng.randrange(-m // 2, si + 1)
        upper = rng.randrange(si, m // 2)
    elif r < 0.65:  # on the edges
        lower, upper = si, si
    elif r < 0.8:
        lower, upper = si + 1, max(si + 1, m // 2 - 1)
    else:
        lower, upper = -m // 2, si - 1 if si > -m // 2 else si
    lower = max(min(lower, m // 2 - 1), -m // 2)
    upper = max(min(upper, m // 2 - 1), -m // 2)
    g.poke(mem.address, imm(lower, size) + imm(upper, size))
    out.append(g.make("bound", prefix=g.osize(w), opcode=b"\x62", rm=mem, field=reg.num))
    return out


def locked(g: Gen) -> list[Insn]:
    """LOCK with a memory destination; sometimes where LOCK is not allowed (#UD).
    Capstone rejects most invalid LOCK forms (so dbt's decoder gives #UD);
    their expected mnemonic is None."""
    rng = g.rng
    r = rng.random()
    if r < 0.75:
        make = rng.choice((alu, incdec, neg, not_, xadd, cmpxchg, xchg, bit_test, cmpxchg8b))
        saved = g.mem_chance
        g.force_lock, g.mem_chance = True, 1.0
        try:
            for _ in range(10):
                insns = make(g)
                if insns[-1].raw[:1] == b"\xf0":
                    return insns
        finally:
            g.force_lock, g.mem_chance = False, saved
        raise Retry("no locked form drawn")
    w = g.width()
    mem = g.mem(w // 8, write=True)
    choice = rng.choice(("mov", "cmp", "test", "bt", "reg", "inc_reg", "xchg_reg"))
    osz = g.osize(w)
    # Unicorn executes LOCK MOV/TEST/BT and LOCK XCHG reg, reg instead of
    # raising #UD: it runs a UD2 of the same length (DIFFERENCES.md, "LOCK").
    if choice == "mov":
        insn = g.make(None, prefix=b"\xf0" + osz, opcode=b"\x88" if w == 8 else b"\x89", rm=mem,
                      field=g.src_reg(w).num, mem_write=True)
        insn.unicorn_raw = as_ud2(insn.raw)
        return [insn]
    if choice == "cmp":
        return [g.make(None, prefix=b"\xf0" + osz, opcode=b"\x38" if w == 8 else b"\x39", rm=mem,
                       field=g.src_reg(w).num, sem=S.ARITH)]
    if choice == "test":
        insn = g.make(None, prefix=b"\xf0" + osz, opcode=b"\x84" if w == 8 else b"\x85", rm=mem,
                      field=g.src_reg(w).num, sem=S.LOGIC)
        insn.unicorn_raw = as_ud2(insn.raw)
        return [insn]
    if choice == "bt":
        if rng.random() < 0.5:
            insn = g.make(None, prefix=b"\xf0", opcode=b"\x0f\xba", rm=g.mem(4), field=4,
                          tail=bytes([rng.randrange(32)]), sem=S.BT)
        else:
            # BT m32, EAX: #UD before any access, so EAX's value does not matter
            insn = g.make(None, prefix=b"\xf0", opcode=b"\x0f\xa3", rm=g.mem(4), field=0, sem=S.BT)
        insn.unicorn_raw = as_ud2(insn.raw)
        return [insn]
    if choice == "xchg_reg":
        first, second = g.dst_reg(w), g.dst_reg(w)
        insn = g.make(None, prefix=b"\xf0" + osz, opcode=b"\x86" if w == 8 else b"\x87", rm=first,
                      field=second.num, writes={first.base_reg, second.base_reg})
        insn.unicorn_raw = as_ud2(insn.raw)
        return [insn]
    # A register destination cannot be locked (Capstone rejects some of these: None).
    if choice == "reg":
        dst = g.dst_reg(w)
        return [g.make(None, prefix=b"\xf0" + osz, opcode=b"\x00" if w == 8 else b"\x01", rm=dst,
                       field=g.src_reg(w).num, sem=S.ARITH, writes={dst.base_reg})]
    dst = g.dst_reg(32)
    return [g.make(None, prefix=b"\xf0", opcode=b"\xff", rm=dst, field=0, sem=S.INCDEC,
                   writes={dst.num})]


# -- control flow --------------------------------------------------------------------------------
@dataclass
class Label:
    index: int | None = None


def control_case(g: Gen) -> None:
    """Build a whole control-flow case: 1-3 templates in a row, each with
    forward branches, calls, returns or a short counted loop; the targets are
    inside the snippet or at its end."""
    rng = g.rng
    g.esp = None  # ESP differs along the paths: no ESP-based operands here
    items: list[tuple[Insn, Label | None]] = []  # instruction and its rel/absolute target
    labels: list[tuple[Label, int]] = []
    fixups: list[tuple[int, int, Label]] = []  # memory words that hold a label's address
    succ: dict[int, list] = {}

    def here() -> Label:
        label = Label(len(items))
        return label

    def emit(insns: list[Insn], target: Label | None = None) -> None:
        for insn in insns[:-1]:
            items.append((insn, None))
        items.append((insns[-1], target))

    def filler(n: int) -> None:
        for _ in range(n):
            for _attempt in range(20):
                try:
                    make = rng.choice(CONTROL_FILLERS)
                    insns = make(g)
                    for insn in insns:
                        reads, defined, undefined = S.static_effect(insn.sem)
                        g.undefined = (g.undefined & ~defined) | undefined
                    emit(insns)
                    break
                except Retry:
                    continue

    def branch(kind: str, target: Label, cond: int | None = None, o16: bool = False) -> Insn:
        """A relative branch with a zero displacement, patched at layout."""
        pre = b"\x66" if o16 else b""
        if kind == "jcc8":
            insn = g.make("j" + COND[cond], prefix=pre, opcode=bytes([0x70 + cond]), tail=b"\0",
                          sem=S.COND(cond))
            size = 1
        elif kind == "jcc":
            insn = g.make("j" + COND[cond], prefix=pre, opcode=bytes([0x0F, 0x80 + cond]),
                          tail=b"\0" * (2 if o16 else 4), sem=S.COND(cond))
            size = 2 if o16 else 4
        elif kind == "jmp8":
            insn = g.make("jmp", prefix=pre, opcode=b"\xeb", tail=b"\0")
            size = 1
        elif kind == "jmp":
            insn = g.make("jmp", prefix=pre, opcode=b"\xe9", tail=b"\0" * (2 if o16 else 4))
            size = 2 if o16 else 4
        elif kind == "call":
            insn = g.make("call", prefix=pre, opcode=b"\xe8", tail=b"\0" * (2 if o16 else 4),
                          writes={ESP}, owner=True)
            size = 2 if o16 else 4
        else:
            raise AssertionError(kind)
        insn.rel = (len(insn.raw) - size, size, target, o16)
        return insn

    def cond_now() -> int:
        return g.cond()

    templates = rng.randrange(1, 4)
    filler(rng.randrange(0, 2))
    for _ in range(templates):
        t = rng.choice(("jcc", "jcc", "jmp", "loop", "jcxz", "call", "call", "indirect", "backward"))
        if t == "jcc":
            filler(rng.randrange(0, 2))
            end = Label()
            kind = rng.choice(("jcc8", "jcc"))
            insn = branch(kind, end, cond_now(), o16=rng.random() < 0.15)
            index = len(items)
            emit([insn], end)
            succ[index] = ["next", end]
            filler(rng.randrange(1, 3))
            labels.append((end, len(items)))
        elif t == "jmp":
            end = Label()
            insn = branch(rng.choice(("jmp8", "jmp")), end, o16=rng.random() < 0.15)
            index = len(items)
            emit([insn], end)
            succ[index] = [end]
            filler(rng.randrange(1, 3))
            labels.append((end, len(items)))
        elif t in ("loop", "backward"):
            addr16 = rng.random() < 0.25
            count = rng.randrange(1, 5)
            if t == "loop":
                g.reserved.add(ECX)
                if addr16:
                    emit([g.make("mov", prefix=b"\x66", opcode=b"\xb9", tail=imm(count, 2), writes={ECX},
                                 owner=True)])
                else:
                    emit([mov_imm(g, ECX, count)])
                top = Label(len(items))
                filler(rng.randrange(1, 3))
                name = rng.choice(("loop", "loop", "loope", "loopne"))
                opcode = {"loop": 0xE2, "loope": 0xE1, "loopne": 0xE0}[name]
                sem = S.NONE if name == "loop" else S.LOOPZ
                insn = g.make(name, prefix=b"\x67" if addr16 else b"", opcode=bytes([opcode]), tail=b"\0",
                              sem=sem, writes={ECX}, owner=True)
                insn.rel = (len(insn.raw) - 1, 1, top, False)
            else:  # a counter in a free register, DEC and JNZ back
                counter = g.dst_reg(32)
                g.reserved.add(counter.num)
                emit([mov_imm(g, counter.num, count)])
                top = Label(len(items))
                filler(rng.randrange(1, 3))
                emit([g.make("dec", opcode=bytes([0x48 + counter.num]), sem=S.INCDEC, writes={counter.num},
                             owner=True)])
                g.undefined &= ~S.ZF
                insn = g.make("jne", opcode=b"\x75", tail=b"\0", sem=S.COND(5))
                insn.rel = (1, 1, top, False)
            index = len(items)
            emit([insn], top)
            succ[index] = ["next", top]
        elif t == "jcxz":
            addr16 = rng.random() < 0.3
            g.reserved.add(ECX)
            if rng.random() < 0.6:
                value = rng.choice((0, 0, 1, 0x10000, 0xFFFF0000, 0x00010001))
                emit([mov_imm(g, ECX, value)])
            end = Label()
            insn = g.make("jcxz" if addr16 else "jecxz", prefix=b"\x67" if addr16 else b"",
                          opcode=b"\xe3", tail=b"\0")
            insn.rel = (len(insn.raw) - 1, 1, end, False)
            index = len(items)
            emit([insn], end)
            succ[index] = ["next", end]
            filler(rng.randrange(1, 3))
            labels.append((end, len(items)))
        elif t == "call":
            o16 = rng.random() < 0.15
            function, after = Label(), Label()
            how = rng.choice(("rel", "rel", "reg", "mem"))
            if how == "rel":
                insn = branch("call", function, o16=o16)
                call_index = len(items)
                emit([insn], function)
            else:
                w = 16 if o16 else 32
                if how == "reg":
                    reg = g.dst_reg(32)
                    setup = g.make("mov", opcode=bytes([0xB8 + reg.num]), tail=b"\0\0\0\0", writes={reg.num})
                    setup.absolute = (1, 4, function)
                    emit([setup])
                    insn = g.make("call", prefix=g.osize(w), opcode=b"\xff", rm=Reg(reg.num, w), field=2,
                                  writes={ESP}, owner=True)
                else:
                    mem = g.mem(w // 8)
                    fixups.append((mem.address, w // 8, function))
                    insn = g.make("call", prefix=g.osize(w), opcode=b"\xff", rm=mem, field=2,
                                  writes={ESP}, owner=True)
                call_index = len(items)
                emit([insn])
            succ[call_index] = [function]
            return_label = Label()
            labels.append((return_label, len(items)))
            filler(rng.randrange(0, 2))
            skip = branch("jmp8", after)
            skip_index = len(items)
            emit([skip], after)
            succ[skip_index] = [after]
            labels.append((function, len(items)))
            filler(rng.randrange(0, 3))
            release = rng.choice((0, 0, 0, 2, 4, 8, 0x10))
            if release:
                ret = g.make("ret", prefix=g.osize(16 if o16 else 32), opcode=b"\xc2", tail=imm(release, 2),
                             writes={ESP}, owner=True)
            else:
                ret = g.make("ret", prefix=g.osize(16 if o16 else 32), opcode=b"\xc3", writes={ESP}, owner=True)
            ret_index = len(items)
            emit([ret])
            succ[ret_index] = [return_label]
            labels.append((after, len(items)))
        else:  # indirect jumps
            end = Label()
            how = rng.choice(("reg", "mem", "pushret", "reg16"))
            if how in ("reg", "reg16"):
                reg = g.dst_reg(32)
                setup = g.make("mov", opcode=bytes([0xB8 + reg.num]), tail=b"\0\0\0\0", writes={reg.num})
                setup.absolute = (1, 4, end)
                emit([setup])
                w = 16 if how == "reg16" else 32
                insn = g.make("jmp", prefix=g.osize(w), opcode=b"\xff", rm=Reg(reg.num, w), field=4)
            elif how == "mem":
                w = 16 if rng.random() < 0.2 else 32
                mem = g.mem(w // 8)
                fixups.append((mem.address, w // 8, end))
                insn = g.make("jmp", prefix=g.osize(w), opcode=b"\xff", rm=mem, field=4)
            else:
                setup = g.make("push", opcode=b"\x68", tail=b"\0\0\0\0", writes={ESP}, owner=True)
                setup.absolute = (1, 4, end)
                emit([setup])
                insn = g.make("ret", opcode=b"\xc3", writes={ESP}, owner=True)
            index = len(items)
            emit([insn])
            succ[index] = [end]
            filler(rng.randrange(1, 3))
            labels.append((end, len(items)))
    filler(rng.randrange(0, 2))
    # resolve the labels to instruction indices
    for label, index in labels:
        label.index = index
    g.insns = [insn for insn, _ in items]
    for i, insn in enumerate(g.insns):
        if insn.rel is not None:
            position, size, label, o16 = insn.rel
            insn.rel = (position, size, label.index, o16)
        if insn.absolute is not None:
            position, size, label = insn.absolute
            insn.absolute = (position, size, label.index)
        if i in succ:
            insn.succ = tuple(i + 1 if s == "next" else s.index for s in succ[i])
    g.layout()
    ends = [i.offset for i in g.insns] + [sum(len(i.raw) for i in g.insns)]
    for address, size, label in fixups:
        g.poke(address, imm(CODE + ends[label.index], size))
    g.flow_check()


# -- families --------------------------------------------------------------------------------------
Maker = Callable[[Gen], list[Insn]]


@dataclass
class Family:
    name: str
    makers: list[tuple[float, Maker]]
    setup: Callable[[Gen], None] | None = None
    fill: float = 0.3  # share of picks from the filler pool
    build: Callable[[Gen], None] | None = None  # builds the whole case instead


FILLERS: list[tuple[float, Maker]] = [(3, arith), (2, logic_alu), (1, incdec), (1, neg), (1, test),
                                      (0.5, setcc), (0.5, cmovcc), (1, mov), (0.5, flag_control)]
CONTROL_FILLERS: list[Maker] = [arith, arith, logic_alu, incdec, test, mov, setcc, cmovcc, neg, not_, lea]


def _default_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(1, 4))


def _divide_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(0, 3), exclude={EAX, EDX})


def _bcd_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(0, 3), exclude={EAX})
    if g.rng.random() < 0.5:
        g.regs[EAX] = (g.regs[EAX] & ~0xFFFF) | bcd_digits(g.rng) | (g.rng.randrange(16) << 8)


def _shift_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(0, 3), exclude={ECX})
    g.regs[ECX] = (g.regs[ECX] & ~0xFF) | g.rng.choice(COUNTS)


def _datamove_setup(g: Gen) -> None:
    exclude = set()
    if g.rng.random() < 0.3:  # a translation table for XLAT
        g.ptrs.add(EBX)
        base, size = (DATA if g.rng.random() < 0.7 else LOW)
        value = base + g.rng.randrange(0, size - 256)
        if base == LOW[0] and g.rng.random() < 0.5:
            value |= g.rng.getrandbits(16) << 16
        g.regs[EBX] = value
        exclude.add(EBX)
    g.choose_pointers(g.rng.randrange(0, 3), exclude={EAX} | exclude)


def _exchange_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(0, 3), exclude={EAX, EDX})


def _stack_setup(g: Gen) -> None:
    rng = g.rng
    if rng.random() < 0.5:
        g.choose_pointers(rng.randrange(1, 3), exclude={EBP})
    if rng.random() < 0.7:
        g.regs[EBP] = (g.esp + rng.randrange(0x10, 0x200)) & ~3
        g.ebp_known = g.regs[EBP]


def _string_setup(g: Gen) -> None:
    rng = g.rng
    g.string16 = rng.random() < 0.3
    g.reserved |= {ESI, EDI, ECX, EAX}
    for reg in (ESI, EDI):
        if g.string16:
            g.regs[reg] = (rng.getrandbits(16) << 16) | (LOW[0] + rng.randrange(0x400, LOW[1] - 0x400))
        else:
            g.regs[reg] = DATA[0] + rng.randrange(0x400, DATA[1] - 0x400)
    count = rng.choice((0, 1, 2, 3, 4, 7, 12))
    g.regs[ECX] = ((rng.getrandbits(16) << 16) | count) if g.string16 else count
    if rng.random() < 0.4:
        g.eflags |= 0x400
    else:
        g.eflags &= ~0x400
    # make equal runs so REPE/REPNE stop at different places
    mask = 0xFFFF if g.string16 else MASK32
    src, dst = g.regs[ESI] & mask, g.regs[EDI] & mask
    span = 0x60
    r = rng.random()
    if r < 0.4:
        g.poke(dst - span, g.peek(src - span, 2 * span))
    elif r < 0.7:
        pattern = imm(g.regs[EAX], 4)
        g.poke(dst - span, pattern * (2 * span // 4))
    for _ in range(rng.randrange(0, 4)):
        g.poke(dst + rng.randrange(-span, span), bytes([rng.getrandbits(8)]))
    g.choose_pointers(rng.randrange(0, 2))


def _control_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(0, 3))


def _misc_setup(g: Gen) -> None:
    g.choose_pointers(g.rng.randrange(0, 3))


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("arith", [(5, arith), (2, incdec), (1.5, neg), (1, flag_control)]),
    Family("logic", [(4, logic_alu), (2, test), (1.5, not_)]),
    Family("muldiv", [(2, mul1), (2, imul_n), (4, divide)], _divide_setup),
    Family("bcd", [(1, bcd)], _bcd_setup, fill=0.2),
    Family("shift", [(3, plain_shift), (3, rotate)], _shift_setup),
    Family("shiftd", [(1, double_shift)], _shift_setup),
    Family("bits", [(3, bit_test), (2, bit_scan)]),
    Family("datamove", [(3, mov), (2, movx), (1.5, xchg), (1, bswap), (1.5, lea), (1, convert),
                        (1, lahf_sahf), (2, setcc), (2, cmovcc), (1, xlat)], _datamove_setup),
    Family("exchange", [(2, xchg), (2, xadd), (3, cmpxchg), (2, cmpxchg8b)], _exchange_setup),
    Family("stack", [(3, push), (3, pop), (1, pusha_popa), (1.5, enter_leave), (1.5, pushf_popf)],
           _stack_setup, fill=0.25),
    Family("string", [(5, string_op), (1, direction)], _string_setup, fill=0.15),
    Family("control", [], _control_setup, build=control_case),
    Family("misc", [(1.5, nop), (2, flag_control), (1.5, pushf_popf), (2, software_interrupt),
                    (1.5, bound), (2.5, locked)], _misc_setup),
)}


def _mixed_makers() -> list[tuple[float, Maker]]:
    makers: list[tuple[float, Maker]] = []
    for family in FAMILIES.values():
        if family.name in ("string", "control"):
            continue
        makers += family.makers
    return makers


FAMILIES["mixed"] = Family("mixed", _mixed_makers(), _stack_setup, fill=0.1)


def _pick(rng: random.Random, makers: list[tuple[float, Maker]]) -> Maker:
    total = sum(w for w, _ in makers)
    x = rng.random() * total
    for weight, maker in makers:
        x -= weight
        if x < 0:
            return maker
    return makers[-1][1]


def generate(family: str, seed: int, index: int) -> Case:
    """The case (family, seed, index): the same arguments give the same case."""
    spec = FAMILIES[family]
    rng = random.Random(f"{family}/{seed}/{index}")
    last_error: Exception | None = None
    for _attempt in range(30):
        g = Gen(rng, family)
        g.string16 = False
        try:
            if spec.setup:
                spec.setup(g)
            if spec.build is not None:
                spec.build(g)
            else:
                _sequence(g, spec)
                if not g.insns:
                    raise Retry("empty")
                g.layout()
            return g.case(seed, index)
        except Retry as error:
            last_error = error
            continue
    raise RuntimeError(f"cannot generate {family}/{seed}/{index}: {last_error}")


def _sequence(g: Gen, spec: Family) -> None:
    rng = g.rng
    picks = rng.randrange(1, 7)
    for _ in range(picks):
        for _attempt in range(25):
            makers = FILLERS if rng.random() < spec.fill else spec.makers
            maker = _pick(rng, makers)
            saved = (g.esp, g.ebp_known, g.undefined, len(g.insns), set(g.written))
            try:
                insns = maker(g)
                for insn in insns:
                    g.add(insn)
                break
            except Retry:
                g.esp, g.ebp_known, g.undefined = saved[0], saved[1], saved[2]
                del g.insns[saved[3]:]
                g.written = saved[4]
                continue
        if g.insns and g.insns[-1].terminal:
            return
