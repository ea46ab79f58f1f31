"""Forecast ranges: quantile keys, growth at a quantile, the history fit and its bad inputs."""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.forecast import fit_history, growth_at, horizon_months, quantile_level, quantiles_of, read_history
from gpufleet.plan import build_plan
from gpufleet.sizing import DAYS_PER_MONTH
from gpufleet.spec import parse_fleet
from gpufleet.stackfile import load_stack

REPO = Path(__file__).resolve().parents[1]
START = datetime.date(2025, 1, 1)


def _chat(fleet: dict[str, Any], **change: Any) -> dict[str, Any]:
    service = fleet["inference"][0]
    service.pop("growth_per_month")
    service.update(change)
    return fleet


def _issues(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [str(i) for i in exc.value.issues]


# --- quantile keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "level"), [("p1", 1), ("p50", 50), ("p90", 90), ("p99", 99)])
def test_quantile_keys(key: str, level: int) -> None:
    assert quantile_level(key) == level


@pytest.mark.parametrize("key", ["p0", "p100", "q50", "p05", "P50", "p", "50", "p9.5"])
def test_quantile_keys_refused(key: str) -> None:
    with pytest.raises(SpecError, match="p1 .. p99"):
        quantile_level(key, loc="--confidence")


@pytest.mark.parametrize("key", ["p0", "p100", "q50"])
def test_spec_refuses_a_bad_quantile_key_at_its_field_path(fleet: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_fleet(_chat(fleet, forecast={key: 0.1}))
    assert any(i.startswith("fleet.inference[0].forecast") for i in _issues(exc)), _issues(exc)


@pytest.mark.parametrize("bad", ["p0", "p100", "q50", 90])
def test_spec_refuses_a_bad_plan_confidence(fleet: dict[str, Any], bad: Any) -> None:
    with pytest.raises(SpecError) as exc:
        parse_fleet({**fleet, "plan_confidence": bad})
    assert any(i.startswith("fleet.plan_confidence") for i in _issues(exc)), _issues(exc)


# --- what a service may say ------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "needle"), [
    ({"growth_per_month": 0.05, "forecast": {"p50": 0.05}}, "given: growth_per_month, forecast"),
    ({}, "given: none"),
    ({"forecast": {"p50": 0.1, "p90": 0.05}}, "growth falls from p50 (0.1) to p90 (0.05)"),
    ({"forecast": {"p50": -0.1}}, "greater than or equal to 0"),
    ({"forecast": {"p50": 0.1}, "scenarios": [{"name": "p95", "growth_per_month": 0.3}]}, "reads as a quantile"),
    ({"forecast": {"p50": 0.1}, "scenarios": [{"name": "viral", "growth_per_month": 0.3},
                                              {"name": "viral", "growth_per_month": 0.4}]}, "viral repeated"),
])
def test_forecast_shapes_refused(fleet: dict[str, Any], change: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_fleet(_chat(fleet, **change))
    assert any(needle in i and i.startswith("fleet.inference[0]") for i in _issues(exc)), _issues(exc)


def test_plan_confidence_outside_the_forecast_is_refused(fleet: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as exc:
        parse_fleet({**_chat(fleet, forecast={"p50": 0.05, "p80": 0.1}), "plan_confidence": "p90"})
    (issue,) = _issues(exc)
    assert issue.startswith("fleet.inference[0].forecast: plan_confidence p90 is outside the forecast's quantiles "
                            "p50 .. p80")
    assert "fleet.plan_confidence" in issue


def test_growth_at_a_quantile() -> None:
    ranged = {"forecast": {"p50": 0.06, "p90": 0.15}, "growth_per_month": None}
    assert growth_at(ranged, "p50") == 0.06 and growth_at(ranged, "p90") == 0.15
    assert growth_at(ranged, "p70") == pytest.approx(0.105)  # halfway, linearly
    with pytest.raises(SpecError, match="p95 is outside the forecast's quantiles p50 .. p90"):
        growth_at(ranged, "p95")
    with pytest.raises(SpecError, match="p10 is outside"):
        growth_at(ranged, "p10")
    assert growth_at({"forecast": {"p80": 0.2}}, "p5") == 0.2  # one quantile holds for all
    scalar = {"forecast": {}, "growth_per_month": 0.08}
    assert [growth_at(scalar, q) for q in ("p1", "p50", "p90", "p99")] == [0.08] * 4
    assert quantiles_of(scalar, "p95") == ["p50", "p90", "p95"]
    assert quantiles_of(ranged, "p70") == ["p50", "p70", "p90"]


def test_plan_sizes_at_the_plan_confidence(fleet: dict[str, Any]) -> None:
    def nodes(confidence: str) -> int:
        spec = parse_fleet({**_chat(dict(fleet, inference=[dict(fleet["inference"][0])]),
                                    forecast={"p50": 0.05, "p90": 0.2}), "plan_confidence": confidence})
        plan = build_plan(spec, "t")
        (chat,) = [w for w in plan.workloads if w.name == "chat"]
        assert plan.pools_of("chat")[0].sizing["inputs"]["growth_per_month"] == growth_at(spec.inference[0], confidence)
        return chat.nodes_needed

    assert nodes("p50") < nodes("p70") < nodes("p90")


@pytest.mark.parametrize("stack", sorted(p.name for p in (REPO / "stacks").glob("Pulumi.*.yaml")))
def test_a_scalar_growth_plans_as_before_at_every_confidence(stack: str) -> None:
    """A scalar growth means every quantile is that growth: the shipped stacks (scalar only) plan the
    same at p50, p90 and p99, each service sized with its own growth_per_month."""
    _, spec = load_stack(REPO / "stacks" / stack)
    plans = [build_plan(spec.model_copy(update={"plan_confidence": q}), "s").to_json() for q in ("p50", "p90", "p99")]
    assert all(not s.forecast and s.growth_per_month is not None for s in spec.inference)
    for p in plans:
        p.pop("placement")
    assert plans[0] == plans[1] == plans[2]
    by_name = {s.name: s.growth_per_month for s in spec.inference}
    for pool in plans[0]["pools"]:
        if pool["role"] == "inference":
            assert pool["sizing"]["inputs"]["growth_per_month"] == by_name[pool["workload"]]


# --- history -------------------------------------------------------------------------------------------


def _series(growth: float, months: int, *, noise: float = 0.0, seed: int = 7) -> list[tuple[datetime.date, float]]:
    rng = random.Random(seed)
    out = []
    for m in range(months):
        day = START + datetime.timedelta(days=round(m * DAYS_PER_MONTH))
        t = (day - START).days / DAYS_PER_MONTH
        out.append((day, 1000.0 * (1 + growth) ** t * math.exp(rng.gauss(0, noise))))
    return out


def test_fit_recovers_an_exact_compound_growth() -> None:
    fit = fit_history(_series(0.10, 12), ["p10", "p50", "p90"], horizon_months=3.0)
    assert fit.growth_per_month("p50") == pytest.approx(0.10, rel=1e-9)
    assert fit.slope_stderr == pytest.approx(0.0, abs=1e-9)  # points on one curve: no spread
    assert fit.quantiles == pytest.approx({"p10": 0.10, "p50": 0.10, "p90": 0.10}, rel=1e-6)
    assert fit.peak_tokens_per_s == pytest.approx(1000 * 1.1 ** ((_series(0.1, 12)[-1][0] - START).days / DAYS_PER_MONTH))
    assert (fit.points, fit.dof, fit.first_date) == (12, 10, START)


def _prediction_interval(points: list[tuple[datetime.date, float]], horizon: float, level: float) -> float:
    """The textbook prediction interval of ln(peak) `horizon` months after the last point, worked out
    with numpy and scipy apart from gpufleet: (upper quantile − fitted level at the last point) / horizon."""
    import numpy as np
    from scipy.stats import t as student_t

    ts = np.array([(d - points[0][0]).days / DAYS_PER_MONTH for d, _ in points])
    ys = np.log([p for _, p in points])
    b, a = np.polyfit(ts, ys, 1)
    n = len(ts)
    s = math.sqrt(float(np.sum((ys - a - b * ts) ** 2)) / (n - 2))
    at = ts[-1] + horizon
    se_pred = s * math.sqrt(1 + 1 / n + (at - ts.mean()) ** 2 / float(np.sum((ts - ts.mean()) ** 2)))
    upper = a + b * at + float(student_t.ppf(level, n - 2)) * se_pred
    return float((upper - (a + b * ts[-1])) / horizon)


def test_fit_of_noisy_history_brackets_the_true_growth() -> None:
    points = _series(0.08, 24, noise=0.05)
    fit = fit_history(points, ["p5", "p50", "p95"], horizon_months=4.0)
    low, mid, high = fit.quantiles["p5"], fit.quantiles["p50"], fit.quantiles["p95"]
    assert low < mid < high
    assert low < 0.08 < high
    assert mid == pytest.approx(0.08, abs=0.01)
    # the spread is the prediction interval of ln(peak) four months after the last point, per month
    assert math.log1p(high) == pytest.approx(_prediction_interval(points, 4.0, 0.95), rel=1e-9)
    assert math.log1p(low) == pytest.approx(_prediction_interval(points, 4.0, 0.05), rel=1e-9)


def test_a_long_noisy_history_keeps_its_scatter_in_the_range() -> None:
    """Ten years of monthly peaks with 5 % scatter: the slope is known to a hundredth of a point, but
    a peak at the horizon is not; p90 stays clearly above p50 (the slope's interval alone gave 0.02 points)."""
    fit = fit_history(_series(0.05, 120, noise=0.05), ["p50", "p90"], horizon_months=6.0)
    slope_only = math.expm1(fit.slope_per_month + 1.2888 * fit.slope_stderr) - fit.quantiles["p50"]
    assert slope_only < 0.0005
    assert fit.quantiles["p90"] - fit.quantiles["p50"] > 0.009  # ≈ t(0.9, 118) · 5 % / 6 months
    assert fit.quantiles["p90"] - fit.quantiles["p50"] > 20 * slope_only


def test_a_longer_horizon_averages_the_scatter_over_more_months() -> None:
    points = _series(0.05, 36, noise=0.05)
    gaps = [fit_history(points, ["p50", "p90"], horizon_months=h).quantiles for h in (1.0, 3.0, 12.0, 60.0)]
    spread = [q["p90"] - q["p50"] for q in gaps]
    assert spread == sorted(spread, reverse=True) and spread[-1] > 0
    assert {q["p50"] for q in gaps} == {gaps[0]["p50"]}  # the point forecast does not depend on the horizon


def test_a_horizon_must_be_positive() -> None:
    with pytest.raises(SpecError, match="forecast horizon"):
        fit_history(_series(0.05, 6), ["p50"], horizon_months=0.0)


def test_a_falling_history_plans_flat() -> None:
    assert fit_history(_series(-0.05, 6), ["p50"], horizon_months=3.0).growth_per_month("p50") == 0.0


def _csv(tmp_path: Path, text: str, name: str = "h.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "date,peak_tokens_per_s\n2025-01-01,1000\n2025-02-01,1100\n2025-03-01,1210\n"


@pytest.mark.parametrize(("text", "needle"), [
    ("", ": 0 observation(s); a fit needs at least 3"),
    ("date,peak_tokens_per_s\n", ": 0 observation(s)"),
    ("date,peak_tokens_per_s\n2025-01-01,1000\n2025-02-01,1100\n", ": 2 observation(s)"),
    ("day,peak\n2025-01-01,1000\n", ":1: the first line is not the header 'date,peak_tokens_per_s'"),
    (GOOD + "2025-04-01,0\n", ":5: peak '0' is not a positive finite number"),
    (GOOD + "2025-04-01,-5\n", ":5: peak '-5' is not a positive"),
    (GOOD + "2025-04-01,nan\n", ":5: peak 'nan' is not a positive finite number"),
    (GOOD + "2025-04-01,inf\n", ":5: peak 'inf'"),
    (GOOD + "2025-04-01,lots\n", ":5: peak 'lots' is not a number"),
    (GOOD + "2025-13-01,1300\n", ":5: date '2025-13-01' does not parse"),
    (GOOD + "01/04/2025,1300\n", ":5: date '01/04/2025' does not parse"),
    (GOOD + "20250401,1300\n", ":5: date '20250401' does not parse"),
    (GOOD + "2025-02-15,1300\n", ":5: date 2025-02-15 comes before the previous row's 2025-03-01"),
    (GOOD + "2025-03-01,1300\n", ":5: date 2025-03-01 repeats the previous row's 2025-03-01"),
    (GOOD + "2025-04-01,1300,7\n", ":5: 3 fields"),
])
def test_bad_history_names_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(SpecError) as exc:
        read_history(path, loc="fleet.inference[0].history")
    (issue,) = exc.value.issues
    assert issue.loc == "fleet.inference[0].history"
    assert f"{path}{needle}" in issue.message, issue.message


def test_history_reading_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = _csv(tmp_path, "# exported from the metrics store\n" + GOOD.replace("\n2025-02", "\n\n2025-02"))
    assert read_history(path) == [(datetime.date(2025, 1, 1), 1000.0), (datetime.date(2025, 2, 1), 1100.0),
                                  (datetime.date(2025, 3, 1), 1210.0)]


def test_history_is_fitted_at_load_relative_to_the_stack_file(
        fleet: dict[str, Any], write_stack: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    rows = "".join(f"{d},{p:.3f}\n" for d, p in _series(0.1, 8, noise=0.02))
    _csv(tmp_path / "data", "date,peak_tokens_per_s\n" + rows, "chat.csv")
    stack = write_stack(_chat(fleet, history="data/chat.csv"))
    _, spec = load_stack(stack)
    (chat,) = spec.inference
    points = read_history(tmp_path / "data" / "chat.csv")
    fit = fit_history(points, ["p50", "p90"], horizon_months=horizon_months(chat.lead_time_days, chat.horizon_days))
    assert chat.forecast["p50"] == pytest.approx(fit.quantiles["p50"])
    assert chat.forecast["p90"] == pytest.approx(fit.quantiles["p90"]) and chat.forecast["p90"] > chat.forecast["p50"]
    assert set(chat.forecast) >= {"p1", "p50", "p99"}  # every pNN resolves, by interpolation
    plan = build_plan(spec, "t")
    assert plan.pools_of("chat")[0].sizing["inputs"]["growth_per_month"] == pytest.approx(fit.quantiles["p90"])


def test_a_missing_history_is_bad_input_at_its_field(fleet: dict[str, Any], write_stack: Callable[..., Path]) -> None:
    stack = write_stack(_chat(fleet, history="data/none.csv"))
    with pytest.raises(SpecError) as exc:
        load_stack(stack)
    (issue,) = exc.value.issues
    assert issue.loc == "fleet.inference[0].history" and "none.csv" in issue.message
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("where", ["/etc/passwd", "../outside.csv", "data/../../outside.csv", "link.csv"])
def test_a_history_outside_the_stack_directory_is_refused_unread(
        fleet: dict[str, Any], write_stack: Callable[..., Path], tmp_path: Path, where: str) -> None:
    """A stack file from a pull request must not make CI read (and echo) files beside the repository."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    secret = tmp_path / "outside.csv"
    secret.write_text("TOKEN=hunter2\n")
    (stacks / "link.csv").symlink_to(secret)
    stack = write_stack(_chat(fleet, history=where))
    moved = stacks / stack.name
    stack.rename(moved)
    with pytest.raises(SpecError) as exc:
        load_stack(moved)
    (issue,) = exc.value.issues
    assert issue.loc == "fleet.inference[0].history" and "is not inside the stack file's directory" in issue.message
    assert "hunter2" not in str(exc.value) and "root:" not in str(exc.value)


def test_a_history_header_is_not_echoed(tmp_path: Path) -> None:
    path = _csv(tmp_path, "TOKEN=hunter2\n2025-01-01,1\n")
    with pytest.raises(SpecError) as exc:
        read_history(path)
    assert "hunter2" not in str(exc.value)
