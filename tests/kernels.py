"""Tiny Multiboot kernels made in a test: the a.out-kludge form (the
header carries the load addresses), from assembly or raw bytes."""

from __future__ import annotations

import struct

from keystone import KS_ARCH_X86, KS_MODE_32, Ks

LOAD_ADDRESS = 0x100000
HEADER_BYTES = 32
ENTRY = LOAD_ADDRESS + HEADER_BYTES


def kludge_kernel(code: bytes | str, bss: int = 0, load: int = LOAD_ADDRESS) -> bytes:
    """A kernel loaded at ``load`` whose entry point follows its 32-byte
    Multiboot header; ``bss`` zeroed bytes follow the code."""
    if isinstance(code, str):
        code = bytes(Ks(KS_ARCH_X86, KS_MODE_32).asm(code, load + HEADER_BYTES)[0])
    magic, flags = 0x1BADB002, 1 << 16
    end = load + HEADER_BYTES + len(code)
    header = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF,
                         load, load, end, end + bss, load + HEADER_BYTES)
    return header + code
