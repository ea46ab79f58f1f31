"""The demand-vs-capacity chart: the right series, one legend entry per line, deterministic SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from diff_fixtures import plan_of, side
from gpufleet.diff import Side
from gpufleet.diff.chart import FLEET, chart_data, render_chart
from gpufleet.errors import SpecError

SVG = "{http://www.w3.org/2000/svg}"


def _svg_series(path: Path) -> tuple[list[str], list[str], int]:
    """(ids of plotted series, legend labels, legend handle lines) read back from the SVG."""
    root = ET.parse(path).getroot()
    series = [g.get("id", "") for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("series-")]
    legends = [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("legend_")]
    assert len(legends) == 1
    labels = [t.text or "" for t in legends[0].iter(f"{SVG}text")]
    handles = sum(1 for g in legends[0].iter(f"{SVG}g") if g.get("id", "").startswith("line2d_"))
    return series, labels, handles


@pytest.mark.parametrize("workload", [FLEET, "chat-8b", "summarize-70b", "pretrain-70b"])
def test_one_legend_entry_per_line(case: str, workload: str, tmp_path: Path) -> None:
    base, head = side(case, "base"), side(case, "head")
    data = chart_data(base, head, workload)
    out = render_chart(base, head, tmp_path / "chart.svg", workload=workload)
    series, labels, handles = _svg_series(out)
    assert len(series) == len(data.series) >= 2
    assert labels == [s.label for s in data.series]
    assert handles == len(series)
    assert len(set(labels)) == len(labels)


def test_svg_is_deterministic(tmp_path: Path) -> None:
    base, head = side("capacity-cut", "base"), side("capacity-cut", "head")
    first = render_chart(base, head, tmp_path / "a.svg").read_bytes()
    second = render_chart(base, head, tmp_path / "b.svg").read_bytes()
    assert first == second
    assert b"<dc:date>" not in first


def test_inference_chart_follows_the_plan() -> None:
    base, head = side("capacity-cut", "base"), side("capacity-cut", "head")
    data = chart_data(base, head, "chat-8b")
    by_style = {s.style: s for s in data.series}
    assert set(by_style) == {"demand", "demand-base", "base", "head"}  # the cut changed the forecast
    chat_base = next(w for w in plan_of("capacity-cut", "base").workloads if w.name == "chat-8b")
    chat_head = next(w for w in plan_of("capacity-cut", "head").workloads if w.name == "chat-8b")
    demand = by_style["demand"]
    assert demand.days[0] == 0 and demand.values[0] == pytest.approx(12000)  # today's peak
    assert demand.days[-1] == chat_head.lead_time_days + chat_head.horizon_days
    assert demand.values[-1] == pytest.approx(chat_head.demand_at_horizon_tokens_per_s)
    assert by_style["demand-base"].values[-1] == pytest.approx(chat_base.demand_at_horizon_tokens_per_s)
    # Capacity: base's all along; head's from landing (day 30) on.
    assert set(by_style["base"].values) == {chat_base.tokens_per_s_at_max}
    head_line = by_style["head"]
    before = [v for d, v in zip(head_line.days, head_line.values) if d < 30]
    after = [v for d, v in zip(head_line.days, head_line.values) if d >= 30]
    assert set(before) == {chat_base.tokens_per_s_at_max}
    assert set(after) == {chat_head.tokens_per_s_at_max}
    assert 30.0 in head_line.days


def test_one_demand_line_when_the_forecast_did_not_change() -> None:
    data = chart_data(side("site-moved", "base"), side("site-moved", "head"), "summarize-70b")
    assert [s.style for s in data.series] == ["demand", "base", "head"]
    assert data.series[0].label == "forecast demand"


def test_fleet_chart_counts_gpus() -> None:
    base, head = side("demand-raised", "base"), side("demand-raised", "head")
    data = chart_data(base, head)
    by_style = {s.style: s for s in data.series}
    inference_gpus = lambda s: sum(p.gpus for p in s.pools if p.role == "inference")  # noqa: E731
    assert set(by_style["base"].values) == {inference_gpus(base)}
    assert by_style["head"].values[-1] == inference_gpus(head)
    assert "from day 30" in by_style["head"].label  # only chat-8b changed; it lands on day 30


def test_training_chart_shows_the_deadline(tmp_path: Path) -> None:
    data = chart_data(side("capacity-cut", "base"), side("capacity-cut", "head"), "pretrain-70b")
    labels = [s.label for s in data.series]
    assert labels[0].startswith("compute needed")
    assert labels[1].startswith("base: 288 H100 (done day 29.9)")
    assert labels[2].startswith("head: 192 H100 (done day 44.8)")
    assert labels[3] == "deadline (day 30)"


def test_a_new_stack_has_no_base_lines() -> None:
    head = side("unchanged", "head")
    data = chart_data(Side.absent("base", "b", "fleet"), head, "chat-8b")
    assert [s.style for s in data.series] == ["demand", "head"]
    head_line = data.series[1]
    assert head_line.values[0] == 0 and head_line.values[-1] > 0  # nothing before landing


def test_unknown_workload_is_bad_input() -> None:
    with pytest.raises(SpecError, match="no workload named 'nope'"):
        chart_data(side("unchanged", "base"), side("unchanged", "head"), "nope")
