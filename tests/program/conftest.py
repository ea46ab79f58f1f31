"""Runs of the real program (``__main__.py``) on the repository's stacks, cached for the session.

Each stack is run once under Pulumi's mocks through :func:`gpufleet.offline.run_program`; tests
read the recorded resources the way an operator reads ``pulumi preview --diff``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpufleet.offline import OfflineRun, run_program
from gpufleet.plan import FleetPlan, build_plan
from gpufleet.spec import FleetSpec
from gpufleet.stackfile import load_stack

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"


def stack_file(name: str) -> Path:
    return STACKS / f"Pulumi.{name}.yaml"


_RUNS: dict[str, OfflineRun] = {}
_PLANS: dict[str, tuple[FleetSpec, FleetPlan]] = {}


@pytest.fixture(scope="session")
def stack_run() -> Callable[[str], OfflineRun]:
    """``stack_run("prod")``: the recorded run of ``stacks/Pulumi.prod.yaml`` (run once per session)."""

    def get(name: str) -> OfflineRun:
        if name not in _RUNS:
            _RUNS[name] = run_program(stack_file(name))
        return _RUNS[name]

    return get


@pytest.fixture(scope="session")
def stack_plan() -> Callable[[str], tuple[FleetSpec, FleetPlan]]:
    """``stack_plan("prod")``: the spec and plan of a stack, computed by the core alone (no Pulumi)."""

    def get(name: str) -> tuple[FleetSpec, FleetPlan]:
        if name not in _PLANS:
            stack, spec = load_stack(stack_file(name))
            _PLANS[name] = (spec, build_plan(spec, stack))
        return _PLANS[name]

    return get
