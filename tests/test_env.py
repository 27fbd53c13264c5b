"""The translation flags word: remembered by its inputs, it must still follow
every change of them."""

from __future__ import annotations

from dbt.cpu.state import Seg, Slot
from dbt.lift.env import FLAT, PAGING, SINGLE_STEP, flags_word
from dbt.vmm.machine import Machine, MachineConfig


def test_the_flags_word_follows_segments_eflags_and_cr0() -> None:
    machine = Machine(MachineConfig(mode="native", jit="off", serial_sink=lambda data: None))
    slots = machine.slots
    before = flags_word(slots)
    assert before & FLAT
    attr = slots[Slot.DS_ATTR]
    machine.set_segment_cache(Seg.DS, slots[Slot.DS_SEL], 0x1000, 0xFFFFFFFF, attr)
    assert not flags_word(slots) & FLAT  # a based data segment
    machine.set_segment_cache(Seg.DS, slots[Slot.DS_SEL], 0, 0xFFFFFFFF, attr)
    assert flags_word(slots) == before
    slots[Slot.EFLAGS] |= 1 << 8
    assert flags_word(slots) == before | SINGLE_STEP
    slots[Slot.EFLAGS] &= ~(1 << 8)
    slots[Slot.CR0] |= 1 << 31
    assert flags_word(slots) == before | PAGING
    slots[Slot.CR0] &= ~(1 << 31)
    assert flags_word(slots, mode=1, vcpl=3) != before
    assert flags_word(slots) == before
