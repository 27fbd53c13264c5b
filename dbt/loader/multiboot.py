"""Multiboot v1 kernels: the ELF and a.out-kludge forms GRUB and
``qemu-system-i386 -kernel`` accept.

The loader places the kernel's segments (and any modules) in guest RAM,
writes the Multiboot information structure the kernel receives in EBX
(memory sizes, the BIOS-style memory map, the command line, modules, the
ELF section headers, the boot loader's name), and sets up the CPU as the
specification requires: protected mode, flat segments, EAX=0x2BADB002.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dbt.cpu.state import Slot

HEADER_MAGIC = 0x1BADB002
BOOT_MAGIC = 0x2BADB002
HEADER_SEARCH_BYTES = 8192

# Header flags: what the kernel asks of the loader.
REQUEST_PAGE_ALIGN = 1 << 0
REQUEST_MEMORY_INFO = 1 << 1
REQUEST_VIDEO = 1 << 2
REQUEST_ADDRESSES = 1 << 16  # the a.out kludge: load per the header's address fields
SUPPORTED_REQUESTS = REQUEST_PAGE_ALIGN | REQUEST_MEMORY_INFO | REQUEST_VIDEO

# Information flags: what the loader provides.
INFO_MEMORY = 1 << 0
INFO_CMDLINE = 1 << 2
INFO_MODULES = 1 << 3
INFO_ELF_SECTIONS = 1 << 5
INFO_MEMORY_MAP = 1 << 6
INFO_LOADER_NAME = 1 << 9

# Where the loader puts its own data: conventional memory below 640 KiB,
# clear of the kernel (which Multiboot kernels load at 1 MiB or above).
INFO_ADDRESS = 0x9000
MMAP_ADDRESS = 0x9100
LOADER_NAME_ADDRESS = 0x9400
CMDLINE_ADDRESS = 0x9500
CMDLINE_MAX = 0x2000
MODULE_TABLE_ADDRESS = 0xB800
LOW_MEMORY_TOP = 0x9FC00  # mem_lower: 639 KiB
BOOT_LOADER_NAME = b"dbt"

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
SHT_NULL = 0
SHT_NOBITS = 8


class ImageError(Exception):
    """The file is not a Multiboot kernel dbt can boot; the message says why."""


@dataclass
class Segment:
    address: int
    data: bytes
    memory_size: int


@dataclass
class ElfSections:
    """The ELF section header table and the sections no segment loads
    (the string and symbol tables), which the loader places in memory."""

    count: int
    entry_size: int
    string_index: int
    table: bytes
    unloaded: list[tuple[int, bytes]]  # (section index, contents)


@dataclass
class KernelImage:
    entry: int
    segments: list[Segment]
    header_flags: int
    section_headers: ElfSections | None = None

    @property
    def end(self) -> int:
        return max(s.address + s.memory_size for s in self.segments)


@dataclass
class Module:
    data: bytes
    string: str


@dataclass
class BootInfo:
    entry: int
    info_address: int
    kernel_start: int
    kernel_end: int
    modules: list[tuple[int, int, str]] = field(default_factory=list)


def find_header(data: bytes) -> tuple[int, int]:
    """(offset, flags) of the Multiboot header in the first 8 KiB."""
    limit = min(len(data), HEADER_SEARCH_BYTES) - 12
    for offset in range(0, limit + 1, 4):
        magic, flags, checksum = struct.unpack_from("<III", data, offset)
        if magic == HEADER_MAGIC:
            if (magic + flags + checksum) & 0xFFFFFFFF:
                raise ImageError(f"the Multiboot header at offset {offset:#x} has a bad checksum")
            return offset, flags
    raise ImageError("no Multiboot header in the first 8 KiB (is this a Multiboot v1 kernel?)")


def parse_kernel(data: bytes) -> KernelImage:
    if len(data) < 12:
        raise ImageError("the file is too small to be a kernel")
    offset, flags = find_header(data)
    unsupported = flags & 0xFFFF & ~SUPPORTED_REQUESTS
    if unsupported:
        raise ImageError(f"the kernel requires Multiboot features dbt lacks (flags {unsupported:#x})")
    if flags & REQUEST_ADDRESSES:
        return _parse_aout_kludge(data, offset, flags)
    if data[:4] != ELF_MAGIC:
        raise ImageError("the kernel is neither ELF nor carries load addresses (Multiboot flag 16)")
    return _parse_elf(data, flags)


def _parse_aout_kludge(data: bytes, offset: int, flags: int) -> KernelImage:
    if offset + 32 > len(data):
        raise ImageError("the Multiboot header is cut short (address fields missing)")
    header_addr, load_addr, load_end, bss_end, entry = struct.unpack_from("<5I", data, offset + 12)
    if load_addr > header_addr:
        raise ImageError("Multiboot header: load_addr lies above header_addr")
    file_start = offset - (header_addr - load_addr)
    if file_start < 0:
        raise ImageError("Multiboot header: load_addr would start before the file")
    end = len(data) - file_start + load_addr if load_end == 0 else load_end
    if end < load_addr:
        raise ImageError("Multiboot header: load_end_addr lies below load_addr")
    text = data[file_start:file_start + (end - load_addr)]
    memory_size = max(len(text), (bss_end - load_addr) if bss_end else 0)
    return KernelImage(entry, [Segment(load_addr, text, memory_size)], flags)


def _parse_elf(data: bytes, flags: int) -> KernelImage:
    if len(data) < 52:
        raise ImageError("the ELF header is cut short")
    if data[4] != 1:
        raise ImageError("the kernel is a 64-bit ELF; dbt boots 32-bit Multiboot kernels")
    if data[5] != 1:
        raise ImageError("the kernel ELF is not little-endian")
    (e_type, e_machine, _, e_entry, e_phoff, e_shoff, _, _, e_phentsize, e_phnum,
     e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from("<HHIIIIIHHHHHH", data, 16)
    if e_machine != 3:
        raise ImageError(f"the kernel ELF is for machine {e_machine}, not i386")
    if e_type != 2:
        raise ImageError("the kernel ELF is not an executable (ET_EXEC)")
    if e_phentsize < 32 or e_phoff + e_phnum * e_phentsize > len(data):
        raise ImageError("the ELF program headers lie outside the file")
    segments = []
    for index in range(e_phnum):
        p_type, p_offset, _, p_paddr, p_filesz, p_memsz = struct.unpack_from(
            "<6I", data, e_phoff + index * e_phentsize)
        if p_type != PT_LOAD or p_memsz == 0:
            continue
        if p_offset + p_filesz > len(data) or p_filesz > p_memsz:
            raise ImageError(f"ELF program header {index} describes bytes outside the file")
        segments.append(Segment(p_paddr, data[p_offset:p_offset + p_filesz], p_memsz))
    if not segments:
        raise ImageError("the kernel ELF has nothing to load (no PT_LOAD segment)")
    sections = None
    if e_shnum and e_shentsize >= 40 and e_shoff + e_shnum * e_shentsize <= len(data):
        table = data[e_shoff:e_shoff + e_shnum * e_shentsize]
        unloaded = []
        for index in range(e_shnum):
            sh_type, _, sh_addr, sh_offset, sh_size = struct.unpack_from("<5I", table, index * e_shentsize + 4)
            if sh_addr == 0 and sh_size and sh_type not in (SHT_NULL, SHT_NOBITS):
                if sh_offset + sh_size > len(data):
                    raise ImageError(f"ELF section {index} describes bytes outside the file")
                unloaded.append((index, data[sh_offset:sh_offset + sh_size]))
        sections = ElfSections(e_shnum, e_shentsize, e_shstrndx, table, unloaded)
    return KernelImage(e_entry, segments, flags, sections)


def memory_map(memory_bytes: int) -> list[tuple[int, int, int]]:
    """The BIOS-style map: (base, length, type) with type 1 usable, 2 reserved."""
    return [
        (0, LOW_MEMORY_TOP, 1),
        (LOW_MEMORY_TOP, 0xA0000 - LOW_MEMORY_TOP, 2),
        (0xF0000, 0x10000, 2),
        (0x100000, memory_bytes - 0x100000, 1),
        (0xFFFC0000, 0x40000, 2),
    ]


def boot(machine, data: bytes, cmdline: str = "", modules: list[Module] | None = None) -> BootInfo:
    """Load a Multiboot kernel into ``machine`` and set the CPU up to enter it."""
    kernel = parse_kernel(data)
    memory = machine.memory
    ram = memory.size_bytes
    if ram < 2 << 20:
        raise ImageError("a Multiboot kernel needs at least 2 MiB of guest memory")
    for segment in kernel.segments:
        end = segment.address + segment.memory_size
        if segment.address < 0x100000 and end > INFO_ADDRESS:
            raise ImageError(f"the kernel segment at {segment.address:#x} overlaps the boot information area")
        if end > ram:
            raise ImageError(
                f"the kernel segment at {segment.address:#x}..{end:#x} does not fit in "
                f"{ram >> 20} MiB of guest memory (use --memory)")
        memory.load_image(segment.address, segment.data.ljust(segment.memory_size, b"\0"))
    write = memory.load_image
    flags = INFO_MEMORY | INFO_MEMORY_MAP | INFO_LOADER_NAME | INFO_CMDLINE
    command_line = cmdline.encode() + b"\0"
    if len(command_line) > CMDLINE_MAX:
        raise ImageError(f"the command line is longer than {CMDLINE_MAX - 1} bytes")
    write(CMDLINE_ADDRESS, command_line)
    write(LOADER_NAME_ADDRESS, BOOT_LOADER_NAME + b"\0")
    entries = b"".join(struct.pack("<IQQI", 20, base, length, kind) for base, length, kind in memory_map(ram))
    write(MMAP_ADDRESS, entries)
    # Modules follow the kernel, page-aligned, with their strings after them.
    placed: list[tuple[int, int, str]] = []
    cursor = _align(kernel.end, 4096)
    section_fields = b"\0" * 16
    if kernel.section_headers is not None:
        # "All sections are loaded": the ones no segment holds go after the
        # table, whose copy gets their addresses.
        sections = kernel.section_headers
        table = bytearray(sections.table)
        table_address = cursor
        cursor = _align(cursor + len(table), 16)
        for index, contents in sections.unloaded:
            if cursor + len(contents) > ram:
                raise ImageError("no room in guest memory for the ELF sections")
            write(cursor, contents)
            struct.pack_into("<I", table, index * sections.entry_size + 12, cursor)
            cursor = _align(cursor + len(contents), 16)
        if cursor > ram:
            raise ImageError("no room in guest memory for the ELF section headers")
        write(table_address, bytes(table))
        section_fields = struct.pack("<4I", sections.count, sections.entry_size, table_address,
                                     sections.string_index)
        flags |= INFO_ELF_SECTIONS
        cursor = _align(cursor, 4096)
    if modules:
        module_table = b""
        for module in modules:
            start = cursor
            string = module.string.encode() + b"\0"
            if start + len(module.data) + len(string) > ram:
                raise ImageError("the modules do not fit in guest memory (use --memory)")
            write(start, module.data)
            string_address = start + len(module.data)
            write(string_address, string)
            module_table += struct.pack("<4I", start, start + len(module.data), string_address, 0)
            placed.append((start, start + len(module.data), module.string))
            cursor = _align(string_address + len(string), 4096)
        if len(module_table) > 0x1000:
            raise ImageError("too many modules")
        write(MODULE_TABLE_ADDRESS, module_table)
        flags |= INFO_MODULES
    info = struct.pack(
        "<13I", flags, LOW_MEMORY_TOP >> 10, (ram - 0x100000) >> 10, 0xFFFFFFFF, CMDLINE_ADDRESS,
        len(placed), MODULE_TABLE_ADDRESS if placed else 0, *struct.unpack("<4I", section_fields),
        len(entries), MMAP_ADDRESS,
    )
    info += struct.pack("<4I", 0, 0, 0, LOADER_NAME_ADDRESS)  # drives, config table, loader name
    write(INFO_ADDRESS, info.ljust(0x58, b"\0"))
    machine.reset_cpu()
    slots = machine.slots
    slots[Slot.EAX] = BOOT_MAGIC
    slots[Slot.EBX] = INFO_ADDRESS
    slots[Slot.EIP] = kernel.entry
    return BootInfo(kernel.entry, INFO_ADDRESS, min(s.address for s in kernel.segments), kernel.end, placed)


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment
