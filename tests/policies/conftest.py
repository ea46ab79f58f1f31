"""Fixtures for the policy pack: the baseline stack, and the pack running as a process behind the
engine's gRPC protocol (started once, stopped at the end)."""

from __future__ import annotations

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


def started_engine(request: pytest.FixtureRequest, stack: str) -> PolicyEngine:
    """The pack in ``policies/``, started as Pulumi starts it; stopped when the fixture's scope ends."""
    eng = PolicyEngine(PACK_DIR, stack=stack)
    request.addfinalizer(eng.close)
    eng.start()
    return eng


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> PolicyEngine:
    """The pack for the whole session."""
    return started_engine(request, "test")
