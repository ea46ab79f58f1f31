"""Runway: the closed form, dates and status, capacity after losses, and the report's contract."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.forecast import growth_at
from gpufleet.plan import build_plan
from gpufleet.runway import (
    MAX_RUNWAY_DAYS,
    capacity_after_losses_tokens_per_s,
    forecast_runway,
    runway_days,
    runway_report,
    service_runway,
    status_of,
)
from gpufleet.sizing import DAYS_PER_MONTH
from gpufleet.spec import parse_fleet
from gpufleet.stackfile import load_stack

REPO = Path(__file__).resolve().parents[1]
AS_OF = datetime.date(2026, 1, 1)


# --- the formula -----------------------------------------------------------------------------------


def test_runway_by_hand() -> None:
    # ln(2000 / 1000) / ln(1.1) = 0.693147 / 0.0953102 = 7.27254 months = 221.358 days
    assert runway_days(capacity_tokens_per_s=2000, peak_tokens_per_s=1000, headroom=0.0,
                       growth_per_month=0.1) == pytest.approx(221.358, abs=1e-3)
    # headroom counts: 1000 · 1.25 = 1250 needed; ln(2500 / 1250) / ln(1.05) = 14.2067 months = 432.42 days
    assert runway_days(capacity_tokens_per_s=2500, peak_tokens_per_s=1000, headroom=0.25,
                       growth_per_month=0.05) == pytest.approx(432.42, abs=1e-2)


def test_runway_closed_form() -> None:
    cap, peak, h, g = 9000.0, 3000.0, 0.2, 0.07
    months = math.log(cap / (peak * (1 + h))) / math.log(1 + g)
    assert runway_days(capacity_tokens_per_s=cap, peak_tokens_per_s=peak, headroom=h,
                       growth_per_month=g) == pytest.approx(months * DAYS_PER_MONTH)


@pytest.mark.parametrize(("capacity", "growth", "expected"), [
    (1199.0, 0.1, 0.0),  # 1000 · 1.2 already exceeds it
    (1200.0, 0.1, 0.0),  # exactly at it: any growth passes it
    (0.0, 0.1, 0.0),
    (5000.0, 0.0, math.inf),  # no growth, enough capacity: never
])
def test_runway_edges(capacity: float, growth: float, expected: float) -> None:
    assert runway_days(capacity_tokens_per_s=capacity, peak_tokens_per_s=1000, headroom=0.2,
                       growth_per_month=growth) == expected


@pytest.mark.parametrize("bad", [
    {"capacity_tokens_per_s": math.nan}, {"peak_tokens_per_s": 0.0}, {"headroom": -0.1},
    {"growth_per_month": math.inf}, {"growth_per_month": -1.0},
])
def test_runway_refuses_bad_numbers(bad: dict[str, float]) -> None:
    args = {"capacity_tokens_per_s": 2000.0, "peak_tokens_per_s": 1000.0, "headroom": 0.2, "growth_per_month": 0.1}
    with pytest.raises(ValueError):
        runway_days(**{**args, **bad})


_cap = st.floats(min_value=1.0, max_value=1e9)
_growth = st.floats(min_value=0.0, max_value=10.0)


@settings(derandomize=True, max_examples=200)
@given(cap=_cap, more=st.floats(min_value=0.0, max_value=1e9), peak=st.floats(min_value=1.0, max_value=1e6),
       h=st.floats(min_value=0.0, max_value=10.0), g=_growth)
def test_more_capacity_never_shortens_runway(cap: float, more: float, peak: float, h: float, g: float) -> None:
    a = runway_days(capacity_tokens_per_s=cap, peak_tokens_per_s=peak, headroom=h, growth_per_month=g)
    b = runway_days(capacity_tokens_per_s=cap + more, peak_tokens_per_s=peak, headroom=h, growth_per_month=g)
    assert b >= a


@settings(derandomize=True, max_examples=200)
@given(cap=_cap, peak=st.floats(min_value=1.0, max_value=1e6), h=st.floats(min_value=0.0, max_value=10.0),
       g=_growth, more=st.floats(min_value=0.0, max_value=10.0))
def test_higher_growth_never_lengthens_runway(cap: float, peak: float, h: float, g: float, more: float) -> None:
    a = runway_days(capacity_tokens_per_s=cap, peak_tokens_per_s=peak, headroom=h, growth_per_month=g)
    b = runway_days(capacity_tokens_per_s=cap, peak_tokens_per_s=peak, headroom=h, growth_per_month=min(10.0, g + more))
    assert b <= a


# --- dates and status ------------------------------------------------------------------------------


def _entry(capacity: float, growth: float = 0.1, lead: float = 30.0) -> Any:
    return forecast_runway("p90", growth, capacity_tokens_per_s=capacity, peak_tokens_per_s=1000.0, headroom=0.0,
                           lead_time_days=lead, as_of=AS_OF)


def test_dates_by_hand() -> None:
    e = _entry(2000.0)  # 221.358 days: runs out on day 221, 2026-08-10; order 30 days before
    assert e.runs_out_on == datetime.date(2026, 8, 10) and e.order_by == datetime.date(2026, 7, 11)
    assert e.to_dict() == {"name": "p90", "growth_per_month": 0.1, "runway_days": 221.4,
                           "runs_out_on": "2026-08-10", "order_by": "2026-07-11"}
    never = _entry(2000.0, growth=0.0)
    assert never.to_dict() == {"name": "p90", "growth_per_month": 0.0, "runway_days": None, "runs_out_on": None,
                               "order_by": None}
    assert _entry(2000.0, growth=1e-9).runs_out_on is None  # past a century: reported as never
    assert math.isinf(_entry(2000.0, growth=1e-9).runway_days) and MAX_RUNWAY_DAYS == 36_525


@pytest.mark.parametrize(("capacity", "lead", "status"), [
    (2000.0, 30.0, "ok"),  # order by 2026-07-11, far off
    (2000.0, 200.0, "order_now"),  # order by 2026-01-22, within 30 days; runs out (day 221) after landing (day 200)
    (2000.0, 221.0, "short"),  # runs out on the day capacity ordered today lands
    (1100.0, 30.0, "short"),  # runs out on day 30 (ln 1.1 / ln 1.1 months), as capacity lands
    (1000.0, 0.0, "short"),  # already out
])
def test_status(capacity: float, lead: float, status: str) -> None:
    assert status_of(_entry(capacity, lead=lead), lead_time_days=lead, as_of=AS_OF) == status


# --- capacity after losses and the report ----------------------------------------------------------


@pytest.fixture(scope="module")
def dev() -> tuple[Any, Any]:
    _, spec = load_stack(REPO / "stacks" / "Pulumi.dev.yaml")
    return spec, build_plan(spec, "dev")


def test_capacity_after_losses_by_hand(dev: tuple[Any, Any]) -> None:
    spec, plan = dev
    for service in spec.inference:
        pools = plan.pools_of(service.name)
        by_zone = sorted((n for p in pools for n in p.nodes_by_zone.values()), reverse=True)
        left = sum(by_zone[service.survive_zone_losses:])  # the largest zones lost
        assert capacity_after_losses_tokens_per_s(plan, spec, service.name) == left * pools[0].tokens_per_s_per_node
        assert left < sum(p.nodes for p in pools)


def test_site_losses_count_failure_domains(fleet: dict[str, Any]) -> None:
    site = fleet["sites"][0]
    fleet["sites"] = [site, {**site, "name": "aws-use1-b", "network_cidr": "10.1.0.0/16", "failure_domain": "east"},
                      {**site, "name": "aws-use1-c", "network_cidr": "10.2.0.0/16", "failure_domain": "east"}]
    fleet["training"] = []
    fleet["inference"][0].update(survive_site_losses=1, survive_zone_losses=0)
    spec = parse_fleet(fleet)
    plan = build_plan(spec, "t")
    by_domain: dict[str, int] = {}
    for p in plan.pools_of("chat"):
        domain = spec.site(p.site).failure_domain or p.site
        by_domain[domain] = by_domain.get(domain, 0) + p.nodes
    left = sum(sorted(by_domain.values())[:-1])
    per_node = plan.pools_of("chat")[0].tokens_per_s_per_node
    assert capacity_after_losses_tokens_per_s(plan, spec, "chat") == left * per_node
    assert len(by_domain) == 2 and left < sum(by_domain.values())
    assert left * per_node >= plan.workloads[0].demand_at_horizon_tokens_per_s


def test_report_contract(dev: tuple[Any, Any]) -> None:
    spec, plan = dev
    report = runway_report(plan, spec, as_of=AS_OF)
    data = report.to_dict()
    assert list(data) == ["as_of", "confidence", "workloads", "sites"]
    assert (data["as_of"], data["confidence"]) == ("2026-01-01", "p90")
    services = [w for w in data["workloads"] if w["role"] == "inference"]
    assert [w["name"] for w in services] == [s.name for s in spec.inference]
    for w, s in zip(services, spec.inference):
        assert {"name", "capacity_tokens_per_s", "scenarios", "runway_days", "order_by", "status"} <= set(w)
        assert [e["name"] for e in w["scenarios"]] == ["p50", "p90"]
        assert all(set(e) == {"name", "growth_per_month", "runway_days", "runs_out_on", "order_by"}
                   for e in w["scenarios"])
        expected = runway_days(capacity_tokens_per_s=w["capacity_tokens_per_s"], peak_tokens_per_s=s.peak_tokens_per_s,
                               headroom=s.headroom, growth_per_month=s.growth_per_month)
        assert w["runway_days"] == round(expected, 1)
        out = AS_OF + datetime.timedelta(days=math.floor(expected))
        assert w["order_by"] == (out - datetime.timedelta(days=math.ceil(s.lead_time_days))).isoformat()
        # the plan carries the forecast through lead time + horizon: its runway is at least that
        assert expected >= s.lead_time_days + s.horizon_days
        assert w["status"] == "ok"
    (train,) = [w for w in data["workloads"] if w["role"] == "training"]
    run = next(w for w in plan.workloads if w.role == "training")
    assert train["slack_days"] == pytest.approx(run.deadline_days - run.days_at_planned_size, abs=1e-3)
    assert train["slack_days"] > 0 and train["status"] == "ok"
    assert [s["name"] for s in data["sites"]] == [s.name for s in spec.sites]
    assert report.exit_code == 0


def test_site_runway_is_the_day_the_envelope_or_quota_is_passed(dev: tuple[Any, Any]) -> None:
    spec, plan = dev
    report = runway_report(plan, spec, as_of=AS_OF)
    services = {s.name: s for s in report.services}

    def scale(workload: str, t: float) -> float:
        s = services.get(workload)
        if s is None:
            return 1.0
        demand = s.peak_tokens_per_s * (1 + s.headroom) * (1 + s.confidence.growth_per_month) ** (t / DAYS_PER_MONTH)
        return max(1.0, demand / s.capacity_tokens_per_s)

    checked = 0
    for site in report.sites:
        pools = [p for p in plan.pools if p.site == site.name]
        envelope = spec.site(site.name).power_mw * 1000
        if math.isfinite(site.power_runway_days):
            t = site.power_runway_days
            assert sum(p.power_kw * scale(p.workload, t + 1e-3) for p in pools) > envelope
            assert sum(p.power_kw * scale(p.workload, t - 1e-3) for p in pools) <= envelope
            checked += 1
        if math.isfinite(site.quota_runway_days):
            t = site.quota_runway_days
            over = [m for m, q in spec.site(site.name).quota_gpus.items()
                    if sum(p.gpus * scale(p.workload, t + 1e-3) for p in pools if p.gpu == m) > q]
            assert over
            checked += 1
            # no service on the site grows past its own capacity before its runway ends
            assert t >= min(services[p.workload].runway_days for p in pools if p.workload in services)
    assert checked >= 2
    only_training = next(s for s in report.sites if s.name == "aws-use1")
    assert math.isinf(only_training.power_runway_days) and math.isinf(only_training.quota_runway_days)


def _forecast_spec(fleet: dict[str, Any], confidence: str = "p90") -> Any:
    service = fleet["inference"][0]
    service.pop("growth_per_month")
    service.update(forecast={"p50": 0.05, "p90": 0.2}, scenarios=[{"name": "viral", "growth_per_month": 0.5}])
    return parse_fleet({**fleet, "plan_confidence": confidence})


def test_quantiles_and_scenarios_each_have_a_runway(fleet: dict[str, Any]) -> None:
    spec = _forecast_spec(fleet)
    plan = build_plan(spec, "t")
    (chat,) = runway_report(plan, spec, as_of=AS_OF).services
    by_name = {e.name: e for e in chat.scenarios}
    assert list(by_name) == ["p50", "p90", "viral"]
    assert by_name["p50"].runway_days > by_name["p90"].runway_days > by_name["viral"].runway_days
    assert chat.runway_days == by_name["p90"].runway_days and chat.order_by == by_name["p90"].order_by
    assert by_name["viral"].growth_per_month == 0.5


def test_a_plan_at_p50_is_short_at_p90(fleet: dict[str, Any]) -> None:
    """A plan sized at p50 and judged at p90 (the report of a p50 plan's spec at p90) runs out
    sooner; the report judges each service at the spec's own confidence."""
    p50 = _forecast_spec(fleet, "p50")
    plan = build_plan(p50, "t")
    at_p50 = service_runway(plan, p50, p50.inference[0], as_of=AS_OF, confidence="p50")
    at_p90 = service_runway(plan, p50, p50.inference[0], as_of=AS_OF, confidence="p90")
    assert at_p90.runway_days < at_p50.runway_days
    assert at_p50.confidence.growth_per_month == growth_at(p50.inference[0], "p50")


def test_an_undersized_plan_is_short_and_exits_3(dev: tuple[Any, Any]) -> None:
    spec, plan = dev
    chat = next(p for p in plan.pools if p.workload == "chat-8b")
    halved = dataclasses.replace(chat, nodes_by_zone={z: 1 for z in chat.nodes_by_zone})
    smaller = dataclasses.replace(plan, pools=tuple(halved if p is chat else p for p in plan.pools))
    report = runway_report(smaller, spec, as_of=AS_OF)
    service = next(s for s in report.services if s.name == "chat-8b")
    assert service.status == "short" and service.runway_days == 0.0
    assert report.exit_code == 3


def test_a_short_horizon_means_order_now(fleet: dict[str, Any]) -> None:
    """Capacity for 5 days past landing: the order is due within the 30-day window (fast growth keeps
    the whole-node rounding from adding weeks)."""
    fleet["inference"][0].update(horizon_days=5, lead_time_days=60, growth_per_month=2.0)
    spec = parse_fleet(fleet)
    report = runway_report(build_plan(spec, "t"), spec, as_of=AS_OF)
    (chat,) = report.services
    assert 65 <= chat.runway_days < 90
    assert chat.order_by is not None and chat.order_by <= AS_OF + datetime.timedelta(days=30)
    assert chat.status == "order_now" and report.exit_code == 3


@settings(derandomize=True, max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(peak=st.floats(min_value=100.0, max_value=200_000.0), p50=st.floats(min_value=0.0, max_value=0.3),
       spread=st.floats(min_value=0.0, max_value=0.3), lead=st.integers(min_value=0, max_value=180),
       horizon=st.integers(min_value=1, max_value=365), confidence=st.sampled_from(["p50", "p75", "p90"]))
def test_a_fresh_plan_lasts_through_lead_time_and_horizon(fleet: dict[str, Any], peak: float, p50: float,
                                                          spread: float, lead: int, horizon: int,
                                                          confidence: str) -> None:
    """The plan sizes for the forecast at its confidence through lead time + horizon, after losses:
    the runway at that confidence is never shorter, and a higher quantile's never longer."""
    data = copy.deepcopy(fleet)  # the fixture is built once for all examples
    data["training"] = []
    data["sites"][0].update(power_mw=1000.0, quota_gpus={"H100": 1_000_000})  # room for any of these plans
    service = data["inference"][0]
    service.pop("growth_per_month")
    service.update(peak_tokens_per_s=peak, forecast={"p50": p50, "p90": p50 + spread}, lead_time_days=lead,
                   horizon_days=horizon)
    spec = parse_fleet({**data, "plan_confidence": confidence})
    (chat,) = runway_report(build_plan(spec, "t"), spec, as_of=AS_OF).services
    assert chat.runway_days >= lead + horizon - 1e-6
    by_name = {e.name: e.runway_days for e in chat.scenarios}
    assert by_name["p50"] >= by_name[confidence] >= by_name["p90"]


def test_plan_runway_diff_and_pack_count_the_same_failure_domains(fleet: dict[str, Any],
                                                                  write_stack: Any) -> None:
    """Two sites list zones named alike (us-east-1a, b, c), and a third site's failure_domain is named
    like the first site: three sites, two failure domains ("east" the site; "east" the declared
    domain of east-2 and east-3), nine zones. The spec, the placement, the runway report, the diff's
    figures and the pack's survives-zone-loss rule all count them so."""
    from gpufleet.diff.figures import workload_figures
    from gpufleet.preview import run_preview

    site = {**fleet["sites"][0], "zones": ["us-east-1a", "us-east-1b", "us-east-1c"], "power_mw": 20.0}
    fleet["sites"] = [{**site, "name": "east", "network_cidr": "10.0.0.0/16"},
                      {**site, "name": "east-2", "network_cidr": "10.1.0.0/16", "failure_domain": "east"},
                      {**site, "name": "east-3", "network_cidr": "10.2.0.0/16", "failure_domain": "east"}]
    fleet["training"] = []
    fleet["inference"][0].update(survive_site_losses=1, survive_zone_losses=1)
    spec = parse_fleet(fleet)  # two domains: one site loss can be survived
    plan = build_plan(spec, "t")
    pools = plan.pools_of("chat")
    by_zone: dict[tuple[str, str], int] = {}
    by_domain: dict[tuple[str, str], int] = {}
    for p in pools:
        for zone, n in p.nodes_by_zone.items():
            by_zone[(p.site, zone)] = by_zone.get((p.site, zone), 0) + n
        fd = spec.site(p.site).failure_domain
        key = ("domain", fd) if fd else ("site", p.site)
        by_domain[key] = by_domain.get(key, 0) + p.nodes
    total = sum(p.nodes for p in pools)
    assert len(by_domain) == 2 and sum(by_zone.values()) == total
    left = min(total - max(by_zone.values()), total - max(by_domain.values()))
    per_node = pools[0].tokens_per_s_per_node
    assert capacity_after_losses_tokens_per_s(plan, spec, "chat") == left * per_node
    [w] = plan.workloads
    assert workload_figures(plan, w).capacity_after_losses_tokens_per_s == pytest.approx(left * per_node)
    assert left * per_node >= w.demand_at_horizon_tokens_per_s  # the plan provisions for both losses
    result = run_preview(write_stack(fleet, "domains"), None)
    assert not [v.message for v in result.violations if v.policy == "survives-zone-loss"]
