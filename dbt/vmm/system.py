"""System operations shared by every execution path: CPUID, the time-stamp
counter, port I/O with its permission checks.

Each method reads like the SDM's pseudo-code for its instruction and works
on the machine's CPU state; translated code reaches them as helpers, the
trap-and-emulate monitor calls them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbt.cpu.state import (
    CR0_CD,
    CR0_NW,
    CR0_PE,
    CR0_PG,
    CR0_WP,
    CR4_DE,
    CR4_PAE,
    CR4_PGE,
    CR4_PSE,
    CR4_TSD,
    IOPL_MASK,
    VM,
    Slot,
)
from dbt.memory.physical import PAGE_SHIFT
from dbt.vmm.faults import GuestFault
from dbt.vmm.protection import Protection, Unsupported

if TYPE_CHECKING:
    from dbt.vmm.machine import Machine

GP = 13


def _answer(value: int | None) -> int:
    """LAR/LSL helper results: bit 32 says the selector passed."""
    return 0 if value is None else (1 << 32) | value

VENDOR = b"DBT x86 vCPU"
BRAND = b"dbt binary-translating virtual CPU".ljust(48, b"\0")

# CPUID.1:EDX feature bits dbt implements (and no others).
FEATURE_PSE = 1 << 3
FEATURE_TSC = 1 << 4
FEATURE_MSR = 1 << 5
FEATURE_CX8 = 1 << 8
FEATURE_APIC = 1 << 9
FEATURE_SEP = 1 << 11
FEATURE_PGE = 1 << 13
FEATURE_CMOV = 1 << 15
FEATURES = (FEATURE_PSE | FEATURE_TSC | FEATURE_MSR | FEATURE_CX8 | FEATURE_APIC | FEATURE_SEP
            | FEATURE_PGE | FEATURE_CMOV)

UD = 6

# Model-specific registers (anything else: #GP).
MSR_TSC = 0x10
MSR_APIC_BASE = 0x1B
MSR_SYSENTER_CS = 0x174
MSR_SYSENTER_ESP = 0x175
MSR_SYSENTER_EIP = 0x176
MSR_SLOTS = {MSR_SYSENTER_CS: Slot.SYSENTER_CS, MSR_SYSENTER_ESP: Slot.SYSENTER_ESP,
             MSR_SYSENTER_EIP: Slot.SYSENTER_EIP}

# CR4 bits a guest may set: those of features CPUID reports.
CR4_WRITABLE = CR4_TSD | CR4_DE | CR4_PSE | CR4_PGE
CR0_RESERVED = 0x1FFAFFC0  # bits that must be written as zero

class SystemOps:
    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.slots = machine.slots
        self.features_edx = FEATURES
        self.protection = Protection(machine, machine.view)
        self.tsc_offset = 0

    def extra_helpers(self) -> dict[str, Callable[..., Any]]:
        p = self.protection
        return {
            "load_segment": p.load_segment,
            "far_jump": lambda selector, offset, bits: p.far_jump(selector, offset, bits),
            "far_call": lambda selector, offset, bits, ret: p.far_call(selector, offset, bits, ret),
            "far_return": p.far_return,
            "iret": p.iret,
            "lar": lambda selector: _answer(p.lar(selector)),
            "lsl": lambda selector: _answer(p.lsl(selector)),
            "verify": lambda selector, write: int(p.verify(selector, bool(write))),
            "lldt": p.lldt,
            "ltr": p.ltr,
            "sysenter": p.sysenter,
            "sysexit": p.sysexit,
            "write_cr": self.write_cr,
            "write_cr3": self.write_cr3,
            "read_dr": self.read_dr,
            "write_dr": self.write_dr,
            "rdmsr": self.rdmsr,
            "wrmsr": self.wrmsr,
            "invlpg": self.invlpg,
        }

    # -- control registers ---------------------------------------------------------------
    def write_cr(self, number: int, value: int) -> None:
        """MOV to CR0/CR2/CR3/CR4 with the SDM's checks; TLB and translation
        consequences follow."""
        slots = self.slots
        machine = self.machine
        mmu = machine.mmu
        if number == 0:
            if value & CR0_RESERVED & 0xFFFFFFFF:
                raise GuestFault(GP, 0)
            if value & CR0_PG and not value & CR0_PE:
                raise GuestFault(GP, 0)
            if value & CR0_NW and not value & CR0_CD:
                raise GuestFault(GP, 0)
            if not value & CR0_PE:
                raise Unsupported("the guest left protected mode (real mode is not supported)")
            old = slots[Slot.CR0]
            slots[Slot.CR0] = value | 0x10  # ET is hardwired to 1
            if (old ^ value) & (CR0_PG | CR0_PE | CR0_WP):
                mmu.flush()
                machine.cache.forget_virtual()
            machine.env_changed()
        elif number == 2:
            slots[Slot.CR2] = value
        elif number == 3:  # (the translation flags word does not depend on it)
            self._load_cr3(value)
            machine.cache.forget_virtual()
        elif number == 4:
            if value & ~CR4_WRITABLE & 0xFFFFFFFF:
                raise GuestFault(GP, 0)
            old = slots[Slot.CR4]
            slots[Slot.CR4] = value
            if (old ^ value) & (CR4_PSE | CR4_PGE | CR4_PAE):
                mmu.flush()
                machine.cache.forget_virtual()
            machine.env_changed()
        else:
            raise GuestFault(UD)

    def write_cr3(self, value: int, resume: int, frame: int) -> int:
        """MOV to CR3 in a block translated from physical page ``frame``:
        1 if the next instruction, at EIP ``resume``, is no longer fetched
        from that page (the monitor looks it up anew, and delivers the #PF
        if it is not mapped at all); 0 if the block's successor may follow.
        The check walks the new page tables as that fetch would, accessed
        bits included."""
        machine = self.machine
        mmu = machine.mmu
        self._load_cr3(value)
        try:
            physical: int | None = mmu.code_physical((self.slots[Slot.CS_BASE] + resume) & 0xFFFFFFFF,
                                                     mmu.privilege())
        except GuestFault:
            physical = None
        moved = physical is None or physical >> PAGE_SHIFT != frame
        # The look-ups by EIP forget every page but this one when its code
        # stays where it was (the block's own page, translated from
        # ``frame``): what they found on it they would find again.
        machine.cache.forget_virtual(keep_page=None if moved else resume >> PAGE_SHIFT)
        return int(moved)

    def _load_cr3(self, value: int) -> None:
        """CR3 takes ``value``; the TLB forgets all but global pages."""
        self.slots[Slot.CR3] = value
        self.machine.mmu.flush(keep_global=True)

    def read_dr(self, number: int) -> int:
        return self.slots[Slot.DR0 + self._debug_register(number)]

    def write_dr(self, number: int, value: int) -> None:
        """Debug registers hold what is written; dbt does not raise debug
        exceptions from DR7 breakpoints (only single-step through TF)."""
        number = self._debug_register(number)
        if number == 6:
            value = (value & 0x0000E00F) | 0xFFFF0FF0
        elif number == 7:
            value = (value & 0xFFFF2BFF) | 0x400
        self.slots[Slot.DR0 + number] = value

    def _debug_register(self, number: int) -> int:
        """DR4 and DR5 alias DR6 and DR7 unless CR4.DE makes them #UD."""
        if number in (4, 5):
            if self.slots[Slot.CR4] & CR4_DE:
                raise GuestFault(UD)
            return number + 2
        return number

    def invlpg(self, linear: int, resume: int) -> int:
        """INVLPG: forget one linear page's translations, in the TLB and in
        the translation cache's look-ups by EIP.  1 if the page may hold the
        code from ``resume`` (the next EIP) to the end of its block, which
        was translated under the old mapping; 0 if the block may go on."""
        machine = self.machine
        machine.mmu.flush_page(linear)
        cs_base = self.slots[Slot.CS_BASE]
        start = (linear & 0xFFFFF000) - cs_base  # the page's first EIP
        first, last = (start & 0xFFFFFFFF) >> 12, ((start + 0xFFF) & 0xFFFFFFFF) >> 12
        machine.cache.forget_pages((first,) if first == last else (first, last))
        here = ((cs_base + resume) & 0xFFFFFFFF) >> 12
        return int(linear >> 12 in (here, (here + 1) & 0xFFFFF))

    # -- model-specific registers --------------------------------------------------------
    def rdmsr(self) -> None:
        slots = self.slots
        index = slots[Slot.ECX]
        if index == MSR_TSC:
            value = self.rdtsc(0)
        elif index == MSR_APIC_BASE:
            value = self.machine.apic_base
        elif index in MSR_SLOTS:
            value = slots[MSR_SLOTS[index]]
        else:
            raise GuestFault(GP, 0)
        slots[Slot.EAX] = value & 0xFFFFFFFF
        slots[Slot.EDX] = (value >> 32) & 0xFFFFFFFF

    def wrmsr(self) -> None:
        slots = self.slots
        index = slots[Slot.ECX]
        value = (slots[Slot.EDX] << 32) | slots[Slot.EAX]
        if index == MSR_TSC:
            now = self.machine.clock.tsc(self.machine.icount)
            self.tsc_offset = value - now
        elif index == MSR_APIC_BASE:
            if value & ~0xFFFFF900 & 0xFFFFFFFF or value >> 32:
                raise GuestFault(GP, 0)
            self.machine.apic_base = value
        elif index in MSR_SLOTS:
            slots[MSR_SLOTS[index]] = value & 0xFFFFFFFF
        else:
            raise GuestFault(GP, 0)

    # -- CPUID ---------------------------------------------------------------------------
    def cpuid(self) -> None:
        slots = self.slots
        leaf = slots[Slot.EAX]
        eax = ebx = ecx = edx = 0
        if leaf == 0:
            eax = 1  # the highest basic leaf
            ebx = int.from_bytes(VENDOR[0:4], "little")
            edx = int.from_bytes(VENDOR[4:8], "little")
            ecx = int.from_bytes(VENDOR[8:12], "little")
        elif leaf == 1:
            eax = (6 << 8) | (1 << 4) | 1  # family 6, model 1, stepping 1
            ebx = 1 << 16  # one logical processor, local APIC ID 0
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
        tsc = self.machine.clock.tsc(self.machine.icount + insn_index) + self.tsc_offset
        return tsc & 0xFFFFFFFFFFFFFFFF

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

    def io_in(self, port: int, size_bytes: int, insn_index: int = 0) -> int:
        if not self.io_allowed(port, size_bytes):
            raise GuestFault(GP, 0)
        return self.machine.port_in(port, size_bytes, insn_index)

    def io_out(self, port: int, value: int, size_bytes: int, insn_index: int = 0) -> int:
        if not self.io_allowed(port, size_bytes):
            raise GuestFault(GP, 0)
        return self.machine.port_out(port, value, size_bytes, insn_index)
