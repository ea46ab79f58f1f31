"""Finite extremes and NaN in any quantity: refused as bad input naming the field (exit 2), and
whatever validates plans and prints as valid JSON — never a traceback, never `Infinity`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEV = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())

Mutate = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutate:
    """Set ``value`` at a dotted path (an instance type such as ``p5.48xlarge`` is the last key)."""
    head, _, key = path.partition(".p5.") if ".p5." in path else path.rpartition(".")
    key = "p5." + key if ".p5." in path else key

    def mutate(fleet: dict[str, Any]) -> None:
        node: Any = fleet
        for part in head.split(".") if head else []:
            node = node[int(part)] if part.isdigit() else node[part]
        node[key] = value
    return mutate


FIELDS = [
    "inference.0.growth_per_month", "inference.0.lead_time_days", "inference.0.horizon_days",
    "inference.0.headroom", "inference.0.peak_tokens_per_s", "inference.0.tokens_per_s_per_replica",
    "inference.0.model.params", "inference.0.context_tokens", "training.0.params", "training.0.tokens",
    "training.0.deadline_days", "sites.0.power_mw", "sites.0.carbon_g_per_kwh", "carbon_price_per_tonne",
    "sites.0.price_per_gpu_hour.p5.48xlarge", "sites.0.node_power_kw.p5.48xlarge",
]


Run = Callable[..., tuple[int, str, str]]


def _plan(run_cli: Run, tmp_path: Path, mutate: Mutate) -> tuple[int, str, str]:
    doc = json.loads(json.dumps(DEV))
    fleet = doc["config"]["gpufleet:fleet"]
    fleet["sites"][0].setdefault("node_power_kw", {"p5.48xlarge": 10.2})
    mutate(fleet)
    stack = tmp_path / "Pulumi.extreme.yaml"
    stack.write_text(yaml.safe_dump(doc))
    return run_cli("plan", "--stack", str(stack), "--json")


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", [1e308, 10**30])
def test_huge_values_are_refused_naming_the_field(run_cli: Run, tmp_path: Path, field: str, value: float) -> None:
    code, _, err = _plan(run_cli, tmp_path, _set(field, value))
    assert code == 2, err[-1500:]
    name = "p5.48xlarge" if "p5." in field else field.rsplit(".", 1)[-1]
    assert name in err
    assert "less than or equal to" in err or "valid integer" in err


@pytest.mark.parametrize(("field", "value"), [
    ("inference.0.growth_per_month", 10), ("inference.0.horizon_days", 3650), ("inference.0.lead_time_days", 3650),
    ("training.0.mfu", 1e-300), ("training.0.deadline_days", 1e-300), ("training.0.tokens", 1e17),
])
def test_extremes_inside_the_bounds_plan_or_fail_as_bad_input(run_cli: Run, tmp_path: Path, field: str,
                                                              value: float) -> None:
    code, out, err = _plan(run_cli, tmp_path, _set(field, value))
    assert code in (0, 2, 3), err[-1500:]
    if code == 0:
        json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in plan --json"))
    if code == 2:
        assert "more than gpufleet plans for one workload" in err or "more GPUs than any number" in err


@pytest.mark.parametrize(("field", "value", "message"), [
    ("training.0.mfu", True, "valid number"),
    ("training.0.mfu", "0.4", "valid number"),
    ("inference.0.concurrency", "32", "valid integer"),
    ("training.0.deadline_days", float("nan"), "finite number"),
])
def test_no_coercion_from_booleans_or_strings(run_cli: Run, tmp_path: Path, field: str, value: Any,
                                              message: str) -> None:
    code, _, err = _plan(run_cli, tmp_path, _set(field, value))
    assert code == 2 and message in err, err[-1500:]


@pytest.mark.parametrize("args", [
    ["size", "training", "--params", "7e10", "--tokens", "1e12", "--gpu", "H100", "--days", "30", "--mfu", "nan"],
    ["size", "training", "--params", "1e308", "--tokens", "1e12", "--gpu", "H100", "--days", "30", "--mfu", "0.4"],
    ["size", "training", "--params", "7e10", "--tokens", "1e12", "--gpu", "H100", "--days", "30", "--mfu", "1e-300"],
    ["size", "inference", "--params", "8e9", "--layers", "32", "--kv-heads", "8", "--head-dim", "128", "--dtype",
     "bf16", "--context-tokens", "8192", "--concurrency", "32", "--gpu", "L4", "--reserved-fraction", "nan"],
    ["size", "inference", "--params", "8e9", "--layers", "32", "--kv-heads", "8", "--head-dim", "128", "--dtype",
     "bf16", "--context-tokens", str(10**30), "--concurrency", "32", "--gpu", "L4"],
    ["place", "--input", "tests/fixtures/placement/feasible.json", "--time-limit-s", "nan"],
])
def test_flags_refuse_nan_and_extremes_naming_the_flag(run_cli: Run, args: list[str]) -> None:
    code, _, err = run_cli(*args)
    assert code == 2, err[-1500:]
    bad = args[[i for i, a in enumerate(args) if a.startswith("--") and i + 1 < len(args)
                 and args[i + 1] in ("nan", "1e308", "1e-300", str(10**30))][0]]
    assert bad in err
