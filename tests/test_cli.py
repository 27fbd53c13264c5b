"""The command line: runs, lists, reports, and rejects bad input clearly."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import pytest

DBT = [sys.executable, "-m", "dbt"]


def dbt(*args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DBT, *args], capture_output=True, input=input_bytes, timeout=300)


def test_run_hello_prints_and_returns_qemu_status(built_guests) -> None:
    result = dbt("run", "hello")
    assert result.stdout == built_guests["hello"].expected_output
    assert result.returncode == 1  # isa-debug-exit with 0: (0 << 1) | 1
    assert result.stderr == b""


def test_stats_are_reported(built_guests) -> None:
    result = dbt("run", "loop", "--stats")
    assert b"chained transitions" in result.stderr
    assert b"blocks translated" in result.stderr


def test_guests_lists_each_shipped_guest(built_guests) -> None:
    result = dbt("guests")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.decode().splitlines()}
    assert listed == set(built_guests)


def test_instruction_budget_has_its_own_status(built_guests) -> None:
    result = dbt("run", "loop", "--max-insns", "1000")
    assert result.returncode == 8
    assert b"instruction budget" in result.stderr
    assert b"EIP" in result.stderr


@pytest.mark.parametrize("content, message", [
    (b"", b"too small"),
    (b"\x7fELF" + bytes(200), b"no Multiboot header"),
    (bytes(100), b"no Multiboot header"),
])
def test_malformed_images_are_clear_errors(tmp_path: Path, content: bytes, message: bytes) -> None:
    image = tmp_path / "kernel.elf"
    image.write_bytes(content)
    result = dbt("run", str(image))
    assert result.returncode == 2
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


def test_unknown_guest_is_a_clear_error() -> None:
    result = dbt("run", "no-such-guest")
    assert result.returncode == 2
    assert b"neither a file nor a shipped guest" in result.stderr


def test_bad_memory_size_is_a_usage_error() -> None:
    result = dbt("run", "hello", "--memory", "lots")
    assert result.returncode == 2
    assert b"memory size" in result.stderr


def test_command_line_and_modules_reach_the_guest(built_guests, tmp_path: Path) -> None:
    module = tmp_path / "data.bin"
    module.write_bytes(bytes(range(200)) * 3)
    result = dbt("run", "bootinfo", "--append", "verbose level=3", "--module", f"{module}=data v1")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.decode().splitlines()
    assert "arguments: 'verbose level=3'" in lines
    assert "modules: 1" in lines
    assert f"module 0: 600 bytes, crc32 {zlib.crc32(module.read_bytes()):08x}, arguments 'v1'" in lines


def test_a_missing_module_is_a_usage_error(tmp_path: Path) -> None:
    result = dbt("run", "hello", "--module", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert b"is not a file" in result.stderr
