"""Random byte strings through dbt never raise a Python exception (robust.py).

Half the strings are purely random, half are generated cases with mutated
code.  Each must end normally or by a guest exception (or another ending the
guest causes); where both sides accept every executed instruction, the
exception vector and its EIP are compared with Unicorn's.
"""

from __future__ import annotations

import pytest

from .robust import RobustHarness

SEED = 1
CHUNK = 1000
CHUNKS = 4  # 4,000 byte strings
MIN_COMPARED = 0.1  # share of strings whose outcome must be compared with Unicorn

_harness: RobustHarness | None = None


@pytest.fixture(scope="module")
def robust() -> RobustHarness:
    global _harness
    if _harness is None:
        _harness = RobustHarness()
    return _harness


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_bytes(robust: RobustHarness, request: pytest.FixtureRequest, chunk: int) -> None:
    seed = request.config.getoption("--difftest-seed")
    seed = SEED if seed is None else seed
    failures = []
    compared = 0
    for index in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        result = robust.run(seed, index)
        compared += result.compared
        if result.problems:
            failures.append(f"robust/{seed}/{index}: " + "\n    ".join(result.problems))
    assert not failures, (f"{len(failures)} of {CHUNK} byte strings failed "
                          f"(re-run one with tests.difftest.robust.RobustHarness().run(seed, index)):\n"
                          + "\n".join(failures[:5]))
    assert compared >= MIN_COMPARED * CHUNK, f"only {compared} of {CHUNK} outcomes were comparable"
