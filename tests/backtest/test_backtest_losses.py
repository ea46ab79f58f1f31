"""The replay plans each window as ``gpufleet plan`` does: loss margins, ``plan_confidence``, scenarios,
GPUs per replica.

The fixture (Pulumi.step-zones.yaml) is the step service of test_backtest_replay.py (6,000 tokens/s
per p5.48xlarge node, flat forecast, 30-day lead time and horizon, 20 % headroom) surviving the loss
of one of its three zones, with a ``viral`` scenario of 50 % a month. Worked by hand:

* Start (2025-04-06): a 6,000 peak needs 2 nodes; surviving one zone of three, the plan places
  ⌈2 / 2⌉ · 3 = 3 (one per zone), 2 left after a loss.
* 2025-06-06: the 15,000 peak needs 3 nodes: ⌈3 / 2⌉ · 3 = 6, so 3 are ordered, serving 2025-07-06.
* All 3 nodes serve 18,000 tokens/s: the step is never short; after losing a zone, 2 nodes serve
  12,000 < 15,000 from 2025-06-02 to 2025-07-05: 34 days short after losses.
* GPU-hours: 3 · 8 · 24 · 91 + 6 · 8 · 24 · 57 = 118,080.
* The viral runway of 3 nodes (2 after a loss) from 6,000: ln(12,000 / 7,200) / ln 1.5 · 30.4375 =
  38.3 days ≥ the 30-day lead time; of 6 nodes (4) from 15,000: ln(24,000 / 18,000) / ln 1.5 ·
  30.4375 = 21.6 days < 30, at the re-plans of June, July and August: 3 of 5.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backtest_fixtures import FIXTURES, step_points, write_csv
from gpufleet.backtest import BacktestReport, run_backtest, strategies
from gpufleet.backtest.report import service_facts
from gpufleet.forecast import growth_at
from gpufleet.plan import build_plan
from gpufleet.spec import FleetSpec
from gpufleet.stackfile import load_stack


def report(stack: str = "Pulumi.step-zones.yaml", *, confidence: str = "p90", **update: object) -> BacktestReport:
    name, spec = load_stack(FIXTURES / stack)
    spec = spec.model_copy(update=update)
    plan = build_plan(spec, name, check=False)
    return run_backtest(spec, plan, {"chat-70b": step_points()}, strategies(confidence), warmup_months=3)


@pytest.mark.parametrize("strategy", ["point", "runway"])
def test_the_loss_margin_is_planned_and_ordered(strategy: str) -> None:
    [svc] = report().services
    o = svc.outcome(strategy)
    assert (o.initial_nodes, o.final_nodes) == (3, 6)
    assert [(x.ordered_on, x.nodes, x.lands_on) for x in o.orders] == [(dt.date(2025, 6, 6), 3, dt.date(2025, 7, 6))]
    assert o.days_short == 0 and o.unserved_token_hours == 0
    assert o.days_short_after_losses == 34
    assert o.provisioned_gpu_hours == pytest.approx(118_080)
    assert o.over_provisioned_gpu_hours == 0  # the margin is what the day's peak needs, not waste


def test_without_a_loss_margin_nothing_changes() -> None:
    [svc] = report("Pulumi.step.yaml").services
    o = svc.outcome("point")
    assert (o.initial_nodes, o.final_nodes, o.days_short, o.days_short_after_losses) == (2, 3, 34, 34)


@pytest.mark.parametrize("peak", [6_000.0, 40_000.0, 250_000.0])
def test_a_replan_places_what_gpufleet_plan_places(peak: float) -> None:
    name, spec = load_stack(FIXTURES / "Pulumi.step-zones.yaml")
    spec = spec.model_copy(update={"inference": [spec.inference[0].model_copy(update={"peak_tokens_per_s": peak})]})
    plan = build_plan(spec, name, check=False)
    facts = service_facts(spec.inference[0], plan, spec)
    growth = growth_at(spec.inference[0], spec.plan_confidence)
    placed = facts.to_place(facts.nodes_for(peak, growth, facts.horizon_days))
    [pool] = plan.pools_of("chat-70b")
    assert placed == pool.nodes
    assert facts.after_losses(placed) * 3 == pool.nodes * 2  # even over three zones, one lost


def test_site_losses_place_enough_to_lose_the_largest_site() -> None:
    name, spec = load_stack(FIXTURES / "Pulumi.step-zones.yaml")
    site = spec.sites[0]
    second = site.model_copy(update={"name": "aws-use1-b", "network_cidr": "10.11.0.0/16"})
    service = spec.inference[0].model_copy(update={"sites": [site.name, second.name], "survive_site_losses": 1,
                                                   "survive_zone_losses": 0})
    spec = FleetSpec.model_validate({**spec.model_dump(exclude_none=True), "sites": [
        site.model_dump(exclude_none=True), second.model_dump(exclude_none=True)],
        "inference": [service.model_dump(exclude_none=True)]})
    plan = build_plan(spec, name, check=False)
    facts = service_facts(spec.inference[0], plan, spec)
    assert {s for s, _, _ in facts.zones} == {"aws-use1", "aws-use1-b"}
    for needed in (1, 2, 5, 13):
        placed = facts.to_place(needed)
        assert facts.after_losses(placed) >= needed > facts.after_losses(placed - 1)
    assert sum(p.nodes for p in plan.pools_of("chat-70b")) == facts.to_place(2)  # as the plan placed it


def test_each_replan_records_the_scenario_runway_of_its_capacity() -> None:
    [svc] = report().services
    o = svc.outcome("point")
    runways = [r.scenario_runway_days["viral"] for r in o.replans]
    assert [r.on for r in o.replans] == [dt.date(2025, m, 6) for m in (4, 5, 6, 7, 8)]
    at_6000 = math.log(12_000 / 7_200) / math.log(1.5) * 30.4375
    at_15000 = math.log(24_000 / 18_000) / math.log(1.5) * 30.4375
    assert runways == pytest.approx([at_6000, at_6000, at_15000, at_15000, at_15000])
    assert round(at_6000, 1) == 38.3 and round(at_15000, 1) == 21.6
    assert o.scenario_short_replans == 3
    assert o.to_json()["replans"][2]["scenario_runway_days"] == {"viral": round(at_15000, 3)}


def test_the_runway_strategy_plans_at_the_stacks_plan_confidence() -> None:
    # forecast p50 0 %, p90 50 %: planned at p50, the policy at p90 still lifts the start to what
    # covers lead time + margin at p90: 6,000 · 1.5^(60 / 30.4375) · 1.2 / 3,000 = 5.34 → 6 replicas → 3 nodes
    at_p50 = report("Pulumi.step-range.yaml", plan_confidence="p50")
    runway = at_p50.services[0].outcome("runway")
    assert (runway.strategy.confidence, runway.strategy.policy_confidence) == ("p50", "p90")
    assert runway.strategy.describe() == "plan at p50 + runway-covers-lead-time (p90, margin 30 days)"
    assert runway.initial_nodes == 3 and runway.replans[0].growth_per_month == 0.0
    # planned at p50 with the policy at p50: the point forecast with a margin
    same = report("Pulumi.step-range.yaml", confidence="p50", plan_confidence="p50").services[0]
    assert same.outcome("runway").days_short == same.outcome("point").days_short == 34
    # planned at p90 (the default) with the policy at p50: the p90 plan alone carries the step
    p90 = report("Pulumi.step-range.yaml", confidence="p50").services[0]
    assert p90.outcome("runway").strategy.confidence == "p90" and p90.outcome("runway").days_short == 0


@pytest.mark.parametrize("peak", [6_000.0, 40_000.0])
def test_the_margin_counts_the_zones_the_plan_counts(peak: float) -> None:
    # Allowed on a 3-zone and a 2-zone site, surviving one zone: gpufleet.plan counts the fewest
    # zones of an allowed site (2), so it places ⌈n / 1⌉ · 2, even when it uses only the 3-zone site.
    name, spec = load_stack(FIXTURES / "Pulumi.step-zones.yaml")
    site = spec.sites[0]
    small = site.model_copy(update={"name": "aws-use1-b", "network_cidr": "10.11.0.0/16",
                                    "zones": ["us-east-1d", "us-east-1f"]})
    service = spec.inference[0].model_copy(update={"sites": [site.name, small.name], "peak_tokens_per_s": peak})
    spec = FleetSpec.model_validate({**spec.model_dump(exclude_none=True), "sites": [
        site.model_dump(exclude_none=True), small.model_dump(exclude_none=True)],
        "inference": [service.model_dump(exclude_none=True)]})
    plan = build_plan(spec, name, check=False)
    facts = service_facts(spec.inference[0], plan, spec)
    needed = facts.nodes_for(peak, growth_at(spec.inference[0], spec.plan_confidence), facts.horizon_days)
    assert facts.zones_per_site == 2
    assert facts.to_place(needed) == 2 * needed == sum(p.nodes for p in plan.pools_of("chat-70b"))


def test_a_two_cloud_service_placed_on_one_cloud_keeps_the_plans_margin(
        run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    # Allowed on a 3-zone AWS site and a dearer 2-zone GCP site, surviving one zone: gpufleet plan
    # sizes the margin before placement, over the clouds the service could run on, so it counts the
    # GCP site's 2 zones (⌈8 / 1⌉ · 2 = 16) though the placement puts every node on AWS. Counting
    # only the placed pools' cloud, the backtest re-planned ⌈8 / 2⌉ · 3 = 12. (40,000 tokens/s: 16
    # replicas of 3,000 tokens/s with 20 % headroom, 8 nodes.)
    stack, history = _two_cloud_stack(tmp_path)

    plan, workload = _plan(run_cli, stack)
    assert {p["cloud"] for p in plan["pools"]} == {"aws"}
    assert (workload["nodes_needed"], workload["nodes_provisioned"]) == (8, 16)

    _backtest_replays_the_plan(run_cli, stack, history, workload)


def test_a_replica_spans_the_gpus_the_plan_gives_it_on_the_smallest_candidate_memory(
        run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    # chat-70b with 4 sequences in flight: 140 GB of weights + 10.7 GB of KV cache = 150.7 GB. The
    # plan fits it at the smallest GPU memory of its candidates, a3-highgpu-8g's 74.51 GiB (67.1 GiB
    # usable, 2 GPUs hold 144 GB): 4 GPUs per replica, 2 replicas per node, 16 replicas on 8 nodes,
    # 16 with the 2-zone margin. It places every node on p5.48xlarge (80 GiB: 2 GPUs would hold
    # 154.6 GB); fitting at the placed type's memory, the backtest re-planned 4 replicas per node,
    # 4 nodes, 8 with the margin: half what the plan provisions.
    stack, history = _two_cloud_stack(tmp_path, concurrency=4)

    plan, workload = _plan(run_cli, stack)
    assert {p["instance_type"] for p in plan["pools"]} == {"p5.48xlarge"}
    assert workload["sizing"]["gpus_per_replica"] == 4
    assert (workload["nodes_needed"], workload["nodes_provisioned"]) == (8, 16)

    svc = _backtest_replays_the_plan(run_cli, stack, history, workload)
    assert svc["gpus_per_replica"] == workload["sizing"]["gpus_per_replica"]


def test_a_tpu_replica_is_a_single_host_slice_as_in_the_plan() -> None:
    # chat-tpu (stacks/Pulumi.gcp-tpu.yaml): 16 GB of weights + 34.4 GB of KV cache on v6e chips
    # of 29.8 GiB (26.8 usable). Two chips would hold it, but a TPU replica is a single-host slice
    # (2x2 or 2x4): the plan gives it 4 chips, two replicas per 8-chip VM. Fitting by powers of two,
    # the backtest re-planned 2 chips a replica, 4 per VM: half the plan's VMs.
    name, spec = load_stack(Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.gcp-tpu.yaml")
    plan = build_plan(spec, name, check=False)
    [service] = spec.inference
    [workload] = [w for w in plan.workloads if w.name == service.name]
    assert workload.sizing["gpus_per_replica"] == 4
    facts = service_facts(service, plan, spec)
    assert facts.memory.gpus_per_replica == 4
    flat = step_points(service.peak_tokens_per_s, service.peak_tokens_per_s)
    report = run_backtest(spec, plan, {service.name: flat}, strategies(), warmup_months=3)
    [svc] = report.services
    assert svc.to_json()["gpus_per_replica"] == 4
    # the first re-plan knows the plan's peak and growth: it places what the plan placed
    assert svc.outcome("runway").initial_nodes == workload.nodes_provisioned


def _two_cloud_stack(tmp_path: Path, **chat: Any) -> tuple[Path, Path]:
    """The step-zones fleet with a dearer 2-zone GCP site beside its 3-zone AWS site, ``chat-70b``
    allowed on both (p5.48xlarge or a3-highgpu-8g) at a flat 40,000 tokens/s (its history too), and
    ``chat`` changed in it: the stack file and the history."""
    name, spec = load_stack(FIXTURES / "Pulumi.step-zones.yaml")
    fleet = spec.model_dump(mode="json", exclude_none=True)
    fleet["sites"].append({"name": "gcp-usc1", "cloud": "gcp", "region": "us-central1",
                           "zones": ["us-central1-a", "us-central1-b"], "power_mw": 20.0, "pue": 1.2,
                           "quota_gpus": {"H100": 4096}, "price_per_gpu_hour": {"a3-highgpu-8g": 9.0},
                           "network_cidr": "10.30.0.0/16", "project": "gpufleet-serving"})
    fleet["inference"][0].update(instance_types=["p5.48xlarge", "a3-highgpu-8g"], sites=["aws-use1", "gcp-usc1"],
                                 peak_tokens_per_s=40_000, **chat)
    stack = tmp_path / f"Pulumi.{name}.yaml"
    stack.write_text(json.dumps({"config": {"gpufleet:fleet": fleet}}), encoding="utf-8")
    return stack, write_csv(tmp_path / "chat-70b.csv", step_points(40_000, 40_000))


def _plan(run_cli: Callable[..., tuple[int, str, str]], stack: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``gpufleet plan --json`` of a one-service stack: the plan and its workload."""
    code, out, err = run_cli("plan", "--stack", str(stack), "--json")
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    [workload] = plan["workloads"]
    return plan, workload


def _backtest_replays_the_plan(run_cli: Callable[..., tuple[int, str, str]], stack: Path, history: Path,
                               workload: dict[str, Any]) -> dict[str, Any]:
    """``gpufleet backtest --json`` over a flat history: every strategy starts, ends and re-plans at the
    nodes the plan provisions (no growth: every re-plan is the plan). Returns the service's entry."""
    code, out, err = run_cli("backtest", "--stack", str(stack), "--history", str(history), "--json")
    assert code == 0, err
    services: list[dict[str, Any]] = json.loads(out)["services"]
    [svc] = services
    for outcome in svc["strategies"]:
        assert outcome["initial_nodes"] == outcome["final_nodes"] == workload["nodes_provisioned"]
        assert {r["target_nodes"] for r in outcome["replans"]} == {workload["nodes_provisioned"]}
    return svc
