"""The translation cache: chaining, self-modifying code, invalidation."""

from __future__ import annotations

from dbt.session import RunOptions, run_guest


def _quiet(**kwargs) -> RunOptions:
    return RunOptions(serial_sink=lambda data: None, **kwargs)


def test_loop_transitions_follow_links(built_guests) -> None:
    result = run_guest("loop", _quiet())
    machine = result.machine
    stats = machine.cache.stats
    executions = sum(b.executions for b in machine.cache.blocks()) + stats.dropped_executions
    chained = executions - machine.unchained
    assert result.status == built_guests["loop"].expected_status
    assert executions > 100_000
    assert chained / executions >= 0.99, f"{chained} of {executions} transitions chained"


def test_self_modifying_code_is_noticed(built_guests) -> None:
    result = run_guest("smc", _quiet())
    stats = result.machine.cache.stats
    assert result.output == built_guests["smc"].expected_output
    assert result.status == built_guests["smc"].expected_status
    assert stats.code_writes > 0 and stats.invalidations > 0
