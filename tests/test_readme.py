"""The documentation's examples run as written.

Every ``$ .venv/bin/dbt ...`` line in a code block of README.md and of the
guides in docs/ is run, and every output line shown under it must appear in
what the command really printed (stdout and stderr).  Numbers and
hexadecimal values are compared as "a number", since timings, PIDs and
checksums of files may vary; "..." marks lines left out.  An example that
ends with ``; echo "status $?"`` shows its exit status, compared exactly.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROMPT = "$ .venv/bin/dbt "
ELISION = "..."
# An example may end by printing its exit status, which is then compared exactly.
STATUS_SUFFIX = '; echo "status $?"'

HEX = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b")
DIGITS = re.compile(r"[0-9]+")


@dataclass
class Example:
    document: str
    line: int
    command: str
    shown: list[str]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        in_block = False
        current: Example | None = None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
                current = None
                continue
            if not in_block:
                continue
            if line.startswith(PROMPT):
                current = Example(path.name, number, line[len(PROMPT):], [])
                found.append(current)
            elif current is not None and line.strip() not in (ELISION, ""):
                current.shown.append(line)
    return found


def normalize(line: str) -> str:
    """A line with every number and hexadecimal value as N, spaces collapsed."""
    line = DIGITS.sub("N", HEX.sub("N", line))
    line = re.sub(r"N(?:[.,]N)+", "N", line)
    return " ".join(line.split())


def test_the_documents_have_examples() -> None:
    found = examples()
    assert len(found) >= 10, [str(example) for example in found]
    assert any(example.command.startswith("run hello") for example in found)


@pytest.mark.parametrize("example", examples(), ids=str)
def test_example_runs_as_written(example: Example, built_guests) -> None:
    command = example.command
    shows_status = command.endswith(STATUS_SUFFIX)
    if shows_status:
        command = command[:-len(STATUS_SUFFIX)]
    argv = [sys.executable, "-m", "dbt", *shlex.split(command)]
    completed = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    printed = completed.stdout + completed.stderr
    if shows_status:
        status = f"status {completed.returncode}"
        assert status in example.shown, f"{example}: {status}, not as shown\n{printed[-3000:]}"
        printed += "\n" + status
    else:
        assert completed.returncode not in (2, 14), printed[-3000:]
    actual = {normalize(line) for line in printed.splitlines()}
    missing = [line for line in example.shown if normalize(line) not in actual]
    assert not missing, f"{example}: `dbt {example.command}` did not print:\n" + "\n".join(missing) + \
        "\n--- it printed:\n" + printed[:4000]
