"""Helpers for the diff tests: fixture stack pairs planned once, sides built directly.

A module with its own name (not conftest) so that test modules import it unambiguously.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from gpufleet.diff import FleetDiff, Side, compare
from gpufleet.plan import FleetPlan, build_plan
from gpufleet.stackfile import load_stack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diff"
CASES = ("capacity-cut", "demand-raised", "site-moved", "unchanged")


def stack_file(case: str, label: str) -> Path:
    return FIXTURES / case / label / "Pulumi.fleet.yaml"


@lru_cache(maxsize=None)
def plan_of(case: str, label: str) -> FleetPlan:
    stack, spec = load_stack(stack_file(case, label))
    return build_plan(spec, stack)


def policy_of(case: str, label: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / case / "policy.json").read_text())
    return doc[label]


def side(case: str, label: str, *, with_policy: bool = True) -> Side:
    policy = policy_of(case, label) if with_policy else None
    return Side.planned(label, f"{case}/{label}/Pulumi.fleet.yaml", plan_of(case, label),
                        violations=policy["violations"] if policy else None,
                        verdict=policy["verdict"] if policy else None)


def diff_of(case: str) -> FleetDiff:
    return compare(side(case, "base"), side(case, "head"))
