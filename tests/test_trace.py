"""``dbt run --log``: each item logs its kind of line, the log stays within
its bound, and logging leaves the guest's run unchanged."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dbt.session import RunOptions, run_guest
from dbt.trace import LOG_ITEMS, BoundedLog, ExecutionLog, LogItemError, parse_items

DBT = [sys.executable, "-m", "dbt"]
TRUNCATED = re.compile(rb"^dbt: log truncated at (\d+) bytes \(--log-limit\)\n$")


def dbt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DBT, *args], capture_output=True, timeout=300)


def logged_run(guest: str, items: str, limit_bytes: int = 1 << 30, **options):  # type: ignore[no-untyped-def]
    """Run ``guest`` with an execution log in memory: (result, log lines)."""
    stream = io.BytesIO()
    tracer = ExecutionLog(parse_items(items), BoundedLog(stream, limit_bytes))
    result = run_guest(guest, RunOptions(serial_sink=lambda data: None, tracer=tracer, **options))
    return result, stream.getvalue().decode().splitlines()


# -- items -----------------------------------------------------------------------------
def test_items_are_checked_and_listed() -> None:
    assert parse_items("in_asm, exec") == {"in_asm", "exec"}
    with pytest.raises(LogItemError, match="unknown log item.*bogus.*in_asm, exec, int, exits, cpu"):
        parse_items("exec,bogus")
    with pytest.raises(LogItemError, match="no log item"):
        parse_items(",")


def test_bad_item_is_a_usage_error() -> None:
    result = dbt("run", "hello", "--log", "in_asm,nonsense")
    assert result.returncode == 2
    assert b"nonsense" in result.stderr
    assert all(item.encode() in result.stderr for item in LOG_ITEMS)
    assert result.stdout == b""  # refused before the guest ran


def test_log_file_without_log_is_a_usage_error() -> None:
    result = dbt("run", "hello", "--log-file", "x.log")
    assert result.returncode == 2 and b"--log-file needs --log" in result.stderr


def test_in_asm_exec_exits_and_cpu_lines(built_guests) -> None:
    result, lines = logged_run("hello", "in_asm,exec,exits,cpu")
    kinds = {line.split()[0] for line in lines}
    assert kinds == {"in_asm", "exec", "exit", "cpu"}
    blocks = [line for line in lines if re.match(r"in_asm  block 0x[0-9a-f]{8}  \d+ instructions", line)]
    assert len(blocks) == result.machine.cache.stats.translated
    assert any(re.match(r"in_asm    0x[0-9a-f]{8}  ([0-9a-f]{2} )+\s*\w+", line) for line in lines)
    executions = [line for line in lines if line.startswith("exec")]
    assert all(re.match(r"exec    0x[0-9a-f]{8}  execution [\d,]+  icount [\d,]+$", line) for line in executions)
    # Chained blocks are logged too: far more executions than look-ups.
    assert len(executions) > result.machine.unchained
    assert all(re.match(r"cpu     eip=[0-9a-f]{8} eax=[0-9a-f]{8} .* eflags=[0-9a-f]{8} .*cpl=\d", line)
               for line in lines if line.startswith("cpu"))
    # Every exec line is followed by the cpu line of the same entry.
    for line, following in zip(lines, lines[1:], strict=False):
        if line.startswith("exec"):
            assert following.startswith(f"cpu     eip={line.split()[1][2:]}")
    exits = [line for line in lines if line.startswith("exit")]
    assert len(exits) == sum(result.machine.exits_by_reason.values())
    assert any(re.match(r"exit    callout:port-io  eip 0x[0-9a-f]{8}$", line) for line in exits)


def test_int_lines_give_vector_error_code_eip_and_kind(built_guests) -> None:
    _, lines = logged_run("exceptions", "int")
    assert lines and all(line.startswith("int     vector ") for line in lines)
    assert any(re.match(r"int     vector 0x00 #DE  error none    eip 0x[0-9a-f]{8}  fault$", line) for line in lines)
    assert any(re.search(r"#BP .* software$", line) for line in lines)
    assert any(re.search(r"error 0x[0-9a-f]{4}", line) for line in lines)


def test_traps_are_logged_with_their_reason(built_guests) -> None:
    result, lines = logged_run("hello", "exits", mode="trap")
    traps = [line for line in lines if line.startswith("trap")]
    assert len(traps) == sum(result.machine.traps.values())
    assert any(re.match(r"trap    emulate out  \(out\)  eip 0x[0-9a-f]{8}$", line) for line in traps)


def test_block_execution_is_observed_only_when_asked() -> None:
    assert not ExecutionLog(parse_items("in_asm,int,exits"), BoundedLog(io.BytesIO(), 100)).wants_blocks
    tracer = ExecutionLog(parse_items("exec"), BoundedLog(io.BytesIO(), 100))
    assert tracer.wants_blocks


def test_blocks_run_unwrapped_without_exec_or_cpu(built_guests) -> None:
    result, _ = logged_run("hello", "in_asm,exits")
    assert all(block.function.__name__.startswith("block_") for block in result.machine.cache.blocks()
               if block.artifacts.get("tier", "cold") == "cold")


# -- the bound -------------------------------------------------------------------------
def test_bounded_log_stops_with_one_line() -> None:
    stream = io.BytesIO()
    log = BoundedLog(stream, limit_bytes=25)
    assert log.write("0123456789\n") and log.write("0123456789\n")
    assert not log.write("0123456789\n")  # would pass 25 bytes
    assert not log.write("x\n")
    head, _, last = stream.getvalue().rpartition(b"0123456789\n")
    assert TRUNCATED.match(last).group(1) == b"22"  # type: ignore[union-attr]


@pytest.mark.parametrize("limit, limit_bytes", [("2K", 2048), ("300", 300), ("0", 0)])
def test_log_limit_bounds_the_file(built_guests, tmp_path: Path, limit: str, limit_bytes: int) -> None:
    path = tmp_path / "run.log"
    result = dbt("run", "hello", "--log", "in_asm,exec,cpu,exits", "--log-file", str(path),
                 "--log-limit", limit)
    assert result.returncode == 1 and result.stdout == built_guests["hello"].expected_output
    data = path.read_bytes()
    body, _, last = data[:-1].rpartition(b"\n")
    body = body + b"\n" if body else b""
    match = TRUNCATED.match(last + b"\n")
    assert match, data[-200:]
    assert int(match.group(1)) == len(body) <= limit_bytes
    assert len(data) <= limit_bytes + len(last) + 1


def test_log_goes_to_stderr_by_default(built_guests) -> None:
    result = dbt("run", "hello", "--log", "in_asm", "--log-limit", "4K")
    assert result.stdout == built_guests["hello"].expected_output
    assert result.stderr.startswith(b"in_asm  block 0x")
    assert TRUNCATED.match(result.stderr.splitlines(keepends=True)[-1])


# -- no effect on the guest --------------------------------------------------------------
@pytest.mark.parametrize("guest, mode", [("hello", "bt"), ("exceptions", "bt"), ("hello", "trap")])
def test_logging_does_not_change_the_run(built_guests, guest: str, mode: str) -> None:
    plain = run_guest(guest, RunOptions(serial_sink=lambda data: None, mode=mode))
    logged, lines = logged_run(guest, ",".join(LOG_ITEMS), mode=mode)
    assert lines
    assert logged.output == plain.output == built_guests[guest].expected_output
    assert (logged.status, logged.insns) == (plain.status, plain.insns)


def test_logging_does_not_change_the_command_output(built_guests, tmp_path: Path) -> None:
    plain = dbt("run", "hello")
    logged = dbt("run", "hello", "--log", ",".join(LOG_ITEMS), "--log-file", str(tmp_path / "log"))
    assert (logged.stdout, logged.returncode, logged.stderr) == (plain.stdout, plain.returncode, b"")
    assert (tmp_path / "log").stat().st_size > 0
