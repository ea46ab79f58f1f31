"""Cloud TPU slices on GCP: TPU nodes of the plan's shape, queued for flex-start, fixed-size serving VMs;
and how the pack reads them (``training-fabric-complete``: one slice of the requested topology)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gpufleet.offline import OfflineRun
from gpufleet.plan import FleetPlan, build_plan
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import check_capacity_covers_demand, check_training_fabric
from gpufleet.stackfile import load_stack
from tests.components.conftest import deploy

STACK = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.gcp-tpu.yaml"
V2VM = "gcp:tpu/v2Vm:V2Vm"
QUEUED = "gcp:tpu/v2QueuedResource:V2QueuedResource"
MIGS = ("gcp:compute/instanceGroupManager:InstanceGroupManager",
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager")


@pytest.fixture(scope="module")
def plan() -> FleetPlan:
    name, spec = load_stack(STACK)
    return build_plan(spec, name)


def _run(plan: FleetPlan, **changes: object) -> tuple[OfflineRun, object]:
    pool = dataclasses.replace(plan.pool("pretrain-tpu-gcp-use5"), **changes)
    site = load_stack(STACK)[1].sites[0]
    return deploy(site, [pool], check=False), pool


def _findings(run: OfflineRun) -> list[str]:
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    return [f.message for f in check_training_fabric(build_inventory(resources), {}).findings]


def test_a_training_slice_is_one_tpu_node_of_the_planned_shape(plan: FleetPlan) -> None:
    run, pool = _run(plan)
    (node,) = run.of_type(V2VM)
    assert node.inputs["acceleratorConfig"] == {"type": "V5P", "topology": "4x4x4"}
    assert node.inputs["zone"] == "us-east5-a" and node.inputs["runtimeVersion"] == "v2-alpha-tpuv5"
    assert node.inputs["networkConfig"]["enableExternalIps"] is False
    assert node.inputs["labels"] == dict(sorted(pool.tags.items()))  # type: ignore[attr-defined]
    assert "schedulingConfig" not in node.inputs
    assert not [r for m in MIGS for r in run.of_type(m)]
    assert _findings(run) == []


def test_a_declared_multi_slice_run_gets_one_node_per_slice(plan: FleetPlan) -> None:
    run, _ = _run(plan, slices=2, nodes=32, gpus=128, nodes_by_zone={"us-east5-a": 32})
    nodes = run.of_type(V2VM)
    assert sorted(n.inputs["name"] for n in nodes) == ["pretrain-tpu-gcp-use5-s0", "pretrain-tpu-gcp-use5-s1"]
    assert {n.inputs["acceleratorConfig"]["topology"] for n in nodes} == {"4x4x4"}
    assert _findings(run) == []


def test_flex_start_queues_the_slices_and_a_reservation_reserves_them(plan: FleetPlan) -> None:
    run, _ = _run(plan, capacity_type="flex_start")
    (queued,) = run.of_type(QUEUED)
    (spec,) = queued.inputs["tpu"]["nodeSpecs"]
    assert spec["node"]["acceleratorType"] == "v5p-128" and spec["parent"].endswith("/locations/us-east5-a")
    assert not run.of_type(V2VM)
    assert _findings(run) == []
    run, _ = _run(plan, capacity_type="reservation", reservation_id="tpu-res")
    assert run.of_type(V2VM)[0].inputs["schedulingConfig"] == {"reserved": True}


def test_the_pack_reads_a_slice_as_its_vms_and_refuses_another_shape(plan: FleetPlan) -> None:
    run, pool = _run(plan)
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    inventory = build_inventory(resources)
    (read,) = inventory.pools.values()
    assert (read.count, read.instance_type) == (16, "ct5p-hightpu-4t")  # 64 chips on 4-chip VMs
    node = next(r for r in resources if r.type == V2VM)
    node.props["acceleratorConfig"] = {"type": "V5P", "topology": "2x4x4"}
    (msg,) = [f.message for f in check_training_fabric(build_inventory(resources), {}).findings]
    assert "TPU slice" in msg and "is 2x4x4 (v5p), but the run asks for one 4x4x4 slice" in msg
    # 32 chips on 8 VMs are half the slice: the capacity rule counts the VMs the shape really has.
    assert any("pretrain-tpu" in f.message for f in check_capacity_covers_demand(build_inventory(resources), {}).findings)


def test_undeclared_extra_slices_are_refused(plan: FleetPlan) -> None:
    run, _ = _run(plan, slices=2, nodes=32, gpus=128, nodes_by_zone={"us-east5-a": 32})
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    component = next(r for r in resources if r.type.endswith("TrainingCluster"))
    component.props["pool"]["slices"] = 1
    (msg,) = [f.message for f in check_training_fabric(build_inventory(resources), {}).findings]
    assert "2 TPU slices, but the run declares 1" in msg


def test_a_tpu_inference_pool_is_fixed_single_host_vms(plan: FleetPlan) -> None:
    pool = plan.pool("chat-tpu-gcp-use5")
    run = deploy(load_stack(STACK)[1].sites[0], [pool])
    nodes = run.of_type(V2VM)
    assert len(nodes) == pool.nodes == 6
    assert {n.inputs["acceleratorConfig"]["topology"] for n in nodes} == {"2x4"}
    assert {n.inputs["acceleratorConfig"]["type"] for n in nodes} == {"V6E"}
    by_zone = {z: sum(1 for n in nodes if n.inputs["zone"] == z) for z in pool.zones}
    assert by_zone == pool.nodes_by_zone
    assert not [r for m in MIGS for r in run.of_type(m)] and not run.of_type("gcp:compute/regionAutoscaler:RegionAutoscaler")
    component = run.named(pool.name)
    assert component.inputs["pool"]["min_nodes"] == component.inputs["pool"]["max_nodes"] == 6


def test_the_plans_spot_tpu_serving_nodes_are_spot_tpu_vms_in_their_zones(plan: FleetPlan) -> None:
    pool = plan.pool("chat-tpu-gcp-use5")
    spot_by_zone = {z: 1 for z in sorted(pool.nodes_by_zone)[:2]}
    pool = dataclasses.replace(pool, spot_nodes=2, spot_nodes_by_zone=spot_by_zone)
    run = deploy(load_stack(STACK)[1].sites[0], [pool])
    nodes = run.of_type(V2VM)
    spot = [n for n in nodes if n.inputs.get("schedulingConfig") == {"spot": True}]
    assert len(nodes) == pool.nodes == 6 and len(spot) == 2
    assert {z: sum(1 for n in spot if n.inputs["zone"] == z) for z in spot_by_zone} == spot_by_zone
    assert all("-spot-" in n.inputs["name"] for n in spot)
    assert all("schedulingConfig" not in n.inputs for n in nodes if n not in spot)
    assert "2 of them Spot TPU VMs" in " ".join(run.named(pool.name).outputs["notes"])


def test_the_pack_reads_spot_tpu_vms_as_spot_and_an_unknown_schedule_as_unread(plan: FleetPlan) -> None:
    from gpufleet.names import UNKNOWN_SENTINEL
    from gpufleet.policy.spot import on_demand_max

    pool = plan.pool("chat-tpu-gcp-use5")
    zone = sorted(pool.nodes_by_zone)[0]
    run = deploy(load_stack(STACK)[1].sites[0],
                 [dataclasses.replace(pool, spot_nodes=1, spot_nodes_by_zone={zone: 1})])
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]
    (read,) = build_inventory(resources).pools.values()
    assert sorted(on_demand_max(g) for g in read.groups) == [0, 1, 1, 1, 1, 1]  # the spot VM adds no floor
    vm = next(r for r in resources if r.type == V2VM)
    vm.props["schedulingConfig"] = UNKNOWN_SENTINEL
    (read,) = build_inventory(resources).pools.values()
    assert None in [on_demand_max(g) for g in read.groups]  # unknown: the spot rule fails closed on it
