"""Fixtures of the diff tests (the helpers are in diff_fixtures.py)."""

from __future__ import annotations

import pytest

from diff_fixtures import CASES


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> str:
    """Each fixture pair: capacity-cut, demand-raised, site-moved, unchanged."""
    return str(request.param)
