"""The 8042 keyboard controller (ports 0x60/0x64), port 0x92 (system control
port A) and the A20 gate they share.

Only what guests use to control the machine is modelled: the command byte,
self tests, the output port (A20 in bit 1, reset in bit 0), the pulse-reset
command and fast A20/reset through port 0x92.  A keyboard is present only to
acknowledge the commands a driver probes it with; it never sends keys, and
there is no auxiliary (mouse) device.  Commands are executed at once, so the
input buffer is never seen full.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from dbt.devices.bus import Device

DATA_PORT = 0x60
COMMAND_PORT = 0x64
PORT_92 = 0x92

STATUS_OUTPUT_FULL = 0x01
STATUS_SYSTEM = 0x04
STATUS_LAST_WRITE_COMMAND = 0x08
STATUS_NOT_INHIBITED = 0x10

CONFIG_KEYBOARD_INTERRUPT = 0x01
CONFIG_SYSTEM = 0x04
CONFIG_KEYBOARD_DISABLED = 0x10
CONFIG_AUX_DISABLED = 0x20
CONFIG_TRANSLATE = 0x40

OUTPUT_PORT_RESET = 0x01  # active low: writing 0 resets the processor
OUTPUT_PORT_A20 = 0x02

READ_CONFIG = 0x20
WRITE_CONFIG = 0x60
DISABLE_AUX = 0xA7
ENABLE_AUX = 0xA8
TEST_AUX = 0xA9
SELF_TEST = 0xAA
TEST_KEYBOARD = 0xAB
DISABLE_KEYBOARD = 0xAD
ENABLE_KEYBOARD = 0xAE
READ_INPUT_PORT = 0xC0
READ_OUTPUT_PORT = 0xD0
WRITE_OUTPUT_PORT = 0xD1
WRITE_KEYBOARD_OUTPUT = 0xD2
WRITE_AUX_OUTPUT = 0xD3
WRITE_AUX = 0xD4
DISABLE_A20 = 0xDD
ENABLE_A20 = 0xDF
PULSE_OUTPUT_PORT = 0xF0  # 0xF0-0xFF: pulse the output bits whose command bit is 0

SELF_TEST_PASSED = 0x55
INTERFACE_TEST_PASSED = 0x00
COMMANDS_WITH_DATA = {WRITE_CONFIG, WRITE_OUTPUT_PORT, WRITE_KEYBOARD_OUTPUT, WRITE_AUX_OUTPUT,
                      WRITE_AUX}

KEYBOARD_ACK = 0xFA
KEYBOARD_SELF_TEST_PASSED = 0xAA


class A20Gate:
    """A20 as the chipset combines it: enabled while the keyboard controller's
    output port bit 1 or port 0x92 bit 1 is set.  ``set_a20`` hears changes."""

    def __init__(self, set_a20: Callable[[bool], None]) -> None:
        self.set_a20 = set_a20
        self.from_keyboard_controller = True  # the state a BIOS leaves, as dbt's CPU starts
        self.from_port_92 = False

    @property
    def enabled(self) -> bool:
        return self.from_keyboard_controller or self.from_port_92

    def drive(self, *, keyboard_controller: bool | None = None, port_92: bool | None = None) -> None:
        before = self.enabled
        if keyboard_controller is not None:
            self.from_keyboard_controller = keyboard_controller
        if port_92 is not None:
            self.from_port_92 = port_92
        if self.enabled != before:
            self.set_a20(self.enabled)


class Ps2Keyboard:
    """Just enough of an MF2 keyboard to answer a driver's probe."""

    def __init__(self) -> None:
        self.awaiting_parameter_of: int | None = None

    def receive(self, byte: int) -> list[int]:
        """The bytes the keyboard sends back for ``byte``."""
        if self.awaiting_parameter_of is not None:
            command, self.awaiting_parameter_of = self.awaiting_parameter_of, None
            if command == 0xF0 and byte == 0:  # "get scan code set": set 2
                return [KEYBOARD_ACK, 0x02]
            return [KEYBOARD_ACK]
        if byte == 0xFF:  # reset and self test
            return [KEYBOARD_ACK, KEYBOARD_SELF_TEST_PASSED]
        if byte == 0xF2:  # identify: an MF2 keyboard
            return [KEYBOARD_ACK, 0xAB, 0x83]
        if byte == 0xEE:  # echo
            return [0xEE]
        if byte in (0xED, 0xF0, 0xF3):  # LEDs, scan code set, typematic: a parameter follows
            self.awaiting_parameter_of = byte
        return [KEYBOARD_ACK]


class Keyboard8042(Device):
    """The controller.  IRQ 1 is asserted while the output buffer holds a byte
    and the command byte enables keyboard interrupts (controller replies
    count, as on hardware)."""

    name = "i8042"

    def __init__(self, request_reset: Callable[[], None], a20: A20Gate,
                 set_irq1: Callable[[bool], None]) -> None:
        self.ports = [(DATA_PORT, 1), (COMMAND_PORT, 1)]
        self.request_reset = request_reset
        self.a20 = a20
        self.set_irq1 = set_irq1
        self.keyboard = Ps2Keyboard()
        # The state a BIOS leaves: interrupts on, self test passed, translation on.
        self.config = CONFIG_KEYBOARD_INTERRUPT | CONFIG_SYSTEM | CONFIG_TRANSLATE
        self.output_port = 0xCC | OUTPUT_PORT_A20 | OUTPUT_PORT_RESET  # as QEMU's reset value
        self.output: deque[int] = deque()
        self.last_output = 0
        self.pending_command: int | None = None
        self.last_write_was_command = False
        self._irq_level = False

    # -- the output buffer ---------------------------------------------------------------
    def _queue(self, *data: int) -> None:
        self.output.extend(data)
        self._drive_irq()

    def _drive_irq(self) -> None:
        level = bool(self.output) and bool(self.config & CONFIG_KEYBOARD_INTERRUPT)
        if level != self._irq_level:
            self._irq_level = level
            self.set_irq1(level)

    def status(self) -> int:
        value = STATUS_NOT_INHIBITED
        if self.output:
            value |= STATUS_OUTPUT_FULL
        if self.config & CONFIG_SYSTEM:
            value |= STATUS_SYSTEM
        if self.last_write_was_command:
            value |= STATUS_LAST_WRITE_COMMAND
        return value

    # -- ports --------------------------------------------------------------------------------
    def io_read(self, port: int, size_bytes: int) -> int:
        if port == COMMAND_PORT:
            return self.status()
        if self.output:
            self.last_output = self.output.popleft()
            # The next queued byte enters the buffer after this one is taken:
            # the line drops and rises again, a fresh edge for the PIC.
            if self._irq_level:
                self._irq_level = False
                self.set_irq1(False)
            self._drive_irq()
        return self.last_output

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        value &= 0xFF
        self.last_write_was_command = port == COMMAND_PORT
        if port == COMMAND_PORT:
            self.pending_command = value if value in COMMANDS_WITH_DATA else None
            self._command(value)
        elif self.pending_command is not None:
            command, self.pending_command = self.pending_command, None
            self._command_data(command, value)
        else:
            self._queue(*self.keyboard.receive(value))

    def _command(self, command: int) -> None:
        if command == READ_CONFIG:
            self._queue(self.config)
        elif command == SELF_TEST:
            self.config |= CONFIG_SYSTEM
            self._queue(SELF_TEST_PASSED)
        elif command in (TEST_KEYBOARD, TEST_AUX):
            self._queue(INTERFACE_TEST_PASSED)
        elif command == DISABLE_KEYBOARD:
            self.config |= CONFIG_KEYBOARD_DISABLED
        elif command == ENABLE_KEYBOARD:
            self.config &= ~CONFIG_KEYBOARD_DISABLED
        elif command == DISABLE_AUX:
            self.config |= CONFIG_AUX_DISABLED
        elif command == ENABLE_AUX:
            self.config &= ~CONFIG_AUX_DISABLED
        elif command == READ_INPUT_PORT:
            self._queue(0x80)  # keyboard not inhibited
        elif command == READ_OUTPUT_PORT:
            full = 0x10 if self.output else 0
            self._queue((self.output_port & ~0x30) | full)
        elif command == DISABLE_A20:
            self._write_output_port(self.output_port & ~OUTPUT_PORT_A20)
        elif command == ENABLE_A20:
            self._write_output_port(self.output_port | OUTPUT_PORT_A20)
        elif command >= PULSE_OUTPUT_PORT:
            # Bits 0-3 clear select output lines to pulse low; only line 0
            # (reset) does anything on a PC.  0xFE is the classic reboot.
            if not command & OUTPUT_PORT_RESET:
                self.request_reset()

    def _command_data(self, command: int, value: int) -> None:
        if command == WRITE_CONFIG:
            self.config = value & 0x7F
            self._drive_irq()
        elif command == WRITE_OUTPUT_PORT:
            self._write_output_port(value)
        elif command == WRITE_KEYBOARD_OUTPUT:
            self._queue(value)
        # WRITE_AUX_OUTPUT and WRITE_AUX: there is no mouse; the byte is dropped.

    def _write_output_port(self, value: int) -> None:
        self.output_port = value
        self.a20.drive(keyboard_controller=bool(value & OUTPUT_PORT_A20))
        if not value & OUTPUT_PORT_RESET:
            self.request_reset()


class SystemControlPortA(Device):
    """Port 0x92: bit 1 is fast A20, and a 0-to-1 transition of bit 0 resets
    the processor (INIT on real chipsets; the machine's reset here).  The
    other bits are stored and read back."""

    name = "port92"

    def __init__(self, request_reset: Callable[[], None], a20: A20Gate) -> None:
        self.ports = [(PORT_92, 1)]
        self.request_reset = request_reset
        self.a20 = a20
        self.value = 0

    def io_read(self, port: int, size_bytes: int) -> int:
        return self.value

    def io_write(self, port: int, size_bytes: int, value: int) -> None:
        before, self.value = self.value, value & 0xFF
        self.a20.drive(port_92=bool(value & 0x02))
        if value & 0x01 and not before & 0x01:
            self.request_reset()
