"""The VGA colour text screen as text.

Not a bus device: the 80x25 text buffer at physical 0xB8000 is ordinary RAM
here, two bytes a cell (character, attribute).  Characters are code page
437, with the glyphs the VGA font shows for the control codes; attributes
(colours, blinking) and the CRTC start address and cursor are ignored.
"""

from __future__ import annotations

from collections.abc import Callable

TEXT_BUFFER_ADDRESS = 0xB8000
COLUMNS = 80
ROWS = 25
READ_CHUNK_BYTES = 4

# What the VGA ROM font draws for bytes 0x01-0x1F and 0x7F, which Python's
# cp437 codec decodes as control characters.
CONTROL_GLYPHS = " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼"
CP437 = CONTROL_GLYPHS + bytes(range(0x20, 0x7F)).decode("ascii") + "⌂" \
    + bytes(range(0x80, 0x100)).decode("cp437")


class VgaTextScreen:
    """Renders the screen from ``memory_read(address, size_bytes) -> int``."""

    def __init__(self, memory_read: Callable[[int, int], int],
                 address: int = TEXT_BUFFER_ADDRESS, columns: int = COLUMNS,
                 rows: int = ROWS) -> None:
        self.memory_read = memory_read
        self.address = address
        self.columns = columns
        self.rows = rows

    def buffer(self) -> bytes:
        """The raw cells (character, attribute pairs)."""
        size = self.columns * self.rows * 2
        return b"".join(
            self.memory_read(self.address + offset, READ_CHUNK_BYTES).to_bytes(READ_CHUNK_BYTES, "little")
            for offset in range(0, size, READ_CHUNK_BYTES)
        )[:size]

    def text(self) -> str:
        """The screen as lines joined by newlines, each with trailing blanks
        removed, and with the blank lines at the bottom left out."""
        characters = self.buffer()[::2]
        lines = [
            "".join(CP437[byte] for byte in characters[row * self.columns:(row + 1) * self.columns]).rstrip()
            for row in range(self.rows)
        ]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)
