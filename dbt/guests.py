"""The guests dbt ships: found by name in the repository's ``guests/``."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path


def guests_directory() -> Path:
    override = os.environ.get("DBT_GUESTS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "guests"


@dataclass(frozen=True)
class Guest:
    name: str
    description: str
    exit_code: int  # the value the guest writes to isa-debug-exit on success
    directory: Path
    # Why its output under trap-and-emulate differs from bare hardware (None:
    # it avoids the sensitive unprivileged instructions and does not differ).
    trap_difference: str | None = None

    @property
    def image(self) -> Path:
        return guests_directory() / "build" / f"{self.name}.elf"

    @property
    def expected_output(self) -> bytes | None:
        path = self.directory / "expected.out"
        return path.read_bytes() if path.exists() else None

    @property
    def expected_status(self) -> int:
        return ((self.exit_code << 1) | 1) & 0xFF

    @property
    def built(self) -> bool:
        return self.image.exists()


def shipped_guests() -> list[Guest]:
    root = guests_directory()
    found = []
    for manifest in sorted(root.glob("*/guest.toml")):
        with manifest.open("rb") as handle:
            data = tomllib.load(handle)
        found.append(Guest(
            name=manifest.parent.name,
            description=str(data.get("description", "")),
            exit_code=int(data.get("exit_code", 0)),
            directory=manifest.parent,
            trap_difference=data.get("trap_difference"),
        ))
    return found


def find_guest(name: str) -> Guest | None:
    for guest in shipped_guests():
        if guest.name == name:
            return guest
    return None
