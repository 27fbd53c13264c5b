"""The benchmark harness's bookkeeping (the measurements themselves are
only ever taken by ``make bench``, never asserted)."""

from __future__ import annotations

from dbt.bench import FOREGROUND, Measurement, compute_report


def test_the_time_split_reported_is_the_median_runs() -> None:
    """The split printed beside a configuration's median time comes from
    that same run, so its parts add up to the time printed."""
    row = Measurement("compute", FOREGROUND)
    for wall in (2.0, 3.0, 1.0):  # the median run is not the last
        row.add(wall, 1_000_000, 0, {"wall": wall, "translate": 0.1 * wall, "compile": 0.2 * wall,
                                     "execute": 0.7 * wall})
    assert row.median == 2.0 and row.median_split["wall"] == 2.0 and len(row.splits) == 3
    report = compute_report([row])
    assert "translate 0.200 s, compile 0.400 s, execute 1.400 s of 2.000 s" in report
