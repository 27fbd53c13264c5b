"""The guest CPU state: one ctypes struct of 32-bit slots.

Every field is a ``c_uint32`` so that the whole struct is also an array of
slots.  Python code reads and writes it through a ``memoryview`` cast to
``'I'`` (``cpu.slots[Slot.EAX]``); JIT-compiled code addresses the same bytes
as ``i32* state + slot``.  Adding a field is adding a slot name below.

Arithmetic flags are lazy: ``eflags`` holds every EFLAGS bit except CF, PF,
AF, ZF, SF and OF, which are a function of ``cc_op`` and the three operands
``cc_dst``/``cc_src``/``cc_src2`` (see ``dbt.lift.flags``).  When ``cc_op`` is
``CcOp.EFLAGS`` the arithmetic bits are held in ``eflags`` itself.
"""

from __future__ import annotations

import ctypes
import enum
from typing import TYPE_CHECKING

# Segment registers in the order of their x86 encoding (sreg field of ModRM),
# followed by the two system segments.
SEGMENT_NAMES = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")

# Per segment: the visible selector and the hidden descriptor cache.  The
# window fields hold the valid offset range precomputed from limit, type and
# expand-down, so a limit check is two compares (an unusable or non-readable
# segment has lo > hi).
SEGMENT_FIELDS = ("sel", "base", "limit", "attr", "rlo", "rhi", "wlo", "whi")


def _slot_names() -> list[str]:
    names = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"]
    names += ["eip", "eflags", "cc_op", "cc_dst", "cc_src", "cc_src2"]
    for seg in SEGMENT_NAMES:
        names += [f"{seg}_{field}" for field in SEGMENT_FIELDS]
    names += ["gdtr_base", "gdtr_limit", "idtr_base", "idtr_limit"]
    names += ["cr0", "cr2", "cr3", "cr4"]
    names += [f"dr{i}" for i in range(8)]
    names += ["cpl", "a20_mask"]
    names += ["sysenter_cs", "sysenter_esp", "sysenter_eip", "apic_base"]
    # Virtualization shadow state: what the guest believes it has while the
    # monitor runs it deprivileged.  Meaningful in the bt and trap modes.
    names += ["vcpl", "vif", "viopl", "vcr0", "vcr2", "vcr3", "vcr4"]
    names += ["vgdtr_base", "vgdtr_limit", "vidtr_base", "vidtr_limit"]
    names += ["vldtr_sel", "vtr_sel", "vcs_sel", "vss_sel"]
    # Execution-loop communication with compiled code: the instruction
    # budget left, the translation flags word, and why and where it stopped.
    names += ["budget", "flags_word", "exit_code", "exit_arg", "exit_error", "exit_index",
              "exit_length", "native_transitions"]
    # The CPU's INTR input as of the monitor's last look: 1 when an interrupt
    # controller requests a maskable interrupt, whatever IF says.  Code that
    # sets IF returns to the monitor only when it is 1.
    names += ["intr"]
    names += [f"spare{i}" for i in range(11)]
    return names


SLOT_NAMES: tuple[str, ...] = tuple(_slot_names())
if TYPE_CHECKING:
    # The members are made from SLOT_NAMES at run time; to the type checker
    # any upper-case attribute of Slot is a Slot.
    class _SlotMeta(enum.EnumMeta):
        def __getattr__(cls, name: str) -> Slot: ...

    class Slot(enum.IntEnum, metaclass=_SlotMeta):
        pass
else:
    Slot = enum.IntEnum("Slot", [(name.upper(), index) for index, name in enumerate(SLOT_NAMES)])


def segment_slot(segment: int, field: str) -> int:
    """Slot index of ``field`` ('base', 'sel', ...) of segment number ``segment``."""
    return Slot.ES_SEL + segment * len(SEGMENT_FIELDS) + SEGMENT_FIELDS.index(field)


class Seg(enum.IntEnum):
    ES = 0
    CS = 1
    SS = 2
    DS = 3
    FS = 4
    GS = 5
    LDTR = 6
    TR = 7


class CcOp(enum.IntEnum):
    """How the lazy arithmetic flags are to be computed from cc_dst/src/src2.

    The value is ``kind * 4 + size_index`` with size index 0, 1, 2 for 8, 16
    and 32-bit operations; ``EFLAGS`` means the flags are materialised.
    """

    EFLAGS = 0
    ADD8, ADD16, ADD32 = 4, 5, 6  # dst=result, src=b, src2=a; also ADC
    SUB8, SUB16, SUB32 = 8, 9, 10  # dst=result, src=b, src2=a; also SBB, CMP, NEG
    LOGIC8, LOGIC16, LOGIC32 = 12, 13, 14  # dst=result; CF=OF=AF=0
    INC8, INC16, INC32 = 16, 17, 18  # dst=result, src=CF before
    DEC8, DEC16, DEC32 = 20, 21, 22  # dst=result, src=CF before
    # dst=result; src holds CF, AF and OF as EFLAGS bits, computed eagerly.
    RESULT8, RESULT16, RESULT32 = 24, 25, 26


CC_KIND_NAMES = {0: "EFLAGS", 1: "ADD", 2: "SUB", 3: "LOGIC", 4: "INC", 5: "DEC", 6: "RESULT"}


def cc_op_for(kind: int, size_bits: int) -> int:
    return kind * 4 + {8: 0, 16: 1, 32: 2}[size_bits]


class CpuState(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in SLOT_NAMES]


SLOT_COUNT = len(SLOT_NAMES)
assert ctypes.sizeof(CpuState) == 4 * SLOT_COUNT

# EFLAGS bits.
CF = 1 << 0
PF = 1 << 2
AF = 1 << 4
ZF = 1 << 6
SF = 1 << 7
TF = 1 << 8
IF = 1 << 9
DF = 1 << 10
OF = 1 << 11
IOPL_MASK = 3 << 12
NT = 1 << 14
RF = 1 << 16
VM = 1 << 17
AC = 1 << 18
VIF = 1 << 19
VIP = 1 << 20
ID = 1 << 21
ARITH_FLAGS = CF | PF | AF | ZF | SF | OF
EFLAGS_FIXED_ONE = 1 << 1

# Control register bits.
CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_EM = 1 << 2
CR0_TS = 1 << 3
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_AM = 1 << 18
CR0_NW = 1 << 29
CR0_CD = 1 << 30
CR0_PG = 1 << 31
CR4_VME = 1 << 0
CR4_PVI = 1 << 1
CR4_TSD = 1 << 2
CR4_DE = 1 << 3
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
CR4_PGE = 1 << 7

GENERAL_REGISTER_NAMES = SLOT_NAMES[:8]
