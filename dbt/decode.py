"""Capstone, wrapped: guest bytes at an address become ``Instruction`` records.

Capstone's Python objects are slow to query (microseconds per operand), so
each instruction is read out once into a frozen record and cached under its
address and code size; a cached record is reused only while the bytes in
memory still equal the bytes it was decoded from, so self-modifying code is
decoded afresh.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import capstone
from capstone import x86 as cs_x86

MAX_INSTRUCTION_BYTES = 15


class OperandKind(enum.Enum):
    REG = "reg"
    IMM = "imm"
    MEM = "mem"


@dataclass(frozen=True, slots=True)
class Operand:
    kind: OperandKind
    size: int  # bytes
    reg: str | None = None  # register name for REG operands ("eax", "al", "cs", "cr0")
    imm: int = 0  # IMM value as Capstone reports it (sign-extended, may be negative)
    base: str | None = None  # MEM parts
    index: str | None = None
    scale: int = 1
    disp: int = 0
    segment: str | None = None  # explicit segment as Capstone names it, or None


@dataclass(frozen=True, slots=True)
class Instruction:
    address: int
    size: int
    raw: bytes
    id: int  # capstone X86_INS_*
    mnemonic: str  # without prefixes ("xadd", not "lock xadd")
    display_mnemonic: str  # as Capstone prints it, prefixes included
    op_str: str
    operands: tuple[Operand, ...]
    rep: int  # 0, 0xF3 or 0xF2
    lock: bool
    segment_override: str | None  # "es", "cs", ... from a prefix
    operand_size_prefix: bool
    address_size: int  # 2 or 4 bytes
    opcode: bytes  # the opcode bytes without prefixes
    modrm: int
    groups: frozenset[int]

    @property
    def text(self) -> str:
        return f"{self.display_mnemonic} {self.op_str}".strip()

    @property
    def next_address(self) -> int:
        return (self.address + self.size) & 0xFFFFFFFF

    def has_group(self, group: int) -> bool:
        return group in self.groups


_LEGACY_PREFIXES = frozenset({0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67})
_SEGMENT_PREFIXES = {0x26: "es", 0x2E: "cs", 0x36: "ss", 0x3E: "ds", 0x64: "fs", 0x65: "gs"}


class Decoder:
    """Decodes one instruction at a time, for 16- or 32-bit code, with a cache."""

    def __init__(self) -> None:
        self._engines: dict[int, capstone.Cs] = {}
        for bits, mode in ((16, capstone.CS_MODE_16), (32, capstone.CS_MODE_32)):
            engine = capstone.Cs(capstone.CS_ARCH_X86, mode)
            engine.detail = True
            self._engines[bits] = engine
        self._cache: dict[tuple[int, int], Instruction] = {}
        self.decoded = 0
        self.cache_hits = 0

    def decode(self, code: bytes, address: int, code_bits: int = 32) -> Instruction | None:
        """The instruction at the start of ``code``, or None if it is not a valid one
        (or ``code`` is too short to hold all of it)."""
        key = (address, code_bits)
        cached = self._cache.get(key)
        if cached is not None and code[: cached.size] == cached.raw:
            self.cache_hits += 1
            return cached
        self.decoded += 1
        engine = self._engines[code_bits]
        for insn in engine.disasm(code[:MAX_INSTRUCTION_BYTES], address, 1):
            record = _record(insn)
            self._cache[key] = record
            return record
        return None

    def forget(self) -> None:
        self._cache.clear()


def _record(insn: capstone.CsInsn) -> Instruction:
    operands = []
    for op in insn.operands:
        if op.type == cs_x86.X86_OP_REG:
            operands.append(Operand(OperandKind.REG, op.size, reg=insn.reg_name(op.reg)))
        elif op.type == cs_x86.X86_OP_IMM:
            operands.append(Operand(OperandKind.IMM, op.size, imm=op.imm))
        else:
            mem = op.mem
            operands.append(
                Operand(
                    OperandKind.MEM,
                    op.size,
                    base=insn.reg_name(mem.base) if mem.base else None,
                    index=insn.reg_name(mem.index) if mem.index else None,
                    scale=mem.scale,
                    disp=mem.disp,
                    segment=insn.reg_name(mem.segment) if mem.segment else None,
                )
            )
    prefix = insn.prefix
    raw = bytes(insn.bytes)
    rep, lock = _repeat_and_lock(raw)
    if rep and prefix[2] == 0x66:
        operands = _sixteen_bit_memory(operands)
    return Instruction(
        address=insn.address,
        size=insn.size,
        raw=raw,
        id=insn.id,
        mnemonic=insn.mnemonic.split()[-1],
        display_mnemonic=insn.mnemonic,
        op_str=insn.op_str,
        operands=tuple(operands),
        rep=rep,
        lock=lock,
        segment_override=_SEGMENT_PREFIXES.get(prefix[1]),
        operand_size_prefix=prefix[2] == 0x66,
        address_size=insn.addr_size,
        opcode=_opcode(raw),
        modrm=insn.modrm,
        groups=frozenset(insn.groups),
    )


def _sixteen_bit_memory(operands: list[Operand]) -> list[Operand]:
    """With 66 and F2/F3 both present, Capstone sizes a memory operand by the
    32-bit default although the instruction's register operands (and the
    processor) use 16 bits; make the memory operand agree."""
    register_sizes = {op.size for op in operands if op.kind is OperandKind.REG}
    if register_sizes != {2}:
        return operands
    return [Operand(OperandKind.MEM, 2, base=op.base, index=op.index, scale=op.scale, disp=op.disp,
                    segment=op.segment) if op.kind is OperandKind.MEM and op.size == 4 else op
            for op in operands]


def _repeat_and_lock(raw: bytes) -> tuple[int, bool]:
    """The REP/REPNE prefix in effect (the last of F2/F3) and LOCK, read from
    the bytes: Capstone drops REPNE before some opcodes (F2 A5)."""
    rep, lock = 0, False
    for byte in raw:
        if byte not in _LEGACY_PREFIXES:
            break
        if byte in (0xF2, 0xF3):
            rep = byte
        elif byte == 0xF0:
            lock = True
    return rep, lock


def _opcode(raw: bytes) -> bytes:
    """The opcode bytes: one, or two after an 0F escape (three for 0F 38/3A)."""
    start = 0
    while start < len(raw) and raw[start] in _LEGACY_PREFIXES:
        start += 1
    if raw[start : start + 1] != b"\x0f":
        return raw[start : start + 1]
    if raw[start + 1 : start + 2] in (b"\x38", b"\x3a"):
        return raw[start : start + 3]
    return raw[start : start + 2]
