"""The real program on every stack under mocks: what an operator would check by hand before ``pulumi up``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpufleet.offline import OfflineRun, RecordedResource
from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.spec import FleetSpec

REPO = Path(__file__).resolve().parents[2]
STACK_NAMES = ["dev", "aws-training", "azure-inference", "gcp-a3ultra", "prod", "eks-inference", "spot-inference",
               "gke-tpu"]

Run = Callable[[str], OfflineRun]
Plan = Callable[[str], tuple[FleetSpec, FleetPlan]]

TRAINING_DEMAND_KEYS = {"workload", "flops", "gpu", "deadline_days", "mfu"}
INFERENCE_DEMAND_KEYS = {
    "workload", "peak_tokens_per_s", "growth_per_month", "lead_time_days", "horizon_days", "headroom",
    "tokens_per_s_per_replica", "survive_zone_losses", "survive_site_losses", "boot_minutes",
    "demand_ramp_per_minute", "model", "context_tokens", "concurrency", "memory_reserved_fraction", "gpu",
    "gpus_per_replica", "forecast", "scenarios",
}
MODEL_KEYS = {"params", "layers", "kv_heads", "head_dim", "dtype", "kv_dtype"}

GPU_RESOURCES: dict[str, str] = {
    "aws:ec2/launchTemplate:LaunchTemplate": "tags",
    "aws:autoscaling/group:Group": "tags",
    "aws:eks/nodeGroup:NodeGroup": "tags",
    "azure-native:compute:VirtualMachineScaleSet": "tags",
    "gcp:compute/instanceTemplate:InstanceTemplate": "labels",
    "gcp:container/nodePool:NodePool": "nodeConfig.resourceLabels",
}


def owned(run: OfflineRun, pool: PoolPlan, type_token: str) -> list[RecordedResource]:
    """Resources of a type that belong to a pool's component."""
    component = run.named(pool.name)
    return [r for r in run.descendants(component) if r.type == type_token]


def tags_of(resource: RecordedResource, field: str) -> dict[str, str]:
    raw: Any = resource.inputs
    for part in field.split("."):
        raw = raw.get(part) or {}
    if isinstance(raw, list):
        return {t["key"]: t["value"] for t in raw if t.get("propagateAtLaunch")}
    return dict(raw)


@pytest.mark.parametrize("name", STACK_NAMES)
def test_stack_runs_and_exports_the_plan_summary(name: str, stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run(name)
    _, plan = stack_plan(name)
    assert run.error is None and run.resources
    assert run.outputs["gpus"] == plan.gpus
    assert sorted(run.outputs["pools"]) == sorted(p.name for p in plan.pools)
    for pool in plan.pools:
        summary = run.outputs["pools"][pool.name]
        assert (summary["gpus"], summary["nodes"], summary["min_nodes"]) == (pool.gpus, pool.nodes, pool.min_nodes)
        assert summary["power_kw"] == pytest.approx(pool.power_kw, abs=1e-3)
        assert summary["demand"]["covered"] is True


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_child_has_a_parent_and_every_cloud_resource_an_explicit_provider(name: str, stack_run: Run) -> None:
    check_parents_and_providers(stack_run(name))


def check_parents_and_providers(run: OfflineRun) -> None:
    """Every resource's parent is in the run, and every cloud resource sits in a component with an
    explicit provider."""
    urns = {r.urn for r in run.resources} | {run.stack_urn}
    providers = {r.urn for r in run.resources if r.is_provider}
    for r in run.resources:
        assert r.parent in urns, f"{r.name}: parent {r.parent}"
        if r.custom and not r.is_provider:
            assert r.parent != run.stack_urn, f"{r.name} is not inside a component"
            assert r.provider and r.provider.rsplit("::", 1)[0] in providers, f"{r.name} uses a default provider"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_gpu_resource_carries_the_pool_tags(name: str, stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run(name)
    _, plan = stack_plan(name)
    for pool in plan.pools:
        found = [r for t in GPU_RESOURCES for r in owned(run, pool, t)]
        assert found, pool.name
        for r in found:
            assert pool.tags.items() <= tags_of(r, GPU_RESOURCES[r.type]).items(), r.name
        for lt in owned(run, pool, "aws:ec2/launchTemplate:LaunchTemplate"):
            for spec in lt.inputs["tagSpecifications"]:
                assert pool.tags.items() <= spec["tags"].items(), lt.name


@pytest.mark.parametrize("name", STACK_NAMES)
def test_autoscaler_bounds_equal_the_plan(name: str, stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run(name)
    _, plan = stack_plan(name)
    for pool in (p for p in plan.pools if p.role == "inference"):
        bounds: list[tuple[float, float]] = []  # one per autoscaled group (a spot share: the on-demand and spot ones)
        for asg in owned(run, pool, "aws:autoscaling/group:Group"):
            bounds.append((asg.inputs["minSize"], asg.inputs["maxSize"]))
            assert asg.ignore_changes == ("desiredCapacity",)
        for group in owned(run, pool, "aws:eks/nodeGroup:NodeGroup"):
            bounds.append((group.inputs["scalingConfig"]["minSize"], group.inputs["scalingConfig"]["maxSize"]))
            assert group.ignore_changes == ("scalingConfig.desiredSize",)
        for setting in owned(run, pool, "azure-native:monitor:AutoscaleSetting"):
            capacity = setting.inputs["profiles"][0]["capacity"]
            bounds.append((float(capacity["minimum"]), float(capacity["maximum"])))
        for vmss in owned(run, pool, "azure-native:compute:VirtualMachineScaleSet"):
            assert vmss.ignore_changes == ("sku.capacity",)
        for scaler in owned(run, pool, "gcp:compute/regionAutoscaler:RegionAutoscaler"):
            policy = scaler.inputs["autoscalingPolicy"]
            bounds.append((policy["minReplicas"], policy["maxReplicas"]))
        for mig in owned(run, pool, "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"):
            assert mig.ignore_changes == ("targetSize",)
        for node_pool in owned(run, pool, "gcp:container/nodePool:NodePool"):
            auto = node_pool.inputs["autoscaling"]
            bounds.append((auto["totalMinNodeCount"], auto["totalMaxNodeCount"]))
            assert "nodeCount" in node_pool.ignore_changes
        assert (sum(b[0] for b in bounds), sum(b[1] for b in bounds)) == (pool.min_nodes, pool.nodes), pool.name
        # Azure with zonal stacks: one on-demand set per zone (and a spot set per zone with spot in it).
        per_zone = len(pool.zones) if pool.cloud == "azure" and pool.platform == "vm" else 1
        spot_groups = sum(1 for s in owned(run, pool, "azure-native:monitor:AutoscaleSetting") if "-spot-" in s.name)
        assert len(bounds) == (per_zone + spot_groups if pool.cloud == "azure" and pool.platform == "vm"
                               else 2 if pool.spot_nodes and pool.cloud != "aws" else 1), pool.name
        props = run.named(pool.name).inputs
        assert (props["min_nodes"], props["max_nodes"]) == (pool.min_nodes, pool.nodes)


@pytest.mark.parametrize("name", STACK_NAMES)
def test_training_clusters_are_static_and_sit_in_one_zone(name: str, stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run(name)
    _, plan = stack_plan(name)
    for pool in (p for p in plan.pools if p.role == "training"):
        (zone,) = pool.zones
        nodes = 0.0
        for asg in owned(run, pool, "aws:autoscaling/group:Group"):
            assert asg.inputs["minSize"] == asg.inputs["maxSize"] == asg.inputs["desiredCapacity"]
            assert len(asg.inputs["vpcZoneIdentifiers"]) == 1
            subnet = next(r for r in run.of_type("aws:ec2/subnet:Subnet") if r.id == asg.inputs["vpcZoneIdentifiers"][0])
            assert subnet.inputs["availabilityZone"] == zone
            nodes += asg.inputs["maxSize"]
        for vmss in owned(run, pool, "azure-native:compute:VirtualMachineScaleSet"):
            assert vmss.inputs["zones"] == [zone]
            nodes += vmss.inputs["sku"]["capacity"]
        for mig in owned(run, pool, "gcp:compute/instanceGroupManager:InstanceGroupManager"):
            assert mig.inputs["zone"] == zone
            nodes += mig.inputs["targetSize"]
        for node_pool in owned(run, pool, "gcp:container/nodePool:NodePool"):
            assert node_pool.inputs["nodeLocations"] == [zone] and "autoscaling" not in node_pool.inputs
            nodes += node_pool.inputs["nodeCount"]
        assert nodes == pool.nodes == run.named(pool.name).inputs["nodes"]


def test_p5_launch_template_enables_32_efa_interfaces_on_distinct_cards(stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run("aws-training")
    _, plan = stack_plan("aws-training")
    pool = next(p for p in plan.pools if p.instance_type == "p5.48xlarge")
    (lt,) = owned(run, pool, "aws:ec2/launchTemplate:LaunchTemplate")
    nics = lt.inputs["networkInterfaces"]
    efa = [n for n in nics if n["interfaceType"] in ("efa", "efa-only")]
    assert len(efa) == 32
    assert len({n["networkCardIndex"] for n in efa}) == 32
    primary = [n for n in nics if n["interfaceType"] == "interface"]
    assert [(n["networkCardIndex"], n["deviceIndex"]) for n in primary] == [(0, 0)]
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    assert all(b["ebs"]["encrypted"] == "true" for b in lt.inputs["blockDeviceMappings"])
    target = lt.inputs["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target["capacityReservationId"] == pool.reservation_id
    component = run.named(pool.name)
    assert component.inputs["fabric"] == "efa" and component.inputs["fabric_interfaces"] == 32


def test_p5_cluster_uses_a_cluster_placement_group(stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run("dev")
    _, plan = stack_plan("dev")
    pool = next(p for p in plan.pools if p.role == "training" and p.cloud == "aws")
    (group,) = owned(run, pool, "aws:ec2/placementGroup:PlacementGroup")
    assert group.inputs["strategy"] == "cluster"
    (lt,) = owned(run, pool, "aws:ec2/launchTemplate:LaunchTemplate")
    # The template names the group (under mocks a resource's physical name is its logical name).
    assert lt.inputs["placement"]["groupName"] == group.name


def test_p5_cluster_on_a_reservation_launches_into_the_reservations_group(stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run("aws-training")
    _, plan = stack_plan("aws-training")
    pool = next(p for p in plan.pools if p.role == "training")
    assert pool.placement_group_name == "pretrain-70b-use2b"
    assert owned(run, pool, "aws:ec2/placementGroup:PlacementGroup") == []  # a reservation cannot move groups
    (lt,) = owned(run, pool, "aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["placement"]["groupName"] == "pretrain-70b-use2b"
    (asg,) = owned(run, pool, "aws:autoscaling/group:Group")
    assert asg.inputs["placementGroup"] == "pretrain-70b-use2b"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_no_security_group_admits_the_internet_and_efa_groups_admit_only_themselves(name: str,
                                                                                    stack_run: Run) -> None:
    run = stack_run(name)
    for sg in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), sg.name
            assert "::/0" not in rule.get("ipv6CidrBlocks", []), sg.name
        if sg.name.endswith("-efa"):
            assert all(r.get("self") is True and not r.get("cidrBlocks") for r in sg.inputs["ingress"])
            assert all(r.get("self") is True and not r.get("cidrBlocks") for r in sg.inputs["egress"])


def test_azure_training_is_one_single_placement_group_of_at_most_100_vms_per_island(stack_run: Run,
                                                                                     stack_plan: Plan) -> None:
    run = stack_run("prod")
    _, plan = stack_plan("prod")
    pools = [p for p in plan.pools if p.cloud == "azure" and p.role == "training"]
    assert pools
    for pool in pools:
        sets = owned(run, pool, "azure-native:compute:VirtualMachineScaleSet")
        assert len(sets) == len(pool.islands) >= 2
        assert sorted(s.inputs["sku"]["capacity"] for s in sets) == sorted(pool.islands)
        for vmss in sets:
            assert vmss.inputs["singlePlacementGroup"] is True
            assert vmss.inputs["sku"]["capacity"] <= 100
            assert vmss.inputs["overprovision"] is False
            assert vmss.inputs["virtualMachineProfile"]["osProfile"]["linuxConfiguration"][
                "disablePasswordAuthentication"] is True


def test_gcp_a3_ultra_template_has_8_mrdma_nics_on_the_roce_network_and_the_reservations_placement(
        stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run("gcp-a3ultra")
    _, plan = stack_plan("gcp-a3ultra")
    (pool,) = plan.pools
    (template,) = owned(run, pool, "gcp:compute/instanceTemplate:InstanceTemplate")
    networks = {n.id: n.inputs for n in run.of_type("gcp:compute/network:Network")}
    mrdma = [n for n in template.inputs["networkInterfaces"] if n["nicType"] == "MRDMA"]
    assert len(mrdma) == 8 and len({n["subnetwork"] for n in mrdma}) == 8
    (roce,) = {n["network"] for n in mrdma}
    assert networks[roce]["networkProfile"] == \
        f"projects/gpufleet-training/global/networkProfiles/{pool.zones[0]}-vpc-roce"
    # The specific reservation places the VMs (no policy of gpufleet's); an A3 Ultra reservation comes
    # from a future reservation, so its VMs are reservation-bound.
    assert owned(run, pool, "gcp:compute/resourcePolicy:ResourcePolicy") == []
    assert "resourcePolicies" not in template.inputs
    assert template.inputs["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert template.inputs["scheduling"]["provisioningModel"] == "RESERVATION_BOUND"
    assert template.inputs["reservationAffinity"]["specificReservation"]["values"] == [pool.reservation_id]
    (group,) = owned(run, pool, "gcp:compute/instanceGroupManager:InstanceGroupManager")
    assert group.inputs["targetSize"] == pool.nodes and group.inputs["waitForInstances"] is True


def test_components_carry_the_demand_under_the_spec_field_names(stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run("prod")
    spec, plan = stack_plan("prod")
    for pool in plan.pools:
        demand = run.named(pool.name).inputs["demand"]
        if pool.role == "training":
            assert set(demand) == TRAINING_DEMAND_KEYS
            work = next(w for w in spec.training if w.name == pool.workload)
            assert demand["flops"] == pytest.approx(work.flops) and demand["mfu"] == work.mfu
        else:
            assert set(demand) == INFERENCE_DEMAND_KEYS and set(demand["model"]) == MODEL_KEYS
            work = next(w for w in spec.inference if w.name == pool.workload)
            assert demand["peak_tokens_per_s"] == work.peak_tokens_per_s
            assert demand["gpus_per_replica"] == pool.sizing["memory"]["gpus_per_replica"] > 0


def test_component_props_repeat_the_pool_facts(stack_run: Run, stack_plan: Plan) -> None:
    run = stack_run("prod")
    _, plan = stack_plan("prod")
    for pool in plan.pools:
        props = run.named(pool.name).inputs
        assert props["instance_type"] == pool.instance_type and props["gpus_per_node"] == pool.gpus_per_node
        assert props["zones"] == list(pool.zones) and props["site"] == pool.site
        assert props["node_power_kw"] == pytest.approx(pool.node_power_kw) and props["pue"] == pool.pue
        assert props["fabric"] == pool.fabric and props["fabric_interfaces"] == pool.fabric_interfaces
        assert props["pool"]["tags"] == pool.tags


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_two_runs_register_identical_inputs(name: str, stack_run: Run) -> None:
    from gpufleet.offline import run_program

    first = stack_run(name)
    second = run_program(REPO / "stacks" / f"Pulumi.{name}.yaml")
    dump = lambda run: json.dumps(run.inputs_by_urn(), sort_keys=True)  # noqa: E731
    assert dump(first) == dump(second)
    assert [r.urn for r in first.resources] == [r.urn for r in second.resources]
    assert first.outputs == second.outputs


def test_offline_runs_say_when_they_used_a_placeholder_ssh_key(stack_run: Run) -> None:
    assert any("placeholder" in note for note in stack_run("azure-inference").notes)
    assert stack_run("azure-inference").outputs["notes"]
    assert not any("placeholder" in note for note in stack_run("aws-training").notes)
    assert "notes" not in stack_run("aws-training").outputs


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for x in value.values() for v in _values(x)]
    if isinstance(value, list):
        return [v for x in value for v in _values(x)]
    return [value]


@pytest.mark.parametrize("name", STACK_NAMES)
def test_nothing_is_left_unknown_in_a_preview(name: str, stack_run: Run) -> None:
    # The plan never hides behind provider outputs: every input is known at preview time.
    run = stack_run(name)
    for r in run.resources:
        assert "<computed>" not in _values(r.inputs), r.name


def test_the_policy_pack_passes_every_stack(stack_run: Run) -> None:
    # The pack reads the components' registered outputs and the cloud resources, as a real preview
    # sends them (computed values unknown); the two must tell one story.
    from gpufleet.engine import PolicyEngine, analyzed_resources

    if not (REPO / "policies" / "PulumiPolicy.yaml").exists():
        pytest.skip("no policy pack in this checkout")
    for name in STACK_NAMES:
        resources = analyzed_resources(stack_run(name))
        with PolicyEngine(REPO / "policies", stack=name) as engine:
            result = engine.run(resources)
        assert [(d.policy, d.message) for d in result.diagnostics] == [], name
