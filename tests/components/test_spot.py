"""Spot above the on-demand floor, per cloud: AWS one group with a mixed instances policy, Azure a
second Spot scale set, GCP a second MIG of SPOT VMs; an all-spot pool (an on-demand floor of 0) as
only its spot groups, each scaling on its own metric; and each cloud's reader telling the pack which
part of a group is on-demand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.offline import OfflineRun, RecordedResource
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.spot import on_demand_max

Build = Callable[..., OfflineRun]


def _named(run: OfflineRun, type_token: str, name: str) -> RecordedResource:
    (found,) = [r for r in run.of_type(type_token) if r.name == name]
    return found


def _groups(run: OfflineRun) -> dict[str, tuple[int | None, int | None]]:
    """(max nodes, on-demand max nodes) of every node group, as the pack reads the recorded inputs."""
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=dict(r.inputs), parent=r.parent or None,
                          dependencies=tuple(r.dependencies)) for r in run.resources]
    inventory = build_inventory(resources)
    return {g.name: (g.max_nodes, on_demand_max(g)) for p in inventory.pools.values() for g in p.groups}


def test_aws_launches_the_floor_on_demand_and_only_spot_above_it(site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("aws", "inference", nodes=12, min_nodes=3, spot_nodes=5)
    run = build(site_of("aws"), [pool])
    asg = _named(run, "aws:autoscaling/group:Group", f"{pool.name}-nodes").inputs
    distribution = asg["mixedInstancesPolicy"]["instancesDistribution"]
    assert distribution["onDemandBaseCapacity"] == 7
    assert distribution["onDemandPercentageAboveBaseCapacity"] == 0
    assert distribution["spotAllocationStrategy"] == "price-capacity-optimized"
    assert asg["capacityRebalance"] is True
    assert (asg["minSize"], asg["maxSize"]) == (3, 12)
    assert "warmPool" not in asg  # refused with a mixed instances policy
    assert _groups(run) == {f"{pool.name}-nodes": (12, 7)}


def test_aws_without_spot_keeps_its_single_template_group(site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("aws", "inference", nodes=12, min_nodes=3)
    run = build(site_of("aws"), [pool])
    asg = _named(run, "aws:autoscaling/group:Group", f"{pool.name}-nodes").inputs
    assert "mixedInstancesPolicy" not in asg and "capacityRebalance" not in asg
    assert _groups(run) == {f"{pool.name}-nodes": (12, 12)}


def test_azure_adds_a_spot_scale_set_beside_the_on_demand_one(site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("azure", "inference", nodes=12, min_nodes=3, spot_nodes=5, zones=("1",))  # one zone: one pair
    run = build(site_of("azure"), [pool])
    regular = _named(run, "azure-native:compute:VirtualMachineScaleSet", f"{pool.name}-vmss").inputs
    spot = _named(run, "azure-native:compute:VirtualMachineScaleSet", f"{pool.name}-spot-vmss").inputs
    assert "priority" not in regular["virtualMachineProfile"]
    profile = spot["virtualMachineProfile"]
    assert (profile["priority"], profile["evictionPolicy"], profile["billingProfile"]["maxPrice"]) == ("Spot", "Delete", -1)
    bounds = {r.name: r.inputs["profiles"][0]["capacity"]
              for r in run.of_type("azure-native:monitor:AutoscaleSetting")}
    assert bounds == {f"{pool.name}-autoscale": {"minimum": "3", "maximum": "7", "default": "3"},
                      f"{pool.name}-spot-autoscale": {"minimum": "0", "maximum": "5", "default": "0"}}
    assert _groups(run) == {f"{pool.name}-vmss": (7, 7), f"{pool.name}-spot-vmss": (5, 0)}
    assert len(run.of_type("azure-native:authorization:RoleAssignment")) == 2  # each set publishes its metric


def test_gcp_adds_a_mig_of_spot_vms_beside_the_on_demand_one(site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("gcp", "inference", nodes=12, min_nodes=3, spot_nodes=5)
    run = build(site_of("gcp"), [pool])
    templates = {r.name: r.inputs["scheduling"] for r in run.of_type("gcp:compute/instanceTemplate:InstanceTemplate")}
    spot = templates[f"{pool.name}-spot-template"]
    assert (spot["provisioningModel"], spot["preemptible"], spot["automaticRestart"],
            spot["instanceTerminationAction"]) == ("SPOT", True, False, "DELETE")
    assert "provisioningModel" not in templates[f"{pool.name}-template"]
    bounds = {r.name: (r.inputs["autoscalingPolicy"]["minReplicas"], r.inputs["autoscalingPolicy"]["maxReplicas"])
              for r in run.of_type("gcp:compute/regionAutoscaler:RegionAutoscaler")}
    assert bounds == {f"{pool.name}-autoscaler": (3, 7), f"{pool.name}-spot-autoscaler": (3, 5)}
    spot_mig = _named(run, "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager", f"{pool.name}-spot-mig")
    assert "standbyPolicy" not in spot_mig.inputs
    assert _groups(run) == {f"{pool.name}-mig": (7, 7), f"{pool.name}-spot-mig": (5, 0)}


VMSS = "azure-native:compute:VirtualMachineScaleSet"
SETTING = "azure-native:monitor:AutoscaleSetting"
TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
MIG = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
AUTOSCALER = "gcp:compute/regionAutoscaler:RegionAutoscaler"


def _built(run: OfflineRun, *types: str) -> set[tuple[str, str]]:
    """(type, name) of every resource of ``types``: what `gpufleet preview` lists for the pool."""
    return {(r.type, r.name) for r in run.resources if r.type in types}


def _metric_sources(run: OfflineRun) -> dict[str, tuple[str, set[str]]]:
    """Each Azure autoscale setting's (target, the scale sets its rules read the metric of), by name,
    with ids given as the scale sets' names."""
    names = {r.id: r.name for r in run.of_type(VMSS)}
    return {s.name: (names[s.inputs["targetResourceUri"]],
                     {names[rule["metricTrigger"]["metricResourceUri"]] for rule in s.inputs["profiles"][0]["rules"]})
            for s in run.of_type(SETTING)}


def test_aws_builds_an_all_spot_pool_as_its_one_group_with_no_on_demand_base(site_of: Any, pool_of: Any,
                                                                            build: Build) -> None:
    pool = pool_of("aws", "inference", nodes=12, min_nodes=3, spot_nodes=12)
    run = build(site_of("aws"), [pool])
    asg = _named(run, "aws:autoscaling/group:Group", f"{pool.name}-nodes").inputs
    distribution = asg["mixedInstancesPolicy"]["instancesDistribution"]
    assert (distribution["onDemandBaseCapacity"], distribution["onDemandPercentageAboveBaseCapacity"]) == (0, 0)
    assert _groups(run) == {f"{pool.name}-nodes": (12, 0)}


def test_azure_builds_an_all_spot_pool_as_spot_sets_alone_each_scaling_on_its_own_metric(
        site_of: Any, pool_of: Any, build: Build) -> None:
    # 6 nodes over three zones, all spot; the plan keeps 1 running, which would leave two zones' sets at 0
    pool = pool_of("azure", "inference", nodes=6, min_nodes=1, spot_nodes=6)
    run = build(site_of("azure"), [pool])
    zones = ("1", "2", "3")
    assert _built(run, VMSS, SETTING) == {(VMSS, f"{pool.name}-z{z}-spot-vmss") for z in zones} | \
        {(SETTING, f"{pool.name}-z{z}-spot-autoscale") for z in zones}
    for z in zones:
        vmss = f"{pool.name}-z{z}-spot-vmss"
        assert _named(run, VMSS, vmss).inputs["virtualMachineProfile"]["priority"] == "Spot"
        assert _metric_sources(run)[f"{pool.name}-z{z}-spot-autoscale"] == (vmss, {vmss})
        setting = _named(run, SETTING, f"{pool.name}-z{z}-spot-autoscale")
        # at least one VM posts the metric; with none to read, autoscale restores the default
        assert setting.inputs["profiles"][0]["capacity"] == {"minimum": "1", "maximum": "2", "default": "1"}
    assert len(run.of_type("azure-native:authorization:RoleAssignment")) == 3  # each set publishes its metric
    assert _groups(run) == {f"{pool.name}-z{z}-spot-vmss": (2, 0) for z in zones}
    notes = run.named(pool.name).outputs["notes"]
    assert any("no on-demand set (the plan's on-demand floor is 0)" in n for n in notes), notes
    assert run.named(pool.name).outputs["node_group_id"] == _named(run, VMSS, f"{pool.name}-z1-spot-vmss").id


def test_azure_keeps_a_mixed_pool_as_on_demand_and_spot_sets_the_spot_set_scaling_on_the_on_demand_one(
        site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("azure", "inference", nodes=12, min_nodes=3, spot_nodes=6)
    run = build(site_of("azure"), [pool])
    zones = ("1", "2", "3")
    assert _built(run, VMSS, SETTING) == {
        (kind, f"{pool.name}-z{z}{part}-{suffix}") for z in zones for part in ("", "-spot")
        for kind, suffix in ((VMSS, "vmss"), (SETTING, "autoscale"))}
    sources = _metric_sources(run)
    for z in zones:
        on_demand = f"{pool.name}-z{z}-vmss"
        assert sources[f"{pool.name}-z{z}-autoscale"] == (on_demand, {on_demand})
        assert sources[f"{pool.name}-z{z}-spot-autoscale"] == (f"{pool.name}-z{z}-spot-vmss", {on_demand})
    assert run.named(pool.name).outputs["node_group_id"] == _named(run, VMSS, f"{pool.name}-z1-vmss").id


def test_azure_builds_a_zone_without_a_share_of_the_floor_as_its_spot_set_alone(
        site_of: Any, pool_of: Any, build: Build) -> None:
    # 1 on-demand node over three zones of 2: zone 1 holds it, zones 2 and 3 have spot only
    pool = pool_of("azure", "inference", nodes=6, min_nodes=1, spot_nodes=5)
    run = build(site_of("azure"), [pool])
    assert {name for _, name in _built(run, VMSS)} == {
        f"{pool.name}-z1-vmss", f"{pool.name}-z1-spot-vmss", f"{pool.name}-z2-spot-vmss", f"{pool.name}-z3-spot-vmss"}
    sources = _metric_sources(run)
    assert sources[f"{pool.name}-z1-spot-autoscale"] == (f"{pool.name}-z1-spot-vmss", {f"{pool.name}-z1-vmss"})
    for z in ("2", "3"):
        vmss = f"{pool.name}-z{z}-spot-vmss"
        assert sources[f"{pool.name}-z{z}-spot-autoscale"] == (vmss, {vmss})
        capacity = _named(run, SETTING, f"{pool.name}-z{z}-spot-autoscale").inputs["profiles"][0]["capacity"]
        assert capacity == {"minimum": "1", "maximum": "2", "default": "1"}
    assert sum(max_nodes - on_demand for max_nodes, on_demand in _groups(run).values()) == 5


def test_gcp_builds_an_all_spot_pool_as_its_spot_mig_alone_kept_at_one_vm_per_zone(
        site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("gcp", "inference", nodes=9, min_nodes=2, spot_nodes=9)
    run = build(site_of("gcp"), [pool])
    assert _built(run, TEMPLATE, MIG, AUTOSCALER) == {
        (TEMPLATE, f"{pool.name}-spot-template"), (MIG, f"{pool.name}-spot-mig"), (AUTOSCALER, f"{pool.name}-spot-autoscaler")}
    (autoscaler,) = run.of_type(AUTOSCALER)
    mig = _named(run, MIG, f"{pool.name}-spot-mig")
    assert autoscaler.inputs["target"] == mig.id  # its own group's VMs publish the metric it reads
    policy = autoscaler.inputs["autoscalingPolicy"]
    # the plan keeps 2 running; a per-instance metric needs a VM running, and the MIG spreads over 3 zones
    assert (policy["minReplicas"], policy["maxReplicas"]) == (3, 9)
    (metric,) = policy["metrics"]
    assert metric["target"] == pool.scaling_target_per_node
    (template,) = run.of_type(TEMPLATE)
    assert template.inputs["scheduling"]["provisioningModel"] == "SPOT"
    assert "standbyPolicy" not in mig.inputs
    assert _groups(run) == {f"{pool.name}-spot-mig": (9, 0)}
    outputs = run.named(pool.name).outputs
    assert (outputs["node_group_id"], outputs["autoscaler_id"]) == (mig.outputs["selfLink"], autoscaler.outputs["selfLink"])
    assert any("and no on-demand MIG (the plan's on-demand floor is 0)" in n for n in outputs["notes"])


def test_gcp_keeps_a_mixed_pool_as_an_on_demand_and_a_spot_mig(site_of: Any, pool_of: Any, build: Build) -> None:
    pool = pool_of("gcp", "inference", nodes=12, min_nodes=3, spot_nodes=5)
    run = build(site_of("gcp"), [pool])
    assert _built(run, TEMPLATE, MIG, AUTOSCALER) == {
        (kind, f"{pool.name}{part}-{suffix}") for part in ("", "-spot")
        for kind, suffix in ((TEMPLATE, "template"), (MIG, "mig"), (AUTOSCALER, "autoscaler"))}
    targets = {a.name: a.inputs["target"] for a in run.of_type(AUTOSCALER)}
    assert targets == {f"{pool.name}-autoscaler": _named(run, MIG, f"{pool.name}-mig").id,
                       f"{pool.name}-spot-autoscaler": _named(run, MIG, f"{pool.name}-spot-mig").id}
    assert run.named(pool.name).outputs["node_group_id"] == _named(run, MIG, f"{pool.name}-mig").outputs["selfLink"]


@pytest.mark.parametrize(("distribution", "on_demand"), [
    ({"onDemandBaseCapacity": 4, "onDemandPercentageAboveBaseCapacity": 50}, 4 + 4),  # half of the 8 above base
    ({"onDemandBaseCapacity": 4, "onDemandPercentageAboveBaseCapacity": 30}, 4 + 2),  # 2.4 counted down
    ({"onDemandPercentageAboveBaseCapacity": 0}, 0),  # base defaults to 0
    ({"onDemandBaseCapacity": 20, "onDemandPercentageAboveBaseCapacity": 0}, 12),  # base above the maximum
    ({"onDemandBaseCapacity": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}, None),  # unknown during a preview
])
def test_the_aws_reader_counts_the_on_demand_part_of_a_mixed_group(distribution: dict[str, Any],
                                                                  on_demand: int | None) -> None:
    from gpufleet.clouds.aws.readers import _spot_nodes

    spot = _spot_nodes({"mixedInstancesPolicy": {"instancesDistribution": distribution}}, 12)
    assert (None if spot is None else 12 - spot) == on_demand
