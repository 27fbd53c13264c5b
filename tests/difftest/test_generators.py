"""The generators: reproducible, valid encodings (checked with Capstone as they
are built), and every family covers the instructions it is meant to."""

from __future__ import annotations

import collections

import pytest

from .cases import CODE, CODE_SIZE, REGIONS
from .families import FAMILIES, generate

SAMPLE = 300
_C = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g")
EXPECTED = {
    "arith": "add adc sub sbb cmp inc dec neg",
    "logic": "and or xor not test",
    "muldiv": "mul imul div idiv",
    "bcd": "daa das aaa aas aam aad",
    "shift": "shl shr sar sal rol ror rcl rcr",
    "shiftd": "shld shrd",
    "bits": "bt bts btr btc bsf bsr",
    "datamove": "mov movzx movsx xchg bswap lea cbw cwde cwd cdq lahf sahf xlatb "
                + " ".join(f"set{c}" for c in _C) + " " + " ".join(f"cmov{c}" for c in _C),
    "exchange": "xchg xadd cmpxchg cmpxchg8b",
    "stack": "push pop pushal popal pushaw popaw enter leave pushf pushfd popf popfd",
    "string": "movsb movsw movsd stosb stosw stosd lodsb lodsw lodsd cmpsb cmpsw cmpsd scasb scasw scasd",
    "control": "jmp call ret loop loope loopne jcxz jecxz " + " ".join(f"j{c}" for c in _C),
    "misc": "nop pause clc stc cmc cld std pushfd popfd int3 int into bound ud2",
    "mixed": "add imul div shld bt bsf movzx cmpxchg8b push enter daa",
}
PREFIX_WORDS = ("lock", "rep", "repe", "repne", "repz", "repnz", "notrack")


def _profile(family: str):
    mnemonics: collections.Counter[str] = collections.Counter()
    features: collections.Counter[str] = collections.Counter()
    for index in range(SAMPLE):
        case = generate(family, 1, index)
        assert len(case.code) + 1 <= CODE_SIZE
        for insn in case.insns:
            words = insn.text.split()
            while len(words) > 1 and words[0] in PREFIX_WORDS:
                features[words[0]] += 1
                words = words[1:]
            mnemonics[words[0]] += 1
            prefixes = insn.raw[:4]
            features["o16"] += 0x66 in prefixes
            features["a16"] += 0x67 in prefixes
    return mnemonics, features


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_covers_its_instructions(family: str) -> None:
    mnemonics, features = _profile(family)
    missing = set(EXPECTED[family].split()) - set(mnemonics)
    assert not missing, f"{family} never generated {sorted(missing)} in {SAMPLE} cases"
    # 16-bit operand and address sizes appear in every family that has memory operands
    if family not in ("bcd",):
        assert features["o16"] > 0 and features["a16"] > 0, features


def test_lock_and_rep_forms() -> None:
    _, features = _profile("string")
    assert features["rep"] and features["repe"] and features["repne"]
    _, features = _profile("misc")
    assert features["lock"] > 50


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cases_are_reproducible(family: str) -> None:
    for index in (0, 7, 123):
        first, second = generate(family, 42, index), generate(family, 42, index)
        assert first.code == second.code and first.unicorn_code == second.unicorn_code
        assert first.registers == second.registers and first.eflags == second.eflags
        assert first.memory == second.memory
        assert set(first.memory) == {base for base, _ in REGIONS}
        assert first.insns[0].address == CODE
