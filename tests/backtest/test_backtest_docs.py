"""docs/runway.md's backtest worked case is what the command prints, and its history is what the
generator writes.

Each block between ``<!-- backtest-<case>:start -->`` and ``<!-- backtest-<case>:end -->`` holds the
command's table and a sentence whose figures come from its ``--json`` report. After a change to the
replay, refresh them with::

    GPUFLEET_UPDATE_DOCS=1 .venv/bin/pytest tests/backtest/test_backtest_docs.py
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from backtest_fixtures import EXAMPLE, REPO

RUNWAY_DOC = REPO / "docs" / "runway.md"
Run = Callable[..., tuple[int, str, str]]
CASES = {"declared": "Pulumi.backtest.yaml", "fit": "Pulumi.backtest-fit.yaml", "zones": "Pulumi.backtest-zones.yaml"}


def test_the_committed_history_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate_history", EXAMPLE / "generate_history.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    assert (EXAMPLE / "history" / "chat-70b.csv").read_text(encoding="utf-8") == text
    assert text == module.render()  # seeded: the same bytes every time
    weeks = text.splitlines()[1:]
    assert len(weeks) == 104 and weeks[0].startswith("2025-01-06,") and weeks[-1].startswith("2026-12-28,")


def summary(data: dict[str, Any]) -> str:
    """The sentence under a block: each strategy's shortfall, and what the runway strategy costs more."""
    [svc] = data["services"]
    point, runway = svc["strategies"]
    totals = data["totals"]
    extra = totals["runway"]["usd"] - totals["point"]["usd"]

    def short(o: dict[str, Any]) -> str:
        if not o["days_short"]:
            return "is never short"
        return (f"runs short on {o['days_short']} days from {o['first_short_on']} ({o['longest_short_run_days']} "
                f"in a row, {o['unserved_token_hours']:,.0f} token-hours unserved)")

    text = (f"Over {point['days']} days the point-forecast plan {short(point)}; p90 with the runway policy "
            f"{short(runway)}, for ${extra:,.0f} more at list price ({extra / totals['point']['usd']:+.1%}): "
            f"{runway['over_provisioned_gpu_hours']:,.0f} GPU-hours ahead of demand against "
            f"{point['over_provisioned_gpu_hours']:,.0f}.")
    if svc["survive_zone_losses"] or svc["survive_site_losses"]:
        text += (f" After losing a zone, the point plan would have been short on "
                 f"{point['days_short_after_losses']} days, the runway plan on {runway['days_short_after_losses']}.")
    for name, growth in svc["scenarios"].items():
        text += (f" Under the {name} scenario ({growth:.0%} a month), the point plan's capacity would have run out "
                 f"within the lead time after {point['scenario_short_replans']} of its {len(point['replans'])} "
                 f"re-plans, the runway plan's after {runway['scenario_short_replans']}.")
    return text


def block(case: str, run_cli: Run) -> str:
    args = ["backtest", "--stack", f"docs/examples/backtest/{CASES[case]}", "--history", "docs/examples/backtest/history"]
    code, table, err = run_cli(*args)
    assert code == 0, err
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    return (f"<!-- backtest-{case}:start -->\n\n```text\n$ gpufleet {' '.join(args)}\n{table}```\n\n"
            f"{summary(json.loads(out))}\n\n<!-- backtest-{case}:end -->")


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_worked_case_is_what_the_command_prints(case: str, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the doc shows the command as run from the repository root
    wanted = block(case, run_cli)
    start_tag, end_tag = f"<!-- backtest-{case}:start -->", f"<!-- backtest-{case}:end -->"
    text = RUNWAY_DOC.read_text(encoding="utf-8")
    start, end = text.index(start_tag), text.index(end_tag) + len(end_tag)
    if os.environ.get("GPUFLEET_UPDATE_DOCS") == "1":
        RUNWAY_DOC.write_text(text[:start] + wanted + text[end:], encoding="utf-8")
        text = RUNWAY_DOC.read_text(encoding="utf-8")
        start, end = text.index(start_tag), text.index(end_tag) + len(end_tag)
    assert text[start:end] == wanted


def strategies_of(case: str, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[str, Any]]:
    """The point and runway outcomes of a worked case's one service (``--json``)."""
    monkeypatch.chdir(REPO)
    code, out, err = run_cli("backtest", "--stack", f"docs/examples/backtest/{CASES[case]}", "--history",
                             "docs/examples/backtest/history", "--json")
    assert code == 0, err
    [svc] = json.loads(out)["services"]
    point, runway = svc["strategies"]
    return point, runway


def test_the_declared_range_orders_in_time_and_the_point_forecast_does_not(run_cli: Run,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # What the worked case claims, checked on the numbers themselves.
    point, runway = strategies_of("declared", run_cli, monkeypatch)
    assert point["longest_short_run_days"] >= 14 and runway["days_short"] == 0
    assert runway["usd"] > point["usd"]
    [policy] = [o for o in runway["orders"] if o["reason"].startswith("runway ")]
    assert (policy["ordered_on"], policy["reason"]) == ("2026-10-06", "runway 117 days at p90 < lead time 90 + margin 30")


def test_a_zone_loss_margin_changes_what_the_plan_delivered(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same service and history as the declared case, planned with its loss margin: more nodes
    # (fewer days short), and a measure of the days a zone loss would have left demand unserved.
    plain, _ = strategies_of("declared", run_cli, monkeypatch)
    point, runway = strategies_of("zones", run_cli, monkeypatch)
    assert point["initial_nodes"] == 12 and plain["initial_nodes"] == 7  # 7 needed: ⌈7 / 2⌉ · 3 zones
    assert point["days_short"] < plain["days_short"] < point["days_short_after_losses"] + 30
    assert runway["days_short"] == runway["days_short_after_losses"] == 0
    assert point["scenario_short_replans"] > runway["scenario_short_replans"]
    text = RUNWAY_DOC.read_text(encoding="utf-8")  # the before/after table's "now" columns
    assert (f"| days short | {plain['days_short']} | 0 | {point['days_short']} | {runway['days_short']} |"
            in text)
    assert (f"| days short after a zone loss | (not measured) | (not measured) | "
            f"{point['days_short_after_losses']} | {runway['days_short_after_losses']} |") in text
    assert (f"| nodes at start → end | {plain['initial_nodes']} → {plain['final_nodes']} | 11 → 58 | "
            f"{point['initial_nodes']} → {point['final_nodes']} | {runway['initial_nodes']} → "
            f"{runway['final_nodes']} |") in text


def test_the_fits_p90_widens_with_the_acceleration_and_runs_short_less(run_cli: Run,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    point, runway = strategies_of("fit", run_cli, monkeypatch)
    # While growth climbs to 25 % a month the fit's p50 reaches about 10 %; its p90, the prediction
    # interval at lead time + horizon, widens as the peaks leave the old trend (the trend's interval
    # alone kept it within a point of p50, and both strategies ran short on 218 days).
    late = [(p, r) for p, r in zip(point["replans"], runway["replans"]) if p["on"] >= "2026-04-06"]
    assert max(p["growth_per_month"] for p, _ in late) < 0.12
    assert late[-1][1]["growth_per_month"] - late[-1][0]["growth_per_month"] > 0.05
    assert max(r["growth_per_month"] for _, r in late) > 0.15
    assert 0 < runway["days_short"] < point["days_short"] - 60
    assert runway["unserved_token_hours"] < point["unserved_token_hours"] / 2
