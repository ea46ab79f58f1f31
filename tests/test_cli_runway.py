"""``gpufleet runway``: its JSON keys, exit codes 0 / 3 / 2, the table and the chart file."""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DEV = str(REPO / "stacks" / "Pulumi.dev.yaml")
Run = Callable[..., tuple[int, str, str]]
SVG = "{http://www.w3.org/2000/svg}"


def _ranged(fleet: dict[str, Any], **change: Any) -> dict[str, Any]:
    service = fleet["inference"][0]
    service.pop("growth_per_month")
    service.update({"forecast": {"p50": 0.05, "p90": 0.15},
                    "scenarios": [{"name": "viral", "growth_per_month": 0.35}], **change})
    return fleet


def test_json_contract(run_cli: Run) -> None:
    code, out, err = run_cli("runway", "--stack", DEV, "--as-of", "2026-12-01", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data) == ["as_of", "confidence", "workloads", "sites"]
    assert (data["as_of"], data["confidence"]) == ("2026-12-01", "p90")
    chat = next(w for w in data["workloads"] if w["name"] == "chat-8b")
    assert {"name", "capacity_tokens_per_s", "scenarios", "runway_days", "order_by", "status"} <= set(chat)
    assert chat["status"] == "ok" and chat["runway_days"] == 227.6 and chat["order_by"] == "2027-06-16"
    assert [list(e) for e in chat["scenarios"]] == [["name", "growth_per_month", "runway_days", "runs_out_on",
                                                     "order_by"]] * 2
    train = next(w for w in data["workloads"] if w["role"] == "training")
    assert train["slack_days"] > 0
    assert all(set(s) == {"name", "power_runway_days", "quota_runway_days"} for s in data["sites"])
    assert next(s for s in data["sites"] if s["name"] == "aws-use1")["power_runway_days"] is None  # training only


def test_as_of_defaults_to_today(run_cli: Run) -> None:
    code, out, _ = run_cli("runway", "--stack", DEV, "--json")
    assert code == 0 and json.loads(out)["as_of"] == datetime.date.today().isoformat()


def test_table(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path]) -> None:
    code, out, _ = run_cli("runway", "--stack", str(write_stack(_ranged(fleet))), "--as-of", "2026-12-01")
    assert code == 0
    assert "gpufleet runway: test, as of 2026-12-01, at p90" in out
    for text in ("p50", "p90", "viral", "35.0%", "runs out", "order by", "Training runs", "power runway days"):
        assert text in out
    assert "Every workload ok (2)" in out


def test_order_now_exits_3(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path]) -> None:
    fleet["inference"][0].update(horizon_days=5, lead_time_days=60, growth_per_month=2.0)
    code, out, _ = run_cli("runway", "--stack", str(write_stack(fleet)), "--as-of", "2026-12-01", "--json")
    assert code == 3
    chat = next(w for w in json.loads(out)["workloads"] if w["name"] == "chat")
    assert chat["status"] == "order_now"
    code, out, _ = run_cli("runway", "--stack", str(write_stack(fleet)), "--as-of", "2026-12-01")
    assert code == 3 and "chat: order by" in out


@pytest.mark.parametrize("as_of", ["2026-13-01", "tomorrow", "20261201", "2026-2-1", "0001-01-01", ""])
def test_as_of_must_be_a_date(run_cli: Run, as_of: str, tmp_path: Path) -> None:
    chart = tmp_path / "c.svg"
    code, out, err = run_cli("runway", "--stack", DEV, "--as-of", as_of, "--chart", str(chart))
    assert code == 2 and "--as-of" in err and out == ""
    assert not chart.exists()


@pytest.mark.parametrize(("change", "needle"), [
    ({"forecast": {"q50": 0.1}}, "fleet.inference[0].forecast.q50: 'q50' is not a quantile key"),
    ({"forecast": {"p0": 0.1}}, "fleet.inference[0].forecast.p0"),
    ({"forecast": {"p50": 0.05, "p80": 0.1}}, "fleet.inference[0].forecast: plan_confidence p90 is outside"),
    ({"forecast": None, "history": "data/missing.csv"}, "fleet.inference[0].history: history cannot read"),
])
def test_bad_forecasts_exit_2(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path],
                              tmp_path: Path, change: dict[str, Any], needle: str) -> None:
    service = _ranged(fleet, **change)
    if service["inference"][0]["forecast"] is None:
        service["inference"][0].pop("forecast")
    chart = tmp_path / "c.svg"
    code, out, err = run_cli("runway", "--stack", str(write_stack(service)), "--chart", str(chart))
    assert code == 2 and needle in err and out == "", err
    assert not chart.exists()


def test_bad_history_names_file_and_line(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path],
                                         tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("date,peak_tokens_per_s\n2026-01-01,100\n2026-02-01,nan\n2026-03-01,120\n")
    service = _ranged(fleet, history="h.csv")
    service["inference"][0].pop("forecast")
    code, _, err = run_cli("runway", "--stack", str(write_stack(service)))
    assert code == 2 and f"{tmp_path / 'h.csv'}:3: peak 'nan'" in err


def test_a_bad_plan_confidence_exits_2(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path]) -> None:
    code, _, err = run_cli("runway", "--stack", str(write_stack({**fleet, "plan_confidence": "p100"})))
    assert code == 2 and "fleet.plan_confidence: 'p100' is not a quantile key" in err


def _svg(path: Path) -> tuple[list[str], list[str]]:
    root = ET.parse(path).getroot()
    ids = [g.get("id", "") for g in root.iter(f"{SVG}g")]
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    return ids, texts


def test_chart(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path], tmp_path: Path) -> None:
    stack = str(write_stack(_ranged(fleet)))
    chart = tmp_path / "out" / "runway.svg"
    code, out, _ = run_cli("runway", "--stack", stack, "--as-of", "2026-12-01", "--json", "--chart", str(chart))
    assert code == 0
    chat = next(w for w in json.loads(out)["workloads"] if w["name"] == "chat")
    ids, texts = _svg(chart)
    assert "band-1" in ids  # the p50–p90 fan
    assert {"series-1", "series-2", "series-3", "series-4", "series-5"} <= set(ids)
    assert "series-6" not in ids  # p90 line, viral, capacity, order by, runs out
    joined = "\n".join(texts)
    assert "forecast p50–p90 (5.0%–15.0%/month)" in joined
    assert "scenario viral (35.0%/month)" in joined
    assert f"order by {chat['order_by']}" in joined and f"runs out {chat['runs_out_on']}" in joined
    assert f"capacity after losses ({chat['capacity_tokens_per_s']:,.0f} tokens/s)" in joined
    again = tmp_path / "again.svg"
    run_cli("runway", "--stack", stack, "--as-of", "2026-12-01", "--chart", str(again))
    assert again.read_bytes() == chart.read_bytes()  # deterministic
    assert not list(chart.parent.glob(".*.tmp"))  # written through a temporary file, nothing left


def test_chart_path_is_checked_before_any_work(run_cli: Run, tmp_path: Path) -> None:
    code, out, err = run_cli("runway", "--stack", DEV, "--chart", str(tmp_path / "chart.txt"))
    assert code == 2 and "--chart" in err and ".svg" in err and out == ""


def test_chart_never_overwrites_a_history(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path],
                                         tmp_path: Path) -> None:
    history = tmp_path / "peaks.svg"  # an odd name, but an input all the same
    history.write_text("date,peak_tokens_per_s\n2026-01-01,100\n2026-02-01,110\n2026-03-01,121\n")
    service = _ranged(fleet, history="peaks.svg")
    service["inference"][0].pop("forecast")
    code, _, err = run_cli("runway", "--stack", str(write_stack(service)), "--chart", str(history))
    assert code == 2 and "is an input of this run" in err
    assert history.read_text().startswith("date,peak_tokens_per_s")


def test_a_missing_stack_exits_2(run_cli: Run, tmp_path: Path) -> None:
    code, _, err = run_cli("runway", "--stack", str(tmp_path / "Pulumi.none.yaml"))
    assert code == 2 and "Pulumi.none.yaml" in err


def test_the_docs_example_is_the_commands_output(run_cli: Run) -> None:
    """docs/runway.md shows `gpufleet runway --json` on the example stack: the numbers are the command's."""
    text = (REPO / "docs" / "runway.md").read_text()
    start = text.index("```json\n", text.index("## `gpufleet runway`")) + len("```json\n")
    shown = json.loads(text[start:text.index("```", start)])
    stack = REPO / "tests" / "fixtures" / "runway" / "Pulumi.runway.yaml"
    code, out, _ = run_cli("runway", "--stack", str(stack), "--as-of", "2026-12-01", "--json")
    assert code == 0 and json.loads(out) == shown
    embed = next(w for w in shown["workloads"] if w["name"] == "embed")  # fitted from its history
    assert embed["scenarios"][0]["growth_per_month"] < embed["growth_per_month"]


def test_chart_of_a_stack_without_services(run_cli: Run, fleet: dict[str, Any], write_stack: Callable[..., Path],
                                           tmp_path: Path) -> None:
    fleet["inference"] = []
    chart = tmp_path / "r.svg"
    code, out, _ = run_cli("runway", "--stack", str(write_stack(fleet)), "--chart", str(chart), "--json")
    assert code == 0 and [w["role"] for w in json.loads(out)["workloads"]] == ["training"]
    _, texts = _svg(chart)
    assert "no inference services" in texts
