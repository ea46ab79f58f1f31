"""``gpufleet backtest``: the JSON and table outputs, the two history layouts, and bad input (exit 2)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from backtest_fixtures import FIXTURES, step_points, write_csv

Run = Callable[..., tuple[int, str, str]]
STEP = str(FIXTURES / "Pulumi.step.yaml")


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A directory holding chat-70b.csv, the step history."""
    write_csv(tmp_path / "history" / "chat-70b.csv", step_points())
    return tmp_path / "history"


def test_json_report(run_cli: Run, history: Path) -> None:
    code, out, err = run_cli("backtest", "--stack", STEP, "--history", str(history), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data) == ["schema_version", "stack", "warmup_months", "strategies", "services", "totals"]
    assert [s["name"] for s in data["strategies"]] == ["point", "runway"]
    [svc] = data["services"]
    assert (svc["name"], svc["start"], svc["end"]) == ("chat-70b", "2025-04-06", "2025-08-31")
    point, runway = svc["strategies"]
    assert (point["strategy"], point["days_short"], point["unserved_token_hours"]) == ("point", 34, 2448000.0)
    assert point["orders"] == [{"ordered_on": "2025-06-06", "nodes": 1, "lands_on": "2025-07-06",
                                "reason": "plan at p50"}]
    assert runway["confidence"] == "p90" and runway["margin_days"] == 30.0
    assert data["totals"]["point"]["usd"] == 266359.68


def test_one_csv_for_a_one_service_stack_is_the_same_as_a_directory(run_cli: Run, history: Path) -> None:
    _, from_dir, _ = run_cli("backtest", "--stack", STEP, "--history", str(history), "--json")
    code, from_file, _ = run_cli("backtest", "--stack", STEP, "--history", str(history / "chat-70b.csv"), "--json")
    assert code == 0 and from_file == from_dir


def test_table_shows_both_strategies_and_the_difference(run_cli: Run, history: Path) -> None:
    code, out, _ = run_cli("backtest", "--stack", str(FIXTURES / "Pulumi.step-range.yaml"), "--history",
                           str(history))
    assert code == 0
    assert "chat-70b, 2025-04-06 to 2025-08-31" in out
    assert re.search(r"│ days short +│ +34 │ +0 │", out), out
    assert "point: plan at p50 (the point forecast)" in out
    assert "runway: plan at p90 + runway-covers-lead-time (p90, margin 30 days)" in out
    assert "runway vs point: -34 days short, +$" in out


@pytest.mark.parametrize(("args", "expected"), [
    (["--confidence", "q90"], "'q90' is not a quantile"),
    (["--confidence", "p99"], "chat-70b: p99 is outside the forecast's quantiles p50 .. p90"),
    (["--margin-days", "-1"], "-1 is out of range"),
    (["--warmup-months", "0"], "0 is not in the range"),
])
def test_bad_flags_are_bad_input(run_cli: Run, history: Path, args: list[str], expected: str) -> None:
    code, out, err = run_cli("backtest", "--stack", str(FIXTURES / "Pulumi.step-range.yaml"), "--history",
                             str(history), *args)
    assert code == 2 and out == ""
    assert expected in err


def test_a_bad_row_names_file_and_line(run_cli: Run, history: Path) -> None:
    csv = history / "chat-70b.csv"
    lines = csv.read_text().splitlines()
    lines[4] = "2025-02-03,lots"
    csv.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli("backtest", "--stack", STEP, "--history", str(history))
    assert code == 2 and out == ""
    assert f"{csv}:5: peak 'lots' is not a number" in err


@pytest.mark.parametrize("case", ["missing", "extra", "one-file-two-services", "too-short", "no-such-path"])
def test_history_layout_problems_are_bad_input(run_cli: Run, tmp_path: Path, case: str) -> None:
    stack, path, expected = STEP, tmp_path / "h", ""
    if case == "missing":
        write_csv(path / "chat-8b.csv", step_points())
        stack, expected = str(FIXTURES / "Pulumi.two.yaml"), f"{path} has no chat-70b.csv for service chat-70b"
    elif case == "extra":
        write_csv(path / "chat-70b.csv", step_points())
        write_csv(path / "chat-7b.csv", step_points())
        expected = f"{path / 'chat-7b.csv'} names no inference service of the stack"
    elif case == "one-file-two-services":
        path = write_csv(tmp_path / "chat-70b.csv", step_points())
        stack, expected = str(FIXTURES / "Pulumi.two.yaml"), "is one file, but the stack has 2 inference services"
    elif case == "too-short":
        write_csv(path / "chat-70b.csv", step_points()[:14])  # 2025-01-06 .. 2025-04-07: no month after the warm-up
        expected = "too short to replay"
    else:
        expected = f"cannot read {path}"
    code, out, err = run_cli("backtest", "--stack", stack, "--history", str(path))
    assert code == 2 and out == "", err
    assert expected in err


def test_a_missing_stack_is_bad_input(run_cli: Run, history: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("backtest", "--stack", str(tmp_path / "Pulumi.none.yaml"), "--history", str(history))
    assert code == 2 and out == ""
    assert "Pulumi.none.yaml" in err


@pytest.mark.parametrize(("edit", "expected"), [
    (("us-east-1c", "us-west-2c"), "fleet.sites[0].zones[2]: 'us-west-2c' is not an Availability Zone of region"),
    (("config:\n", "config:\n  gpufleet:images: {no-such-pool: ami-0123456789abcdef0}\n"), "no-such-pool"),
])
def test_a_plan_its_clouds_refuse_is_bad_input_before_any_replay(
        run_cli: Run, history: Path, tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    """Checked as `gpufleet plan` checks it: a backtest of a plan that could never deploy says so."""
    stack = tmp_path / "Pulumi.step.yaml"
    stack.write_text(Path(STEP).read_text().replace(*edit))
    code, out, err = run_cli("backtest", "--stack", str(stack), "--history", str(history))
    assert code == 2 and out == "", err
    assert expected in err, err
    code, _, plan_err = run_cli("plan", "--stack", str(stack))
    assert code == 2 and expected in plan_err


def test_the_runway_strategy_plans_at_plan_confidence_and_judges_at_the_flag(run_cli: Run, history: Path,
                                                                             tmp_path: Path) -> None:
    text = (FIXTURES / "Pulumi.step-zones.yaml").read_text(encoding="utf-8")
    stack = tmp_path / "Pulumi.p75.yaml"
    stack.write_text(text.replace("  gpufleet:fleet:\n", "  gpufleet:fleet:\n    plan_confidence: p75\n"),
                     encoding="utf-8")
    code, out, err = run_cli("backtest", "--stack", str(stack), "--history", str(history), "--json",
                             "--confidence", "p60")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema_version"] == 2
    assert [(s["name"], s["confidence"], s["policy_confidence"]) for s in data["strategies"]] == [
        ("point", "p50", None), ("runway", "p75", "p60")]
    [svc] = data["services"]
    assert (svc["survive_zone_losses"], svc["scenarios"]) == (1, {"viral": 0.5})
    assert svc["zones"] == ["aws-use1/us-east-1a", "aws-use1/us-east-1b", "aws-use1/us-east-1c"]
    code, table, _ = run_cli("backtest", "--stack", str(stack), "--history", str(history), "--confidence", "p60")
    assert re.search(r"│ days short after losses +│ +34 │ +34 │", table), table
    assert re.search(r"│ re-plans short in a scenario +│ +3 of 5 │ +3 of 5 │", table), table
    assert "runway: plan at p75 + runway-covers-lead-time (p60, margin 30 days)" in table
    assert "surviving 1 zone loss" in table
