"""A small IA-32 encoder for the differential tests: ModRM/SIB operands and
instruction byte strings, written directly.

Keystone 0.9.2 mis-assembles some forms (and cannot express others, such as
the 82 opcode or a chosen displacement size), so the generators build every
instruction here and then check the bytes with Capstone (``check``): the
decoded length must be the whole string and the mnemonic the one intended.
"""

from __future__ import annotations

from dataclasses import dataclass

import capstone

REG32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
REG16 = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di")
REG8 = ("al", "cl", "dl", "bl", "ah", "ch", "dh", "bh")
EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI = range(8)

# 16-bit addressing: rm field -> (base, index) registers (32-bit register numbers).
RM16 = {0: (EBX, ESI), 1: (EBX, EDI), 2: (EBP, ESI), 3: (EBP, EDI), 4: (None, ESI),
        5: (None, EDI), 6: (EBP, None), 7: (EBX, None)}


def reg_name(num: int, width: int) -> str:
    return {8: REG8, 16: REG16, 32: REG32}[width][num]


def underlying(num: int, width: int) -> int:
    """The 32-bit register an operand register number refers to."""
    return num & 3 if width == 8 else num


def imm(value: int, size: int) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def fits8(value: int) -> bool:
    return -128 <= value <= 127


def signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def signed16(value: int) -> int:
    value &= 0xFFFF
    return value - (1 << 16) if value & 0x8000 else value


@dataclass
class Reg:
    num: int  # 0..7 in the encoding of its width
    width: int

    is_mem = False

    def modrm(self, field: int) -> bytes:
        return bytes([0xC0 | (field << 3) | self.num])

    @property
    def base_reg(self) -> int:
        return underlying(self.num, self.width)

    def __str__(self) -> str:
        return reg_name(self.num, self.width)


@dataclass
class Mem:
    """A memory operand: the bytes after the opcode (ModRM, SIB, displacement)
    for a given reg field, plus the linear address it designates."""

    addr_bits: int  # 32 or 16
    body: bytes  # ModRM (with reg field 0) + SIB + displacement
    address: int  # linear address (all segments are flat)
    regs: tuple[int, ...]  # registers the address computation reads
    text: str

    is_mem = True

    def modrm(self, field: int) -> bytes:
        return bytes([self.body[0] | (field << 3)]) + self.body[1:]

    @property
    def prefix(self) -> bytes:
        return b"\x67" if self.addr_bits == 16 else b""

    def __str__(self) -> str:
        return self.text


def mem32(base: int | None, index: int | None, scale: int, disp: int, disp_size: int,
          regs: dict[int, int]) -> Mem:
    """Encode [base + index*scale + disp] with a displacement of ``disp_size``
    bytes (0, 1 or 4; forced up where the form needs one)."""
    assert index != ESP
    if base is None:
        disp_size = 4
    if base == EBP and disp_size == 0:
        disp_size = 1
    if disp_size == 1 and not fits8(signed32(disp)):
        disp_size = 4
    mod = {0: 0, 1: 1, 4: 2}[disp_size] if base is not None else 0
    if index is None and base is not None and base != ESP:
        body = bytes([(mod << 6) | base])
    elif index is None and base is None:
        body = bytes([0x05])  # disp32 alone
    else:
        ss = {1: 0, 2: 1, 4: 2, 8: 3}[scale]
        sib_index = 4 if index is None else index
        sib_base = 5 if base is None else base
        body = bytes([(mod << 6) | 4, (ss << 6) | (sib_index << 3) | sib_base])
    body += imm(disp, disp_size)
    address = disp
    used: list[int] = []
    if base is not None:
        address += regs[base]
        used.append(base)
    if index is not None:
        address += regs[index] * scale
        used.append(index)
    parts = [REG32[base]] if base is not None else []
    if index is not None:
        parts.append(f"{REG32[index]}*{scale}")
    parts.append(hex(signed32(disp)) if disp_size else "")
    text = "[" + "+".join(p for p in parts if p) + "]"
    return Mem(32, body, address & 0xFFFFFFFF, tuple(used), text)


def mem16(rm: int, mod: int, disp: int, regs: dict[int, int]) -> Mem:
    """Encode a 16-bit addressing form (rm 0..7, mod 0..2)."""
    base, index = RM16[rm]
    if rm == 6 and mod == 0:
        base = None
        disp_size = 2
    else:
        disp_size = (0, 1, 2)[mod]
    body = bytes([(mod << 6) | rm]) + imm(disp, disp_size)
    offset = disp
    used: list[int] = []
    for r in (base, index):
        if r is not None:
            offset += regs[r] & 0xFFFF
            used.append(r)
    parts = [REG16[r] for r in (base, index) if r is not None]
    if disp_size:
        parts.append(hex(disp & 0xFFFF))
    return Mem(16, body, offset & 0xFFFF, tuple(used), "[" + "+".join(parts) + "]")


# -- checking with Capstone --------------------------------------------------------------
_CS = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)


class EncodingError(AssertionError):
    pass


def disassemble(code: bytes, address: int) -> tuple[str, int] | None:
    """(text, length) of the first instruction, or None if Capstone rejects it."""
    for insn in _CS.disasm(code, address, 1):
        return f"{insn.mnemonic} {insn.op_str}".strip(), insn.size
    return None


def check(code: bytes, mnemonic: str | tuple[str, ...] | None, address: int = 0x1000) -> str:
    """Capstone's text for ``code``; raise if it is not one whole instruction
    with the intended mnemonic (the last word, prefixes such as rep/lock aside)."""
    decoded = disassemble(code, address)
    if decoded is None:
        if mnemonic is None:
            return "(invalid)"
        raise EncodingError(f"Capstone rejects {code.hex(' ')} (meant {mnemonic})")
    text, size = decoded
    if size != len(code):
        raise EncodingError(f"{code.hex(' ')} decodes as {text!r} of {size} bytes")
    if mnemonic is not None:
        wanted = (mnemonic,) if isinstance(mnemonic, str) else mnemonic
        words = text.split()
        while len(words) > 1 and words[0] in ("lock", "rep", "repe", "repne", "repz", "repnz", "notrack"):
            words = words[1:]
        mnem = words[0]
        if mnem not in wanted:
            raise EncodingError(f"{code.hex(' ')} decodes as {text!r}, meant {wanted}")
    return text
