"""System operations shared by every execution path: CPUID, the time-stamp
counter, port I/O with its permission checks.

Each method reads like the SDM's pseudo-code for its instruction and works
on the machine's CPU state; translated code reaches them as helpers, the
trap-and-emulate monitor calls them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from dbt.cpu.state import CR0_PE, CR4_TSD, IOPL_MASK, VM, Slot
from dbt.vmm.faults import GuestFault

if TYPE_CHECKING:
    from dbt.vmm.machine import Machine

GP = 13

VENDOR = b"DBT x86 vCPU"
BRAND = b"dbt binary-translating virtual CPU".ljust(48, b"\0")

# CPUID.1:EDX feature bits dbt implements.
FEATURE_TSC = 1 << 4
FEATURE_CX8 = 1 << 8
FEATURE_CMOV = 1 << 15


class SystemOps:
    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.slots = machine.slots
        self.features_edx = FEATURE_TSC | FEATURE_CX8 | FEATURE_CMOV

    def extra_helpers(self) -> dict[str, Callable[..., Any]]:
        return {}

    # -- CPUID ---------------------------------------------------------------------------
    def cpuid(self) -> None:
        slots = self.slots
        leaf = slots[Slot.EAX]
        eax = ebx = ecx = edx = 0
        if leaf == 0:
            eax = 1
            ebx = int.from_bytes(VENDOR[0:4], "little")
            edx = int.from_bytes(VENDOR[4:8], "little")
            ecx = int.from_bytes(VENDOR[8:12], "little")
        elif leaf == 1:
            eax = (6 << 8) | (1 << 4) | 1  # family 6, model 1, stepping 1
            edx = self.features_edx
        elif leaf == 0x80000000:
            eax = 0x80000004
        elif 0x80000002 <= leaf <= 0x80000004:
            chunk = BRAND[(leaf - 0x80000002) * 16:][:16]
            eax, ebx, ecx, edx = (int.from_bytes(chunk[i:i + 4], "little") for i in range(0, 16, 4))
        slots[Slot.EAX], slots[Slot.EBX], slots[Slot.ECX], slots[Slot.EDX] = eax, ebx, ecx, edx

    # -- time -------------------------------------------------------------------------------
    def rdtsc(self, insn_index: int) -> int:
        slots = self.slots
        if slots[Slot.CR4] & CR4_TSD and slots[Slot.CPL] != 0:
            raise GuestFault(GP, 0)
        return self.machine.clock.tsc(self.machine.icount + insn_index)

    # -- port I/O ----------------------------------------------------------------------------
    def io_allowed(self, port: int, size_bytes: int) -> bool:
        """CPL <= IOPL, or every port's bit clear in the TSS I/O permission bitmap."""
        slots = self.slots
        eflags = slots[Slot.EFLAGS]
        if not slots[Slot.CR0] & CR0_PE:
            return True
        if not eflags & VM and slots[Slot.CPL] <= (eflags & IOPL_MASK) >> 12:
            return True
        tss_base, tss_limit = slots[Slot.TR_BASE], slots[Slot.TR_LIMIT]
        if tss_limit < 0x67:
            return False
        mmu = self.machine.mmu
        bitmap = tss_base + mmu.read(tss_base + 0x66, 2)
        last_byte = (port + size_bytes - 1) // 8
        if mmu.read(tss_base + 0x66, 2) + last_byte > tss_limit:
            return False
        bits = 0
        for byte in range(port // 8, last_byte + 1):
            bits |= mmu.read(bitmap + byte, 1) << (8 * (byte - port // 8))
        wanted = ((1 << size_bytes) - 1) << (port % 8)
        return not bits & wanted

    def io_in(self, port: int, size_bytes: int) -> int:
        if not self.io_allowed(port, size_bytes):
            raise GuestFault(GP, 0)
        return self.machine.bus.io_read(port & 0xFFFF, size_bytes)

    def io_out(self, port: int, value: int, size_bytes: int) -> None:
        if not self.io_allowed(port, size_bytes):
            raise GuestFault(GP, 0)
        self.machine.bus.io_write(port & 0xFFFF, size_bytes, value)
