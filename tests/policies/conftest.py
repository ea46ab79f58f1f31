"""Fixtures for the policy pack: the baseline stack, and the pack running as a process behind the
engine's gRPC protocol (started once, stopped at the end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpufleet.engine import PolicyEngine
from tests.policies.policy_baseline import Stack, baseline

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policies"


@pytest.fixture
def stack() -> Stack:
    """A fresh copy of the compliant baseline stack."""
    return baseline()


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[PolicyEngine]:
    """The pack in ``policies/``, started as Pulumi starts it; stopped when the session ends."""
    eng = PolicyEngine(PACK_DIR, stack="test")
    request.addfinalizer(eng.close)
    eng.start()
    yield eng
    eng.close()
