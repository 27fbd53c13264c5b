"""What each generated instruction does to the arithmetic flags, per the
Intel SDM (volume 2, each instruction's "Flags Affected"; volume 1 appendix A).

Every generated instruction carries a *flag descriptor*.  It says which flags
the instruction reads, which it sets to a defined value, and which the SDM
leaves undefined afterwards.  Two analyses use it:

* the generator's static one (``static_effect``), conservative over every
  count an instruction may see, makes sure that no instruction ever reads a
  flag that may be undefined at that point (so the two emulators' different
  choices for undefined flags never leak into defined results);
* the comparison's dynamic one (``dynamic_effect``), run over the trace of
  the executed instructions with the register state before each, gives the
  exact set of flags that are undefined at the end.  Only those are left out
  of the EFLAGS comparison; a flag left undefined by one instruction but set
  by a later one is compared.

Descriptors (tuples):

``("f", reads, defined, undefined)``
    a fixed effect.
``("shift", op, width, count)``
    SHL/SAL/SHR/SAR; ``count`` an int (immediate or the implicit 1) or "cl".
``("rot", op, width, count)``
    ROL/ROR/RCL/RCR.
``("shd", op, width, count, dest)``
    SHLD/SHRD; ``dest`` where the result goes (for counts above 16 on 16-bit
    operands the result is undefined too).
``("repcmp", addr_bits)``
    REPE/REPNE CMPS/SCAS: all flags set unless the count register is 0.
``("undef_dest", dest)``
    an instruction whose destination the SDM leaves undefined (BSWAP of a
    16-bit register); its flags are untouched.

Undefined *results* (BSWAP r16, SHLD/SHRD r16 by more than 16, BSF/BSR of
zero) are compared all the same while ``COMPARE_DOCUMENTED_RESULTS`` is
True: dbt documents its choice for each (the hardware's), Unicorn makes the
same one, and a change would be worth noticing.  Undefined *flags* are never
compared.

A ``dest`` is ``("reg", number, mask)`` (a 32-bit register and the bits that
are undefined) or ``("mem", address, length)``.
"""

from __future__ import annotations

CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
ALL = CF | PF | AF | ZF | SF | OF
FLAG_NAMES = ((CF, "CF"), (PF, "PF"), (AF, "AF"), (ZF, "ZF"), (SF, "SF"), (OF, "OF"),
              (0x400, "DF"), (0x200, "IF"), (0x100, "TF"), (0x3000, "IOPL"), (0x4000, "NT"),
              (0x40000, "AC"), (0x200000, "ID"))


def flag_names(bits: int) -> str:
    return " ".join(name for mask, name in FLAG_NAMES if bits & mask) or "-"


COMPARE_DOCUMENTED_RESULTS = True


def F(reads: int = 0, defined: int = 0, undefined: int = 0) -> tuple:
    return ("f", reads, defined, undefined)


# The fixed effects, by instruction group (SDM "Flags Affected").
NONE = F()
ARITH = F(0, ALL)  # ADD SUB CMP NEG XADD CMPXCHG, CMPS/SCAS without REP
CARRY_ARITH = F(CF, ALL)  # ADC SBB
INCDEC = F(0, ALL & ~CF)  # CF unaffected
LOGIC = F(0, CF | OF | SF | ZF | PF, AF)  # AND OR XOR TEST: CF=OF=0, AF undefined
MUL = F(0, CF | OF, SF | ZF | AF | PF)  # MUL IMUL: SF ZF AF PF undefined
DIV = F(0, 0, ALL)  # DIV IDIV: all six undefined (when no #DE)
DAA = F(CF | AF, CF | AF | SF | ZF | PF, OF)  # DAA DAS: OF undefined
AAA = F(AF, AF | CF, OF | SF | ZF | PF)  # AAA AAS
AAM = F(0, SF | ZF | PF, OF | AF | CF)  # AAM AAD
BT = F(0, CF, OF | SF | AF | PF)  # BT BTS BTR BTC: ZF unaffected
BSF = F(0, ZF, CF | OF | SF | AF | PF)  # BSF BSR
CMPXCHG8B = F(0, ZF)
SAHF = F(0, SF | ZF | AF | PF | CF)
POPF = F(0, ALL)
LAHF = F(SF | ZF | AF | PF | CF)
PUSHF = F(ALL)
CLC_STC = F(0, CF)
CMC = F(CF, CF)
INTO = F(OF)
LOOPZ = F(ZF)  # LOOPE LOOPNE

# The flags each condition (x86 encoding order) reads.
_COND_BASE = (OF, CF, ZF, CF | ZF, SF, PF, SF | OF, ZF | SF | OF)
CONDITION_NAMES = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l",
                   "ge", "le", "g")


def condition_reads(code: int) -> int:
    return _COND_BASE[code >> 1]


def COND(code: int) -> tuple:
    return F(condition_reads(code))


def static_effect(sem: tuple) -> tuple[int, int, int]:
    """(flags possibly read, flags always defined, flags possibly undefined)
    over every count the instruction might see."""
    kind = sem[0]
    if kind == "f":
        return sem[1], sem[2], sem[3]
    if kind in ("shift", "rot", "shd"):
        _, op, width, count = sem[:4]
        if count == "cl":
            counts = range(32)
        else:
            counts = (count & 0x1F,)
        reads, defined_all, undef_any = 0, ALL, 0
        for c in counts:
            r, d, u, _ = _count_effect(sem, c)
            reads |= r
            defined_all &= d
            undef_any |= u
        return reads, defined_all, undef_any
    if kind == "repcmp":
        return 0, 0, 0  # defines all or nothing: never makes a flag undefined
    if kind == "undef_dest":
        return 0, 0, 0
    raise ValueError(sem)


def dynamic_effect(sem: tuple, ecx: int) -> tuple[int, int, int, tuple | None]:
    """(read, defined, undefined, undefined destination) for one execution,
    given ECX before the instruction."""
    kind = sem[0]
    if kind == "f":
        return sem[1], sem[2], sem[3], None
    if kind in ("shift", "rot", "shd"):
        count = ecx & 0xFF if sem[3] == "cl" else sem[3]
        return _count_effect(sem, count & 0x1F)
    if kind == "repcmp":
        counter = ecx if sem[1] == 32 else ecx & 0xFFFF
        return (0, ALL, 0, None) if counter else (0, 0, 0, None)
    if kind == "undef_dest":
        return 0, 0, 0, None if COMPARE_DOCUMENTED_RESULTS else sem[1]
    raise ValueError(sem)


def _count_effect(sem: tuple, count: int) -> tuple[int, int, int, tuple | None]:
    """The effect of a shift or rotate by a masked count (0..31)."""
    kind, op, width = sem[0], sem[1], sem[2]
    if count == 0:
        return 0, 0, 0, None  # "If the count is 0, the flags are not affected."
    overflow = OF if count == 1 else 0  # OF is defined for 1-bit shifts only
    if kind == "shift":
        carry = CF
        if op in ("shl", "sal", "shr") and count >= width:
            carry = 0  # "CF ... is undefined for SHL and SHR where the count >= the size"
        defined = SF | ZF | PF | carry | overflow
        return 0, defined, ALL & ~defined, None  # AF undefined for a nonzero count
    if kind == "rot":
        reads = CF if op in ("rcl", "rcr") else 0
        # Only CF and OF are affected; OF is undefined for multi-bit rotates.
        # (RCL/RCR of 8/16 bits by a multiple of 9/17 leave CF as it was,
        # which is still a defined value.)
        return reads, CF | overflow, OF & ~overflow, None
    # SHLD/SHRD
    dest = sem[4]
    if count > width:
        # "If the count is greater than the operand size, the result is
        # undefined" -- and so are all the flags.
        return 0, 0, ALL, None if COMPARE_DOCUMENTED_RESULTS else dest
    defined = CF | SF | ZF | PF | overflow
    return 0, defined, ALL & ~defined, None
