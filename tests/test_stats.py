"""``dbt run --stats`` and ``--perf-map``: what a run cost, and where its
compiled code lives for perf."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbt import cli, perfmap
from dbt.report import hot_blocks, leaves_early, stats_report
from dbt.session import RunOptions, run_guest
from dbt.vmm.machine import Machine

PERF_LINE = re.compile(r"^[0-9a-f]+ [0-9a-f]+ \S.*$")


@pytest.fixture(scope="module")
def loop_run(built_guests):  # type: ignore[no-untyped-def]
    return run_guest("loop", RunOptions(serial_sink=lambda data: None))


def section(report: str, title: str) -> list[str]:
    """The indented lines under a section title of the report."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        body.append(line.strip())
    return body


def test_top_blocks_by_retired_instructions(loop_run) -> None:
    report = stats_report(loop_run)
    rows = section(report, "top 10 blocks by retired instructions")[1:]
    rows = [row for row in rows if not row.startswith("(")]  # the footnote on lower bounds
    assert len(rows) == 10
    expected = hot_blocks(loop_run.machine)
    total = loop_run.machine.icount
    shares: list[float] = []
    for row, block in zip(rows, expected, strict=True):
        address, executions, insns, retired, share, *bound = row.split(maxsplit=5)
        assert int(address, 16) == block.pc
        assert int(executions.replace(",", "")) == block.executions
        assert int(insns) == block.insn_count
        # A block that can leave early (REP) counts its shortest exit, and says so.
        early = leaves_early(block)
        per_execution = min(n for n in block.exit_insns if n) if early else block.insn_count
        assert int(retired.replace(",", "")) == block.executions * per_execution
        assert share == f"{100 * block.executions * per_execution / total:.1f}%"
        assert bound == (["at least"] if early else [])
        shares.append(float(share.rstrip("%")))
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) <= 100.5
    if not loop_run.machine.native_symbols():  # native code may not count executions
        assert shares[0] > 50  # the loop's xorshift block


def test_time_is_split_into_translating_compiling_and_executing(loop_run) -> None:
    rows = section(stats_report(loop_run), "time")
    seconds = {}
    for row in rows:
        label, value = re.match(r"(\D+?)\s+([\d.]+) s", row).groups()  # type: ignore[union-attr]
        seconds[label] = float(value)
    assert list(seconds) == ["translating", "compiling (hot tier)", "executing"]
    assert abs(sum(seconds.values()) - loop_run.wall_seconds) < 0.01
    assert seconds["translating"] == pytest.approx(loop_run.machine.translate_seconds, abs=0.001)


def test_hot_tier_chaining_is_reported_from_the_block_counters(loop_run) -> None:
    """'native block runs' is the compiled blocks begun in native code, and
    its share those not entered from Python; 'native transitions' the
    crossings between regions through the native table."""
    jit = loop_run.machine.jit
    report = stats_report(loop_run)
    runs = re.search(r"^    native block runs +([\d,]+)   \(([\d.]+)% reached from native code; ([\d,]+) entries "
                     r"from Python", report, re.M)
    assert runs, report
    assert int(runs.group(1).replace(",", "")) == jit.native_block_runs > 0
    assert int(runs.group(3).replace(",", "")) == jit.native_entries
    assert float(runs.group(2)) == pytest.approx(100 * (1 - jit.native_entries / jit.native_block_runs), abs=0.01)
    crossings = re.search(r"^    native transitions +([\d,]+)", report, re.M)
    assert crossings and int(crossings.group(1).replace(",", "")) == jit.native_transitions


def test_monitor_exits_by_reason(loop_run) -> None:
    report = stats_report(loop_run)
    exits = loop_run.machine.exits_by_reason
    total = re.search(r"^  monitor exits\s+([\d,]+)$", report, re.M)
    assert total and int(total.group(1).replace(",", "")) == sum(exits.values())
    rows = dict(row.rsplit(None, 1) for row in section(report, "monitor exits"))
    assert {reason: int(count.replace(",", "")) for reason, count in rows.items()} == exits
    assert "callout:port-io" in rows


def test_traps_by_reason_and_instruction(built_guests) -> None:
    result = run_guest("hello", RunOptions(serial_sink=lambda data: None, mode="trap"))
    report = stats_report(result)
    rows = section(report, "traps")
    counted = {}
    for row in rows:
        reason, mnemonic, count = re.match(r"(.+?)\s{2,}(\S+)\s+([\d,]+)$", row).groups()  # type: ignore[union-attr]
        counted[(reason, mnemonic)] = int(count.replace(",", ""))
    assert counted == result.machine.traps
    assert ("emulate out", "out") in counted


def test_cache_statistics_are_kept(loop_run) -> None:
    report = stats_report(loop_run)
    for label in ("guest instructions", "blocks translated", "chained transitions", "look-ups",
                  "links made", "invalidations", "flushes"):
        assert re.search(rf"^  {label}\s+[\d,]+", report, re.M), label


def test_stats_on_the_command_line(built_guests, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["run", "hello", "--stats"]) == 1
    captured = capsys.readouterr()
    assert captured.out.encode() == built_guests["hello"].expected_output
    assert "top " in captured.err and "executing" in captured.err


def test_stats_count_the_table_misses_of_compiled_code(built_guests, capsys) -> None:  # type: ignore[no-untyped-def]
    """The multitask kernel loads CR3 at every context switch, which empties
    the native table: compiled kernel code the dispatcher then misses is
    published again (3,282 times in a run when this was written)."""
    assert cli.main(["run", "multitask", "--stats", "--jit-compile", "foreground"]) == 1
    line = re.search(r"table misses +([\d,]+) ", capsys.readouterr().err)
    assert line is not None and int(line.group(1).replace(",", "")) > 100


def test_stats_count_the_page_walks_of_compiled_code(built_guests, capsys) -> None:  # type: ignore[no-untyped-def]
    """Each ``ptemod`` iteration rewrites a PTE, INVLPGs the page and loads
    through it: once the loop is compiled, that load's TLB miss is walked
    in native code (all but the first couple of thousand of the 10,000)."""
    assert cli.main(["run", "ptemod", "--stats", "--jit-compile", "foreground"]) == 1
    line = re.search(r"page walks +([\d,]+) .*; ([\d,]+) went to the monitor", capsys.readouterr().err)
    assert line is not None
    native, monitor = (int(group.replace(",", "")) for group in line.groups())
    assert native > 5000 and monitor < native


@pytest.mark.parametrize("compile_in", ["background", "foreground"])
def test_stats_show_where_the_hot_tier_compiled(compile_in: str, built_guests, capsys) -> None:  # type: ignore[no-untyped-def]
    """In the background the worker's LLVM time is its own line, beside the
    run; the monitor's share (forming regions, linking) stays in the time
    split.  In the foreground all of it is the monitor's."""
    assert cli.main(["run", "compute", "--stats", "--jit-compile", compile_in]) == 1
    err = capsys.readouterr().err
    worker = re.search(r"compile worker +([\d.]+) s", err)
    monitor = re.search(r"compiling \(hot tier\) +([\d.]+) s", err)
    assert monitor is not None
    if compile_in == "background":
        assert worker is not None and float(worker.group(1)) > 4 * float(monitor.group(1))
    else:
        assert worker is None and float(monitor.group(1)) > 0.05


def test_an_unknown_compile_placement_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "compute", "--jit-compile", "sideways"])
    assert stop.value.code == 2
    assert "--jit-compile: invalid choice: 'sideways'" in capsys.readouterr().err


# -- perf map --------------------------------------------------------------------------
FAKE_SYMBOLS = [(0x7F00_0000_2000, 0x80, "guest_0x00101a40"), (0x7F00_0000_1000, 0x1C4, "guest_0x00100027")]


def test_perf_map_lines_are_start_size_name_in_hex() -> None:
    text = perfmap.perf_map_lines(FAKE_SYMBOLS)
    assert text == "7f0000001000 1c4 guest_0x00100027\n7f0000002000 80 guest_0x00101a40\n"
    assert perfmap.perf_map_lines([(0x10, 4, "two\nlines")]) == "10 4 two lines\n"
    assert perfmap.perf_map_lines([]) == ""


def test_perf_map_is_named_by_pid() -> None:
    assert perfmap.perf_map_path(1234) == Path("/tmp/perf-1234.map")


def test_perf_map_option_writes_the_machine_symbols(built_guests, tmp_path: Path, monkeypatch,
                                                    capsys) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "perf-1.map"
    monkeypatch.setattr(perfmap, "perf_map_path", lambda: target)
    monkeypatch.setattr(Machine, "native_symbols", lambda self: list(FAKE_SYMBOLS))
    assert cli.main(["run", "hello", "--perf-map"]) == 1
    lines = target.read_text().splitlines()
    assert lines == ["7f0000001000 1c4 guest_0x00100027", "7f0000002000 80 guest_0x00101a40"]
    assert f"perf map written to {target} (2 compiled regions)" in capsys.readouterr().err


def test_perf_map_without_compiled_code_is_empty_and_says_so(built_guests, tmp_path: Path, monkeypatch,
                                                             capsys) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "perf-2.map"
    monkeypatch.setattr(perfmap, "perf_map_path", lambda: target)
    monkeypatch.setattr(Machine, "native_symbols", lambda self: [])
    assert cli.main(["run", "hello", "--perf-map"]) == 1
    assert target.exists() and target.read_text() == ""
    assert "empty" in capsys.readouterr().err


def test_perf_map_of_a_real_run(built_guests, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "perf-3.map"
    monkeypatch.setattr(perfmap, "perf_map_path", lambda: target)
    assert cli.main(["run", "loop", "--perf-map"]) == 1
    assert all(PERF_LINE.match(line) for line in target.read_text().splitlines())
    assert f"perf map written to {target}" in capsys.readouterr().err
