"""Reading the campaign's command-line options (declared in tests/conftest.py)."""

from __future__ import annotations

import pytest


def slow_selected(config: pytest.Config) -> bool:
    """Whether the long campaign was asked for: ``-m slow`` or ``--difftest-cases``."""
    markexpr = config.getoption("markexpr", default="") or ""
    return "slow" in markexpr.replace("not slow", "") or config.getoption("--difftest-cases") is not None
