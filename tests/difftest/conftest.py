"""The differential campaign's options and fixtures.

``--difftest-cases`` and ``--difftest-seed`` are declared in tests/conftest.py.
The ``slow`` campaign runs only when asked for (``-m slow`` or
``--difftest-cases``), so ``make test`` stays short.
"""

from __future__ import annotations

import pytest

from .harness import Harness
from .options import slow_selected

_harness: Harness | None = None


@pytest.fixture(scope="session")
def harness(request: pytest.FixtureRequest) -> Harness:
    """dbt and Unicorn, one pair per worker process."""
    global _harness
    if _harness is None:
        _harness = Harness(jit=request.config.getoption("--difftest-jit"))
    return _harness


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if slow_selected(config):
        return
    skip = pytest.mark.skip(reason="the long campaign: make difftest (pytest -m slow tests/difftest)")
    for item in items:
        if "slow" in item.keywords and item.path.is_relative_to(config.rootpath / "tests" / "difftest"):
            item.add_marker(skip)
