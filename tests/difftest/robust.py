"""Random byte strings through dbt: it must never fail in Python.

Every outcome must be a normal end (the appended HLT, or a halt of the
random code itself), a guest exception, or another guest-caused ending (the
instruction budget of an endless loop, a write to the debug-exit port);
never a monitor error.  Where the bytes are general-purpose integer
instructions that both sides accept (Capstone, and so dbt, decodes each
executed instruction to a mnemonic of ``COMPARABLE``, and Unicorn runs them
without a memory error), the exception vector (and its EIP) is compared
with Unicorn's too.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import capstone

from dbt.vmm.outcome import Ending

from .cases import CODE, DATA, REGIONS, STACK
from .families import FAMILIES, generate
from .harness import DbtSide, UnicornSide, vector_name

MEMORY = 4 << 20
MAX_INSNS = 600
# What the traceback of a deliberate stop for an unimplemented feature ends with.
UNSUPPORTED_STOP = "dbt.vmm.protection.Unsupported:"
# Guest-caused endings besides HLT and exceptions.
GUEST_ENDINGS = frozenset({Ending.INSTRUCTION_BUDGET, Ending.DEBUG_EXIT, Ending.SHUTDOWN,
                           Ending.TRIPLE_FAULT, Ending.HALTED}
                          | ({Ending.UNSUPPORTED} if hasattr(Ending, "UNSUPPORTED") else set()))

_CONDITIONS = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g")
COMPARABLE = frozenset(
    "add adc sub sbb cmp inc dec neg and or xor not test mul imul div idiv daa das aaa aas aam aad "
    "shl sal shr sar rol ror rcl rcr shld shrd bt bts btr btc bsf bsr mov movzx movsx xchg xadd "
    "cmpxchg cmpxchg8b bswap lea push pop pushal popal pushaw popaw enter leave cbw cwde cwd cdq "
    "lahf sahf xlatb movsb movsw movsd stosb stosw stosd lodsb lodsw lodsd cmpsb cmpsw cmpsd "
    "scasb scasw scasd jmp jcxz jecxz loop loope loopne call ret nop clc stc cmc cld std "
    "pushf pushfd popf popfd int3 int into bound ud2 pause".split()
    + [f"set{c}" for c in _CONDITIONS] + [f"cmov{c}" for c in _CONDITIONS]
    + [f"j{c}" for c in _CONDITIONS])
# Segment, control and debug registers as operands (not a segment prefix "ds:").
_SYSTEM_OPERAND = re.compile(r"\b(cs|ds|es|fs|gs|ss|cr\d|dr\d)\b(?!:)")

_CS = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)


_PREFIX_BYTES = frozenset(b"\xf0\xf2\xf3\x2e\x36\x3e\x26\x64\x65\x66\x67")


def capstone_size_bug(code: bytes) -> bool:
    """Whether ``code`` has a 0F opcode whose prefixes hold both 66 and F2/F3:
    Capstone 5.0.9 then reports a 32-bit memory operand with a 16-bit register
    (DIFFERENCES.md, section 4.4), and dbt fails in Python.  Such strings are
    not run."""
    for i, byte in enumerate(code):
        if byte != 0x0F:
            continue
        start = i
        while start > 0 and code[start - 1] in _PREFIX_BYTES:
            start -= 1
        prefixes = code[start:i]
        if 0x66 in prefixes and (0xF2 in prefixes or 0xF3 in prefixes):
            return True
    return False


def comparable(raw: bytes) -> tuple[bool, str]:
    """Whether an instruction (its bytes, from its address on) is in the compared
    set, and its text.  Documented differences are left out (DIFFERENCES.md):
    LOCK forms, the F6/F7 /1 TEST alias, INT 6, REPNE MOVSD (F2 A5), memory
    operands with a CS override (Unicorn ignores segment rights) and far
    CALL/JMP through memory (dbt does not lift far transfers)."""
    insn = next(_CS.disasm(raw, 0, 1), None)
    if insn is None:
        return False, "(invalid)"
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    words = insn.mnemonic.split()
    if words[-1] not in COMPARABLE or _SYSTEM_OPERAND.search(insn.op_str):
        return False, text
    body = bytes(insn.bytes)
    i = 0
    while i < len(body) and body[i] in b"\xf0\xf2\xf3\x2e\x36\x3e\x26\x64\x65\x66\x67":
        i += 1
    prefixes, rest = body[:i], body[i:]
    if 0xF0 in prefixes:
        return False, text
    if rest[:1] in (b"\xf6", b"\xf7") and len(rest) > 1 and (rest[1] >> 3) & 7 == 1:
        return False, text
    if rest[:2] == b"\xcd\x06":
        return False, text
    if rest[:1] == b"\xa5" and 0xF2 in prefixes:
        return False, text
    if 0x2E in prefixes and "[" in insn.op_str:
        return False, text
    if rest[:1] == b"\xff" and len(rest) > 1 and (rest[1] >> 3) & 7 in (3, 5):
        return False, text
    return True, text


@dataclass
class RobustResult:
    problems: list[str] = field(default_factory=list)  # failures
    compared: bool = False
    note: str = ""


class RobustHarness:
    def __init__(self) -> None:
        self.dbt = DbtSide(max_insns=MAX_INSNS)
        self.unicorn = UnicornSide(map_all=MEMORY, max_insns=MAX_INSNS + 100)
        # Memory outside the regions holds HLT: code that runs away stops soon.
        self.fill = b"\xf4" * MEMORY
        self.disagreements: list[str] = []  # decode disagreements, for the record
        self.unsupported_stops: list[str] = []  # byte strings dbt declined to run
        self.size_bug_skips = 0

    def case(self, seed: int, index: int):
        """Odd indices: purely random bytes; even ones: a generated case with its
        code mutated (bytes changed, inserted, deleted; bits flipped), so that
        more of the bytes decode and address mapped memory."""
        rng = random.Random(f"robust/{seed}/{index}")
        if index % 2 == 0:
            family = rng.choice(sorted(FAMILIES))
            base = generate(family, seed + 1000, index)
            code = bytearray(base.code)
            for _ in range(rng.randrange(1, 4)):
                position = rng.randrange(len(code) + 1)
                action = rng.random()
                if action < 0.4 and position < len(code):
                    code[position] ^= 1 << rng.randrange(8)
                elif action < 0.6 and position < len(code):
                    code[position] = rng.getrandbits(8)
                elif action < 0.8:
                    code[position:position] = rng.randbytes(rng.randrange(1, 4))
                elif len(code) > 1:
                    del code[position:position + rng.randrange(1, 3)]
            eflags = base.eflags & ~0x300
            return bytes(code) or b"\x90", dict(base.registers), eflags, dict(base.memory)
        r = rng.random()
        prefix = b""
        if r < 0.2:
            prefix = bytes(rng.choice(b"\x66\x67\xf0\xf2\xf3\x2e\x3e\x26\x64") for _ in range(rng.randrange(1, 3)))
        elif r < 0.45:
            prefix = b"\x0f"
        code = prefix + rng.randbytes(rng.randrange(1, 24))
        registers = {}
        for name in ("eax", "ecx", "edx", "ebx", "ebp", "esi", "edi"):
            if rng.random() < 0.75:
                registers[name] = DATA[0] + rng.randrange(0x400, DATA[1] - 0x400)
            else:
                registers[name] = rng.getrandbits(32)
        registers["esp"] = STACK[0] + 0x800
        eflags = 0x2 | (rng.getrandbits(12) & 0xCD5)  # arithmetic flags and DF; no TF, no IF
        memory = {base: rng.randbytes(size) for base, size in REGIONS}
        return code, registers, eflags, memory

    def run(self, seed: int, index: int) -> RobustResult:
        code, registers, eflags, memory = self.case(seed, index)
        result = RobustResult()
        read_back = [(CODE, 0x1000)]
        self.dbt.ram[:] = self.fill
        try:
            dbt = self.dbt.run(code, registers, eflags, memory, read_back, stray_check=False)
        except Exception as exc:  # anything escaping the runner is a dbt bug
            result.problems.append(f"dbt raised {exc!r}")
            self.dbt._wipe()
            return result
        ending = self.dbt.ending()
        self.dbt._wipe()
        if dbt.error:
            if ending in GUEST_ENDINGS and "internal error" not in dbt.error:
                result.note = f"dbt ended by {ending}"
                return result
            if UNSUPPORTED_STOP in dbt.error:
                # dbt.vmm.protection stops the run on purpose for what it does not
                # implement (virtual-8086 mode, task switches); today that
                # surfaces as a monitor error.  DIFFERENCES.md, section 5.
                result.note = "dbt stopped: unsupported feature"
                self.unsupported_stops.append(code.hex(" "))
                return result
            result.problems.append(dbt.error)
            return result
        # Unicorn, on the same memory (all 4 MiB mapped, like dbt's RAM)
        uc = self.unicorn.uc
        uc.mem_write(0, self.fill)
        uni = self.unicorn.run(code, registers, eflags, memory, read_back)
        page = code + b"\xf4"
        if uni.error or uni.memory[CODE][:len(page)] != page:
            result.note = "not compared: " + (uni.error or "self-modifying code")
            return result
        executed = [address for address, _ in uni.trace]
        if uni.exception is not None and (not executed or executed[-1] != uni.registers["eip"]):
            executed.append(uni.registers["eip"])
        texts = []
        for address in dict.fromkeys(executed):
            offset = address - CODE
            if not 0 <= offset < len(page):
                result.note = f"not compared: ran outside the code ({address:#x})"
                return result
            ok, text = comparable((page + bytes(15))[offset:offset + 15])
            texts.append(text)
            if not ok:
                if text == "(invalid)" and uni.exception != 6:
                    self.disagreements.append(f"{code.hex(' ')}: Capstone rejects {page[offset:offset + 8].hex(' ')}, Unicorn runs it")
                result.note = f"not compared: {text}"
                return result
        result.compared = True
        if dbt.exception != uni.exception:
            result.problems.append(
                f"exception: dbt={vector_name(dbt.exception)} unicorn={vector_name(uni.exception)}")
        elif dbt.exception is not None and dbt.registers["eip"] != uni.registers["eip"]:
            result.problems.append(f"exception {vector_name(dbt.exception)} at EIP dbt={dbt.registers['eip']:#x}"
                                   f" unicorn={uni.registers['eip']:#x}")
        if result.problems:
            result.problems.insert(0, f"code {code.hex(' ')}; executed: {' ; '.join(texts)}; "
                                      f"registers {registers}, eflags {eflags:#x}")
        return result
