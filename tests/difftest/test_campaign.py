"""The differential campaign: generated cases run on dbt and on Unicorn.

``make test`` runs the quick campaign (``QUICK``: about 25,000 cases, in
chunks of ``CHUNK`` so that ``pytest -n 2`` spreads them).  ``make
difftest`` runs the long one: ``pytest -m slow tests/difftest
--difftest-cases=N [--difftest-seed=S]`` spreads N cases over the families in
the same proportions.  A case is reproducible from (family, seed, index);
every failure message gives the command that re-runs it alone.
"""

from __future__ import annotations

import pytest

from .families import FAMILIES, generate
from .harness import Harness, describe
from .options import slow_selected

QUICK_SEED = 1
SLOW_SEED = 2
CHUNK = 500
SLOW_CHUNK = 4000
SLOW_DEFAULT_CASES = 400_000

# Cases per family in the quick campaign (the slow one keeps the proportions).
QUICK = {
    "arith": 2000, "logic": 1500, "muldiv": 2000, "bcd": 1500, "shift": 2000, "shiftd": 1500,
    "bits": 2000, "datamove": 2000, "exchange": 1500, "stack": 2000, "string": 2000,
    "control": 2000, "misc": 1500, "mixed": 2000,
}
assert set(QUICK) == set(FAMILIES)
QUICK_TOTAL = sum(QUICK.values())

SHOWN_FAILURES = 3


def chunks(counts: dict[str, int], size: int) -> list[tuple[str, int, int]]:
    """(family, first index, count) for every chunk."""
    result = []
    for family, total in counts.items():
        for start in range(0, total, size):
            result.append((family, start, min(size, total - start)))
    return result


def slow_counts(total: int) -> dict[str, int]:
    return {family: max(1, round(total * n / QUICK_TOTAL)) for family, n in QUICK.items()}


def run_chunk(harness: Harness, family: str, seed: int, start: int, count: int) -> None:
    failures: list[str] = []
    failed = 0
    for index in range(start, start + count):
        case = generate(family, seed, index)
        diffs, analysis, _, _ = harness.run_case(case)
        if diffs:
            failed += 1
            if len(failures) < SHOWN_FAILURES:
                failures.append(describe(case, diffs, analysis))
    if failed:
        pytest.fail(f"{failed} of {count} {family} cases (seed {seed}, indices {start}.."
                    f"{start + count - 1}) differ between dbt and Unicorn; the first:\n\n"
                    + "\n\n".join(failures), pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "slow_chunk" in metafunc.fixturenames:
        if not slow_selected(metafunc.config):
            reason = "the long campaign: make difftest (pytest -m slow tests/difftest --difftest-cases=N)"
            metafunc.parametrize("slow_chunk", [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                                 ids=["not-selected"])
            return
        total = metafunc.config.getoption("--difftest-cases") or SLOW_DEFAULT_CASES
        parts = chunks(slow_counts(total), SLOW_CHUNK)
        metafunc.parametrize("slow_chunk", parts, ids=[f"{f}-{s}" for f, s, _ in parts])


@pytest.mark.parametrize("family,start,count", chunks(QUICK, CHUNK),
                         ids=[f"{f}-{s}" for f, s, _ in chunks(QUICK, CHUNK)])
def test_campaign(harness: Harness, request: pytest.FixtureRequest, family: str, start: int,
                  count: int) -> None:
    seed = request.config.getoption("--difftest-seed")
    run_chunk(harness, family, QUICK_SEED if seed is None else seed, start, count)


@pytest.mark.slow
def test_long_campaign(harness: Harness, request: pytest.FixtureRequest, slow_chunk) -> None:
    family, start, count = slow_chunk
    seed = request.config.getoption("--difftest-seed")
    run_chunk(harness, family, SLOW_SEED if seed is None else seed, start, count)


def test_campaign_size() -> None:
    assert QUICK_TOTAL >= 20_000
    assert sum(c for _, _, c in chunks(slow_counts(400_000), SLOW_CHUNK)) >= 399_990


# -- the hot tier on the same cases ---------------------------------------------------------
COMPILED_CASES = 60  # per family: every block of every case compiled (slow to compile)
_compiled_harness: Harness | None = None


@pytest.fixture(scope="session")
def compiled_harness() -> Harness:
    """dbt with every block compiled to native code (``--jit always``)."""
    global _compiled_harness
    if _compiled_harness is None:
        _compiled_harness = Harness(jit="always")
    return _compiled_harness


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_campaign_with_every_block_compiled(compiled_harness: Harness, family: str) -> None:
    """The first cases of each family again, run by the hot tier: the native
    code must agree with Unicorn as the cold tier does.  (``make difftest``
    with ``--difftest-jit always`` runs a whole campaign this way.)"""
    run_chunk(compiled_harness, family, QUICK_SEED, 0, COMPILED_CASES)
