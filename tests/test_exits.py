"""Monitor exits the guest needs, and only those.

Setting IF returns to the monitor only while an interrupt is requested
(otherwise nothing could be taken before the monitor next looks anyway), and
port I/O only when the access left the monitor something to do, a data
segment load only when it changed what the translation assumed, a CR3 load
only when the code that follows it maps elsewhere now.  The
interrupt shadow after STI holds even where a block ends right after it.
"""

from __future__ import annotations

import pytest
from kernels import kludge_kernel

from dbt.decode import Decoder
from dbt.ir import Op
from dbt.lift.block import lift_block
from dbt.lift.env import CODE32, FLAT, LIMIT_SHIFT, PROTECTED, STACK32, TranslationEnv
from dbt.loader.multiboot import boot
from dbt.session import RunOptions, run_guest
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine, MachineConfig
from dbt.vmm.outcome import Ending

ITERATIONS = 3000
FLAT32 = TranslationEnv(CODE32 | STACK32 | FLAT | PROTECTED)
STI, NOP = b"\xfb", b"\x90"


def _lift(code: bytes, address: int, env: TranslationEnv = FLAT32):
    def fetch(pc: int) -> tuple[bytes, Exception | None]:
        offset = pc - address
        if offset >= len(code):
            return b"", LookupError("past the test's code")
        return code[offset:offset + 15], None

    return lift_block(address, env, fetch, Decoder()).ir.insts


def test_sti_goes_on_in_its_block_unless_an_interrupt_is_requested() -> None:
    insts = _lift(STI + NOP + NOP, 0x1000)
    (conditional,) = [inst for inst in insts if inst.op is Op.MONITOR_EXIT_IF]
    assert conditional.aux == (0x1001, "sti")
    assert insts[-1].op is Op.EXIT and insts[-1].aux == 0x1003


@pytest.mark.parametrize("where", ["page end", "instruction limit"])
def test_a_block_that_ends_right_after_sti_returns_to_the_monitor(where: str) -> None:
    """The instruction after STI runs before any interrupt: if it lies in
    the next block, the monitor must know that a shadow is open."""
    if where == "page end":
        insts = _lift(STI + NOP, 0x1FFF)
        after = 0x2000
    else:
        insts = _lift(STI + NOP, 0x1000, FLAT32.with_limit(1))
        after = 0x1001
    last = insts[-1]
    assert last.op is Op.EXIT_INDIRECT and last.aux == "sti"
    assert last.args[0].value == after  # type: ignore[union-attr]


@pytest.mark.parametrize("guest, mode, reason", [
    ("cli-sti", "native", "sti"),  # STI with nothing requested
    ("cli-sti", "bt", "callout:virtual-if-set"),
    ("in", "native", "io"),  # IN from the POST port: no device's timing or interrupt changes
    ("in", "bt", "callout:port-io"),
    ("ptemod", "native", "env"),  # INVLPG of a data page: the code's mappings stay
    ("ptemod", "bt", "callout:invalidate-page"),
    ("cr3", "native", "env"),  # CR3 loads between directories that map the code alike
    ("cr3", "bt", "callout:write-control-register"),
])
@pytest.mark.parametrize("jit", ["off", "always"])
def test_loops_that_leave_the_monitor_nothing_to_do_stay_in_the_guest(guest: str, mode: str, reason: str,
                                                                       jit: str, built_guests) -> None:
    result = run_guest(guest, RunOptions(serial_sink=lambda data: None, cmdline=f"n={ITERATIONS}",
                                         mode=mode, jit=jit))
    assert result.outcome.ending is Ending.DEBUG_EXIT and result.outcome.exit_value == 0, result.output
    assert result.machine.exits_by_reason.get(reason, 0) < ITERATIONS // 100


def _with_handler(vector: int, body: str) -> str:
    """A kernel with a GDT and an IDT whose gate ``vector`` leads to the
    label ``handler`` (in ``body``)."""
    return f"""
    mov esp, 0x90000
    mov dword ptr [0x1f0108], 0x0000ffff
    mov dword ptr [0x1f010c], 0x00cf9a00
    mov dword ptr [0x1f0110], 0x0000ffff
    mov dword ptr [0x1f0114], 0x00cf9200
    mov word ptr [0x1f0010], 0x17
    mov dword ptr [0x1f0012], 0x1f0100
    lgdt [0x1f0010]
    call here
here:
    pop eax
    add eax, handler - here
    mov edi, 0x200000 + {vector} * 8
    mov word ptr [edi], ax
    mov word ptr [edi + 2], 0x08
    mov word ptr [edi + 4], 0x8e00
    shr eax, 16
    mov word ptr [edi + 6], ax
    mov word ptr [0x1f0000], 0x7ff
    mov dword ptr [0x1f0002], 0x200000
    lidt [0x1f0000]
{body}
"""


def _pic_setup(mask: int) -> str:
    """Initialize the 8259 pair (vectors from 0x20) with ``mask`` on the master."""
    return f"""
    mov al, 0x11
    out 0x20, al
    mov al, 0x20
    out 0x21, al
    mov al, 4
    out 0x21, al
    mov al, 1
    out 0x21, al
    mov al, {mask:#x}
    out 0x21, al
"""


# With interrupts on and only IRQ 4 unmasked, an OUT enables the UART's
# transmitter-empty interrupt: it is requested at once, so it is taken right
# after the OUT.  The handler reports EBX, which the next instruction sets.
UART_INTERRUPT_AFTER_OUT = _with_handler(0x24, _pic_setup(0xef) + """
    mov dx, 0x3fc
    mov al, 8
    out dx, al
    xor ebx, ebx
    sti
    nop
    mov dx, 0x3f9
    mov al, 2
    out dx, al
    mov ebx, 1
    hlt
handler:
    mov eax, ebx
    out 0xf4, al
""")

# The local APIC's one-shot timer, programmed through its MMIO registers to
# 5,000 bus ticks (one per instruction: both are 10 ns), interrupts a
# two-instruction spin loop after 2,500 rounds; the handler reports them.
APIC_TIMER_BY_MMIO = _with_handler(0x30, """
    mov dword ptr [0xfee000f0], 0x1ff
    mov dword ptr [0xfee003e0], 0xb
    mov dword ptr [0xfee00320], 0x30
    xor ecx, ecx
    sti
    mov dword ptr [0xfee00380], 5000
spin:
    inc ecx
    jmp spin
handler:
    mov eax, ecx
    out 0xf4, eax
""")


def _run_kernel(code: str, mode: str, jit: str, machine: Machine | None = None):
    machine = machine or Machine(MachineConfig(mode=mode, jit=jit, serial_sink=lambda data: None,
                                               max_insns=5_000_000))
    boot(machine, kludge_kernel(code))
    outcome = run(machine)
    assert outcome.ending is Ending.DEBUG_EXIT, outcome.message
    return outcome.exit_value


@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
@pytest.mark.parametrize("jit", ["off", "always"])
def test_an_interrupt_a_port_write_requests_comes_right_after_it(mode: str, jit: str) -> None:
    assert _run_kernel(UART_INTERRUPT_AFTER_OUT, mode, jit) == 0  # EBX was still 0


@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
@pytest.mark.parametrize("jit", ["off", "always"])
def test_a_device_event_an_mmio_write_schedules_comes_on_time(mode: str, jit: str) -> None:
    """An MMIO access is a service point, as port I/O is: the timer's
    deadline is known from the write on."""
    assert _run_kernel(APIC_TIMER_BY_MMIO, mode, jit) == 2500


def test_a_data_segment_load_goes_on_in_its_block_unless_it_changed_the_translation() -> None:
    insts = _lift(b"\x8e\xd8" + NOP + NOP, 0x1000)  # mov ds, eax
    (conditional,) = [inst for inst in insts if inst.op is Op.MONITOR_EXIT_IF]
    assert conditional.aux == (0x1002, "env")
    assert insts[-1].op is Op.EXIT and insts[-1].aux == 0x1004


# GDT entry 0x18: a data segment based at 0x1000.  The load of DS and the
# read through it are in one block: the read must see the new base.
NEW_DATA_SEGMENT = _with_handler(0x0d, """
    mov dword ptr [0x1f0118], 0x1000ffff
    mov dword ptr [0x1f011c], 0x00cf9200
    mov word ptr [0x1f0010], 0x1f
    lgdt [0x1f0010]
    mov dword ptr [0x5000], 0x11
    mov dword ptr [0x6000], 0x22
    mov ax, 0x18
    mov ds, ax
    mov eax, dword ptr [0x5000]
    out 0xf4, al
handler:
    mov al, 0xee
    out 0xf4, al
""")

# Reloading the flat data selector, as kernel entry and exit paths do.
FLAT_RELOADS = _with_handler(0x0d, f"""
    mov ecx, {ITERATIONS}
again:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    push eax
    pop fs
    dec ecx
    jnz again
    xor eax, eax
    out 0xf4, al
handler:
    mov al, 0xee
    out 0xf4, al
""")

# POP DS of a selector beyond the GDT's limit raises #GP with ESP as it was
# before the POP: the handler reports how far ESP had moved (0).
FAULTING_POP = _with_handler(0x0d, """
    push 0x23
    mov ebx, esp
    pop ds
    mov al, 0xee
    out 0xf4, al
handler:
    lea eax, [esp + 16]
    sub eax, ebx
    out 0xf4, al
""")


@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
@pytest.mark.parametrize("jit", ["off", "always"])
def test_data_segment_loads_exit_only_when_the_translation_must_change(mode: str, jit: str) -> None:
    assert _run_kernel(NEW_DATA_SEGMENT, mode, jit) == 0x22
    machine = Machine(MachineConfig(mode=mode, jit=jit, serial_sink=lambda data: None, max_insns=5_000_000))
    assert _run_kernel(FLAT_RELOADS, mode, jit, machine) == 0
    assert machine.exits_by_reason.get("env", 0) < ITERATIONS // 100, machine.exits_by_reason
    assert _run_kernel(FAULTING_POP, mode, jit) == 0


@pytest.mark.parametrize("mode", ["native", "bt"])
def test_a_fault_delivered_from_compiled_code_goes_on_natively(mode: str, built_guests) -> None:
    """The pgfault loop: a #PF raised in compiled code is delivered from the
    dispatcher's callback, and the handler, its IRET and the retried load
    run on in native code without a return to Python's loop."""
    result = run_guest("pgfault", RunOptions(serial_sink=lambda data: None, cmdline=f"n={ITERATIONS}",
                                             mode=mode, jit="on"))
    assert result.outcome.ending is Ending.DEBUG_EXIT and result.outcome.exit_value == 0, result.output
    jit = result.machine.jit
    assert jit.native_entries < ITERATIONS // 100, jit.native_entries


# The PIT's channel 0 counts 100 ticks (about 8,400 instructions) in mode 0
# and raises IRQ 0 at the end; the 8259 is set up with only IRQ 0 unmasked
# and its reads of port 0x20 return the IRR.  IF stays clear while a loop of
# 20,000 instructions lets the event pass: nothing is taken, and no service
# need cut the loop at the event.
_PIT_EVENT_WITH_IF_CLEAR = "    cli\n" + _pic_setup(0xfe) + """
    mov al, 0x0a
    out 0x20, al
    mov al, 0x30
    out 0x43, al
    mov al, 100
    out 0x40, al
    xor al, al
    out 0x40, al
    mov ecx, 10000
spin:
    dec ecx
    jnz spin
"""

# The first device access after the event reads the IRR: it must see IRQ 0
# requested, as if the event had been serviced at its time.
IRR_READ_AFTER_A_PASSED_EVENT = _with_handler(0x20, _PIT_EVENT_WITH_IF_CLEAR + """
    in al, 0x20
    out 0xf4, al
handler:
    mov al, 0x55
    out 0xf4, al
""")

# STI after the event: the interrupt is taken right after STI's shadow (the
# NOP), before EBX is set, as when the event had cut the loop.
STI_AFTER_A_PASSED_EVENT = _with_handler(0x20, _PIT_EVENT_WITH_IF_CLEAR + """
    xor ebx, ebx
    sti
    nop
    mov ebx, 1
    hlt
handler:
    mov eax, ebx
    out 0xf4, al
""")


@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
@pytest.mark.parametrize("jit", ["off", "always"])
def test_a_device_read_sees_an_event_that_passed_with_interrupts_off(mode: str, jit: str) -> None:
    assert _run_kernel(IRR_READ_AFTER_A_PASSED_EVENT, mode, jit) & 1 == 1


@pytest.mark.parametrize("mode", ["native", "bt", "trap"])
@pytest.mark.parametrize("jit", ["off", "always"])
def test_sti_takes_an_interrupt_whose_event_passed_with_interrupts_off(mode: str, jit: str) -> None:
    assert _run_kernel(STI_AFTER_A_PASSED_EVENT, mode, jit) == 0


def test_an_event_with_interrupts_off_does_not_cut_blocks_short() -> None:
    """The loop runs whole blocks: no translation stops early for the event."""
    machine = Machine(MachineConfig(mode="native", jit="off", serial_sink=lambda data: None, max_insns=5_000_000))
    assert _run_kernel(IRR_READ_AFTER_A_PASSED_EVENT, "native", "off", machine) & 1 == 1
    assert not [block for block in machine.cache.blocks() if block.flags >> LIMIT_SHIFT]
