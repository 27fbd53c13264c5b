"""What a translation may assume about the CPU: the translation-cache key.

Everything a lifter consults about CPU state at translation time is in this
word; a block is reused only under an equal word, and any instruction that
can change one of these facts ends its block (so the next block is looked up
under the new word).  Packing it into an int keeps cache keys cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbt.cpu.state import (
    CR0_PE,
    CR0_PG,
    SEGMENT_FIELDS,
    Seg,
    Slot,
)

# Bits of the flags word.
CPL_MASK = 0x3
CODE32 = 1 << 2  # CS.D: default operand and address size 32
STACK32 = 1 << 3  # SS.B: ESP (not SP) is the stack pointer
FLAT = 1 << 4  # CS, SS, DS and ES have base 0, limit 4 GiB, usual rights
PAGING = 1 << 5  # CR0.PG
PROTECTED = 1 << 6  # CR0.PE
SINGLE_STEP = 1 << 7  # EFLAGS.TF: blocks of one instruction, each followed by #DB
ALIGN_CHECK = 1 << 12  # CR0.AM, EFLAGS.AC and CPL 3: misaligned accesses raise #AC
EMULATE = 1 << 13  # a trap handler's one-instruction emulation: the rules apply
A20_OFF = 1 << 14  # the A20 gate masks address bit 20 (physical is not linear without paging)
MODE_SHIFT = 8  # two bits: the virtualization mode (dbt.vmm.modes)
MODE_MASK = 3 << MODE_SHIFT
VCPL_SHIFT = 10  # two bits: the guest's virtual CPL in bt/trap modes
VCPL_MASK = 3 << VCPL_SHIFT
LIMIT_SHIFT = 16  # the block may hold at most this many instructions (0: default)

DEFAULT_MAX_INSNS = 64

_WINDOW_FLAT = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class TranslationEnv:
    flags: int

    @property
    def cpl(self) -> int:
        return self.flags & CPL_MASK

    @property
    def code_bits(self) -> int:
        return 32 if self.flags & CODE32 else 16

    @property
    def stack_bits(self) -> int:
        return 32 if self.flags & STACK32 else 16

    @property
    def flat(self) -> bool:
        return bool(self.flags & FLAT)

    @property
    def paging(self) -> bool:
        return bool(self.flags & PAGING)

    @property
    def mode(self) -> int:
        return (self.flags & MODE_MASK) >> MODE_SHIFT

    @property
    def vcpl(self) -> int:
        return (self.flags & VCPL_MASK) >> VCPL_SHIFT

    @property
    def emulate(self) -> bool:
        return bool(self.flags & EMULATE)

    @property
    def align_check(self) -> bool:
        return bool(self.flags & ALIGN_CHECK)

    @property
    def max_insns(self) -> int:
        if self.flags & SINGLE_STEP:
            return 1
        return (self.flags >> LIMIT_SHIFT) or DEFAULT_MAX_INSNS

    def with_limit(self, max_insns: int) -> TranslationEnv:
        return TranslationEnv((self.flags & ((1 << LIMIT_SHIFT) - 1)) | (max_insns << LIMIT_SHIFT))


def _segment_is_flat(slots, segment: int, write: bool) -> bool:
    base = slots[Slot.ES_SEL + segment * len(SEGMENT_FIELDS) + 1]
    lo_field = 6 if write else 4
    lo = slots[Slot.ES_SEL + segment * len(SEGMENT_FIELDS) + lo_field]
    hi = slots[Slot.ES_SEL + segment * len(SEGMENT_FIELDS) + lo_field + 1]
    return base == 0 and (lo, hi) == _WINDOW_FLAT


def flags_word(slots, mode: int = 0, vcpl: int = 0) -> int:
    """The flags word for the CPU state in ``slots`` (a uint32 memoryview).

    The monitor asks after every exit, so the answer is remembered by its
    inputs: the four segments' slots as bytes, CPL, TF/AC, CR0 and the mode.
    """
    key = (slots[_SEGMENTS].tobytes(), slots[Slot.CPL], slots[Slot.EFLAGS] & _EFLAGS_READ, slots[Slot.CR0],
           mode, vcpl)
    word = _known_words.get(key)
    if word is None:
        if len(_known_words) >= _KNOWN_WORDS_MAX:
            _known_words.clear()
        word = _known_words[key] = _compute_flags_word(slots, mode, vcpl)
    return word


# The slots flags_word reads besides CPL, EFLAGS and CR0: ES, CS, SS and DS.
_SEGMENTS = slice(Slot.ES_SEL, Slot.ES_SEL + (max(Seg.CS, Seg.SS, Seg.DS, Seg.ES) + 1) * len(SEGMENT_FIELDS))
_EFLAGS_READ = (1 << 8) | (1 << 18)  # TF, AC
_KNOWN_WORDS_MAX = 4096
_known_words: dict[tuple[bytes, int, int, int, int, int], int] = {}


def _compute_flags_word(slots, mode: int, vcpl: int) -> int:
    word = slots[Slot.CPL] & CPL_MASK
    cs_attr = slots[Slot.CS_ATTR]
    ss_attr = slots[Slot.SS_ATTR]
    if cs_attr & ATTR_DB:
        word |= CODE32
    if ss_attr & ATTR_DB:
        word |= STACK32
    eflags = slots[Slot.EFLAGS]
    if eflags & (1 << 8):  # TF
        word |= SINGLE_STEP
    cr0 = slots[Slot.CR0]
    if cr0 & (1 << 18) and eflags & (1 << 18) and vcpl == 3:  # AM, AC, the guest's ring 3
        word |= ALIGN_CHECK
    if cr0 & CR0_PG:
        word |= PAGING
    if cr0 & CR0_PE:
        word |= PROTECTED
    if (
        _segment_is_flat(slots, Seg.CS, False)
        and all(_segment_is_flat(slots, s, True) for s in (Seg.SS, Seg.DS, Seg.ES))
    ):
        word |= FLAT
    return word | (mode << MODE_SHIFT) | (vcpl << VCPL_SHIFT)


# Descriptor attribute bits as stored in a segment's ``attr`` slot: bits 8..23
# of the descriptor's high dword (type, S, DPL, P, AVL, L, D/B, G) shifted down by 8.
ATTR_TYPE_MASK = 0xF
ATTR_S = 1 << 4
ATTR_DPL_SHIFT = 5
ATTR_P = 1 << 7
ATTR_DB = 1 << 14
ATTR_G = 1 << 15
