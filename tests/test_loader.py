"""The Multiboot loader: what a kernel finds in memory and in the
information structure, for both image forms, and clear errors for images
it cannot boot.  (bootinfo checks the same from inside a guest, against
QEMU's loader too: test_qemu.py.)"""

from __future__ import annotations

import struct

import pytest
from kernels import ENTRY, LOAD_ADDRESS, kludge_kernel

from dbt.cpu.state import Slot
from dbt.loader.multiboot import BOOT_MAGIC, ImageError, Module, boot, parse_kernel
from dbt.vmm.machine import Machine, MachineConfig

MIB = 1 << 20


def _machine(memory: int = 16 * MIB) -> Machine:
    return Machine(MachineConfig(memory_bytes=memory, serial_sink=lambda data: None))


def _info(machine: Machine) -> list[int]:
    return list(struct.unpack("<22I", machine.memory.read_bytes(machine.slots[Slot.EBX], 88)))


def _string(machine: Machine, address: int) -> bytes:
    data = machine.memory.read_bytes(address, 256)
    return data[:data.index(0)]


def test_aout_kludge_image_is_loaded_at_its_header_addresses() -> None:
    machine = _machine()
    image = kludge_kernel(b"\x90\xf4", bss=0x3000)
    machine.memory.load_image(LOAD_ADDRESS + len(image), b"\xaa" * 0x3000)  # must be zeroed
    info = boot(machine, image)
    assert info.entry == ENTRY and machine.slots[Slot.EIP] == ENTRY
    assert machine.memory.read_bytes(LOAD_ADDRESS, len(image)) == image
    assert machine.memory.read_bytes(LOAD_ADDRESS + len(image), 0x3000) == bytes(0x3000)
    assert machine.slots[Slot.EAX] == BOOT_MAGIC
    assert machine.slots[Slot.CR0] & 1  # protected mode, paging off
    assert not machine.slots[Slot.CR0] & 0x80000000


def test_information_structure() -> None:
    machine = _machine(16 * MIB)
    boot(machine, kludge_kernel(b"\xf4"), "kernel alpha=1",
         [Module(b"first module", "/boot/one arg"), Module(bytes(5000), "two")])
    flags, lower, upper, _, cmdline, mods_count, mods_addr = _info(machine)[:7]
    assert flags & 0b1001001101 == 0b1001001101  # memory, cmdline, modules, mmap, loader name
    assert lower == 639 and upper == 15 * 1024
    assert _string(machine, cmdline) == b"kernel alpha=1"
    assert mods_count == 2
    modules = [struct.unpack("<4I", machine.memory.read_bytes(mods_addr + 16 * i, 16)) for i in range(2)]
    (start1, end1, string1, _), (start2, end2, string2, _) = modules
    assert machine.memory.read_bytes(start1, end1 - start1) == b"first module"
    assert _string(machine, string1) == b"/boot/one arg"
    assert end2 - start2 == 5000 and _string(machine, string2) == b"two"
    assert start1 % 4096 == 0 and start2 % 4096 == 0 and start2 >= end1
    assert start1 >= LOAD_ADDRESS + 33  # after the kernel
    info = _info(machine)
    loader_name = info[16]  # after drives_length, drives_addr and config_table
    assert _string(machine, loader_name) == b"dbt"
    mmap_length, mmap_addr = info[11], info[12]
    entries = []
    for at in range(mmap_addr, mmap_addr + mmap_length, 24):
        size, base, length, kind = struct.unpack("<IQQI", machine.memory.read_bytes(at, 24))
        assert size == 20
        entries.append((base, length, kind))
    assert (0, 639 * 1024, 1) in entries
    assert (MIB, 15 * MIB, 1) in entries


def test_elf_sections_are_all_loaded(built_guests) -> None:
    """Multiboot: "all sections are loaded": the section-name table, which
    no segment holds, is in memory and its header says where."""
    machine = _machine(64 * MIB)
    boot(machine, built_guests["hello"].image.read_bytes(), "hello")
    info = _info(machine)
    assert info[0] & (1 << 5)
    count, size, table, names_index = info[7:11]
    assert size == 40
    headers = [struct.unpack("<10I", machine.memory.read_bytes(table + 40 * i, 40)) for i in range(count)]
    names_address = headers[names_index][3]
    assert names_address != 0
    names = {_string(machine, names_address + header[0]) for header in headers}
    assert {b".text", b".shstrtab"} <= names
    text = next(h for h in headers if _string(machine, names_address + h[0]) == b".text")
    assert text[3] <= machine.slots[Slot.EIP] < text[3] + text[5]  # the entry is in .text


@pytest.mark.parametrize("image, message", [
    (kludge_kernel(b"\xf4")[:4] + b"\0\0\0\0" + kludge_kernel(b"\xf4")[8:], "bad checksum"),
    (struct.pack("<3I", 0x1BADB002, 1 << 16, (-(0x1BADB002 + (1 << 16))) & 0xFFFFFFFF), "cut short"),
    (struct.pack("<3I", 0x1BADB002, 1 << 10, (-(0x1BADB002 + (1 << 10))) & 0xFFFFFFFF), "features dbt lacks"),
    (b"MZ" + bytes(100), "no Multiboot header"),
])
def test_images_dbt_cannot_boot_are_clear_errors(image: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_kernel(image)


def test_a_kernel_that_does_not_fit_is_an_error() -> None:
    machine = _machine(2 * MIB)
    with pytest.raises(ImageError, match="does not fit"):
        boot(machine, kludge_kernel(b"\xf4", bss=2 * MIB))
    with pytest.raises(ImageError, match="modules do not fit"):
        boot(machine, kludge_kernel(b"\xf4"), "", [Module(bytes(2 * MIB), "big")])
