"""Shared test fixtures.  Lifter bugs must fail tests, not become #UD."""

from __future__ import annotations

import os

os.environ.setdefault("DBT_STRICT_LIFT", "1")

import pytest  # noqa: E402

from dbt.guests import shipped_guests  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--difftest-cases", type=int, default=None,
                     help="cases in the Unicorn differential campaign")
    parser.addoption("--difftest-seed", type=int, default=None, help="seed of the campaign")
    parser.addoption("--difftest-jit", default="off", choices=("off", "always"),
                     help="the tier dbt runs the campaign in (always: every block compiled)")


@pytest.fixture(scope="session")
def built_guests():
    guests = shipped_guests()
    missing = [g.name for g in guests if not g.built]
    if missing:
        pytest.fail(f"guests not built ({', '.join(missing)}): run `make guests`")
    return {g.name: g for g in guests}
