"""Every shipped guest runs under dbt with its expected output and status."""

from __future__ import annotations

import pytest

from dbt.guests import shipped_guests
from dbt.session import RunOptions, run_guest

GUEST_NAMES = [g.name for g in shipped_guests() if g.name != "compute"]


@pytest.mark.parametrize("name", GUEST_NAMES)
def test_guest_output_and_status(name: str, built_guests) -> None:
    guest = built_guests[name]
    result = run_guest(name, RunOptions(serial_sink=lambda data: None, timeout_seconds=300))
    assert result.machine.lift_errors == []
    assert result.output == guest.expected_output, result.outcome.message
    assert result.status == guest.expected_status, result.outcome.message

