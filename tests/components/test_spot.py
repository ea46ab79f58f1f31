"""Spot above the on-demand floor, per cloud: AWS one group with a mixed instances policy, Azure a
second Spot scale set, GCP a second MIG of SPOT VMs; and each cloud's reader telling the pack which
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
