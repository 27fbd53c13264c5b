"""The conventions and the documented differences the campaign relies on
(DIFFERENCES.md), each checked on its own.

If a Unicorn quirk test fails because Unicorn got fixed, the matching
workaround in the generators or the harness can go, and so can its entry in
DIFFERENCES.md.  The xfail tests are dbt bugs outside the lifters, reported
rather than fixed here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_32, Uc

from .cases import CODE, DATA, REGIONS, STACK
from .harness import Harness

ESP = STACK[0] + 0x800


def memory(pokes: dict[int, bytes] | None = None) -> dict[int, bytes]:
    regions = {base: bytearray(size) for base, size in REGIONS}
    for address, data in (pokes or {}).items():
        for base, size in REGIONS:
            if base <= address < base + size:
                regions[base][address - base:address - base + len(data)] = data
    return {base: bytes(data) for base, data in regions.items()}


def both(harness: Harness, code: str, registers=None, eflags: int = 0x2, pokes=None, unicorn_code=None,
         single_step: bool = False):
    raw = bytes.fromhex(code)
    regs = {"esp": ESP, **(registers or {})}
    mem = memory(pokes)
    dbt = harness.dbt.run(raw, regs, eflags, mem, harness.read_back)
    uni_raw = bytes.fromhex(unicorn_code) if unicorn_code else raw
    uni = harness.unicorn.run(uni_raw, regs, eflags, mem, harness.read_back, single_step=single_step)
    assert dbt.error is None, dbt.error
    assert uni.error is None, uni.error
    return dbt, uni


# -- how exceptions are reported -----------------------------------------------------------
@pytest.mark.parametrize("name,code,registers,eflags,vector,trap", [
    ("#DE div", "90 f7 f1", {"ecx": 0}, 0x2, 0, False),
    ("#DE aam 0", "90 d4 00", {}, 0x2, 0, False),
    ("#BR bound", "90 62 05 00 00 01 00", {"eax": 5}, 0x2, 5, False),
    ("#UD ud2", "90 0f 0b", {}, 0x2, 6, False),
    ("#BP int3", "90 cc", {}, 0x2, 3, True),
    ("#OF into", "90 ce", {}, 0x802, 4, True),
    ("int 0x21", "90 cd 21", {}, 0x2, 0x21, True),
])
def test_exception_reporting(harness: Harness, name, code, registers, eflags, vector, trap) -> None:
    """Faults leave EIP at the instruction, traps after it; on both sides."""
    # BOUND's bounds at 0x10000 are [0, 0]: 5 is outside.
    dbt, uni = both(harness, code, registers, eflags)
    length = len(bytes.fromhex(code)) - 1
    expected_eip = CODE + 1 + (length if trap else 0)
    assert (dbt.exception, dbt.registers["eip"]) == (vector, expected_eip)
    assert (uni.exception, uni.registers["eip"]) == (vector, expected_eip)


def test_unicorn_exception_state_needs_a_fresh_context() -> None:
    """Without restoring a saved context, Unicorn turns the second hooked #DE
    into #DF (and the third into a silent stop): the harness restores one."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(CODE, 0x1000)
    seen = []
    uc.hook_add(UC_HOOK_INTR, lambda uc, vector, _: (seen.append(vector), uc.emu_stop()))
    for _ in range(2):
        uc.mem_write(CODE, b"\x90\xd4\x00\xf4")
        uc.ctl_remove_cache(CODE, CODE + 0x1000)
        uc.emu_start(CODE, CODE + 3)
    assert seen == [0, 8]


# -- Unicorn bugs, and that dbt does what the SDM says ---------------------------------------
def test_unicorn_lock_neg_flags(harness: Harness) -> None:
    """LOCK NEG [m32] of 1: the result 0xFFFFFFFF gives CF PF AF SF (0x97);
    Unicorn sets the flags of the old value."""
    code = "f0 f7 1d 00 00 01 00"
    dbt, uni = both(harness, code, pokes={DATA[0]: b"\x01\0\0\0"})
    assert dbt.eflags == 0x97
    assert uni.eflags != 0x97
    _, plain = both(harness, code, pokes={DATA[0]: b"\x01\0\0\0"}, unicorn_code="3e" + code[2:])
    assert plain.eflags == 0x97  # what the campaign runs on Unicorn instead


def test_unicorn_test_alias(harness: Harness) -> None:
    """F7 /1 is TEST on Intel and AMD processors; Unicorn raises #UD."""
    alias, canonical = "f7 c8 01 80 00 00", "f7 c0 01 80 00 00"
    dbt, uni = both(harness, alias, {"eax": 0x8000})
    assert uni.exception == 6
    dbt, uni = both(harness, alias, {"eax": 0x8000}, unicorn_code=canonical)
    assert dbt.exception is None and dbt.eflags == uni.eflags


@pytest.mark.parametrize("code", [
    "f0 89 05 00 00 01 00",  # lock mov [m], eax
    "f0 85 05 00 00 01 00",  # lock test [m], eax
    "f0 0f ba 25 00 00 01 00 02",  # lock bt [m], 2
    "f0 87 c1",  # lock xchg ecx, eax (register destination)
])
def test_unicorn_accepts_invalid_lock(harness: Harness, code: str) -> None:
    """The SDM: LOCK on an instruction that is not lockable, or without a
    memory destination, raises #UD.  Unicorn runs these."""
    dbt, uni = both(harness, code)
    assert dbt.exception == 6 and dbt.registers["eip"] == CODE
    assert uni.exception is None


def test_unicorn_int6_reported_as_fault(harness: Harness) -> None:
    dbt, uni = both(harness, "90 cd 06")
    assert (dbt.exception, dbt.registers["eip"]) == (6, CODE + 3)
    assert (uni.exception, uni.registers["eip"]) == (6, CODE + 1)


@pytest.mark.parametrize("code,registers,eflags", [
    # adc eax, ecx; cmpxchg8b [0x10000]: the helper sees stale lazy flags
    ("11 c8 0f c7 0d 00 00 01 00", {"eax": 3415330359, "ecx": 2965446622, "edx": 4047793130}, 0x3),
    # add eax, ecx; div ebx (0): the flags after the #DE lose CF and AF
    ("01 c8 f7 f3", {"eax": 2802804450, "ecx": 1696484383, "edx": 3296494427, "ebx": 0}, 0x2),
])
def test_unicorn_block_flags(harness: Harness, code, registers, eflags) -> None:
    """Unicorn's EFLAGS depend on how its translation blocks are cut; one
    instruction per block gives the SDM's answer, which is dbt's."""
    dbt, uni = both(harness, code, registers, eflags)
    _, stepped = both(harness, code, registers, eflags, single_step=True)
    assert uni.eflags != stepped.eflags
    assert dbt.eflags == stepped.eflags


def test_unicorn_idiv_crashes_the_host() -> None:
    """IDIV of the most negative dividend by -1 kills Unicorn's process with
    SIGFPE (the harness stops before such an IDIV and reports #DE)."""
    program = (
        "from unicorn import *; from unicorn.x86_const import *\n"
        "uc = Uc(UC_ARCH_X86, UC_MODE_32); uc.mem_map(0x1000, 0x1000)\n"
        "uc.mem_write(0x1000, bytes.fromhex('f7 f9'))\n"
        "uc.reg_write(UC_X86_REG_EDX, 0x80000000); uc.reg_write(UC_X86_REG_EAX, 0)\n"
        "uc.reg_write(UC_X86_REG_ECX, 0xffffffff)\n"
        "uc.emu_start(0x1000, 0x1002)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
    assert result.returncode == -8  # SIGFPE


def test_idiv_overflow_guard(harness: Harness) -> None:
    registers = {"edx": 0x80000000, "eax": 0, "ecx": 0xFFFFFFFF}
    dbt, uni = both(harness, "40 48 f7 f9", registers)  # inc eax; dec eax; idiv ecx
    assert (dbt.exception, dbt.registers["eip"]) == (0, CODE + 2)
    assert (uni.exception, uni.registers["eip"]) == (0, CODE + 2)
    registers = {"edx": 0x8000, "eax": 0, "ecx": 0xFFFF}
    dbt, uni = both(harness, "66 f7 f9", registers)  # idiv cx
    assert dbt.exception == uni.exception == 0


def test_unicorn_ignores_segment_rights(harness: Harness) -> None:
    """A store through a CS override: #GP(0) in protected mode (code segments
    are not writable); Unicorn stores."""
    dbt, uni = both(harness, "2e 89 05 00 00 01 00", {"eax": 0x12345678})
    assert dbt.exception == 13
    assert uni.exception is None


# -- dbt bugs found by the campaign outside the lifters, now fixed ---------------------------------
def test_snippet_runner_reports_exceptions() -> None:
    """The snippet machine runs natively: with no IDT an exception ends the run."""
    from dbt.testing import SnippetRunner

    result = SnippetRunner().run(b"\x90\xf7\xf3", {"esp": ESP, "ebx": 0}, 0x2)
    assert (result.exception, result.registers["eip"]) == (0, CODE + 1)


@pytest.mark.parametrize("code", ["f3 66 0f c1 01", "66 f3 0f b1 01", "f2 66 0f af 01", "f3 66 0f ab 01"])
def test_rep_and_operand_size_prefixes(harness: Harness, code: str) -> None:
    """Capstone 5.0.9 sizes the memory operand at 32 bits when 66 and F2/F3
    both precede a 0F opcode; dbt.decode makes it agree with the registers."""
    # [m] holds 0x00010002: as a word 2, as a dword 0x10002 (IMUL overflows with it)
    registers = {"ecx": DATA[0], "eax": 3}
    pokes = {DATA[0]: bytes.fromhex("02000100")}
    dbt, uni = both(harness, code, registers, 0x2, pokes)
    assert (dbt.registers, dbt.eflags, dbt.memory) == (uni.registers, uni.eflags, uni.memory)


def test_repne_movsd_repeats(harness: Harness) -> None:
    """Capstone 5.0.9 drops REPNE from F2 A5; dbt.decode reads the prefix bytes."""
    registers = {"ecx": 3, "esi": DATA[0], "edi": DATA[0] + 0x100}
    dbt, uni = both(harness, "f2 a5", registers)
    assert uni.registers["ecx"] == 0
    assert dbt.registers == uni.registers


def test_trap_flag_single_step(harness: Harness) -> None:
    # pushfd; or dword [esp], 0x100; popfd; nop; nop: #DB after the first NOP
    dbt, uni = both(harness, "9c 81 0c 24 00 01 00 00 9d 90 90")
    assert (uni.exception, uni.registers["eip"]) == (1, CODE + 10)
    assert (dbt.exception, dbt.registers["eip"]) == (1, CODE + 10)
