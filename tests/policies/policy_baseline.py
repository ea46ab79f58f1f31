"""A compliant three-cloud stack, as the engine sends it to ``AnalyzeStack``, for rule tests.

Every test starts from :func:`baseline` (which passes every policy) and makes one change. The
resources are shaped like the gpufleet components build them: a component per pool carrying its
``demand`` and facts (snake_case props), cloud resources under it (camelCase properties, the
``gpufleet-*`` tags), and a ``SiteNetwork`` per site with its power envelope and quotas.

Sites and workloads:

* ``aws-use1`` (2 MW, PUE 1.2): ``chat-70b`` on p5.48xlarge (one ASG over three zones, 3..18
  nodes; needs 11, 12 survive a zone loss) and ``pretrain-70b`` (52 p5.48xlarge, EFA, cluster
  placement group, one zone);
* ``azure-eastus`` (1 MW): ``finetune-8b`` on 2 Standard_ND96isr_H100_v5 (one scale set, single
  placement group, zone 1);
* ``gcp-usc1`` (1.5 MW, PUE 1.1): ``chat-8b`` on g2-standard-48 (regional MIG over three zones,
  autoscaler 3..12; needs 7) and ``posttrain-30b`` (22 a3-ultragpu-8g with 8 MRDMA NICs, a
  HIGH_THROUGHPUT workload policy on the MIG).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from gpufleet.engine import StackResource

STACK = "test"
PROJECT = "gpufleet"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # what the engine sends for an unknown value


class Stack(list):  # type: ignore[type-arg]
    """A list of resource dicts (type, name, urn, parent, properties) with lookup helpers."""

    def named(self, name: str) -> dict[str, Any]:
        found = [r for r in self if r["name"] == name]
        assert len(found) == 1, f"{len(found)} resources named {name!r}"
        return found[0]

    def props(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.named(name)["properties"]
        return props

    def without(self, name: str) -> Stack:
        return Stack(r for r in self if r["name"] != name)

    def of_type(self, type_token: str) -> Iterator[dict[str, Any]]:
        return (r for r in self if r["type"] == type_token)

    def policy_resources(self) -> list[Any]:
        from gpufleet.policy.resources import Resource

        return [Resource(type=r["type"], name=r["name"], urn=r["urn"], props=copy.deepcopy(r["properties"]),
                         parent=r["parent"], dependencies=tuple(r.get("dependencies", ()))) for r in self]

    def stack_resources(self) -> list[StackResource]:
        return [StackResource(type=r["type"], name=r["name"], urn=r["urn"], properties=r["properties"],
                              parent=r["parent"], dependencies=tuple(r.get("dependencies", ()))) for r in self]


class _Builder:
    def __init__(self) -> None:
        self.stack = Stack()
        self.qualified: dict[str, str] = {}

    def add(self, type_token: str, name: str, properties: dict[str, Any], parent: str | None = None,
            dependencies: tuple[str, ...] = ()) -> str:
        chain = f"{self.qualified[parent]}$" if parent else ""
        qualified = f"{chain}{type_token}"
        urn = f"urn:pulumi:{STACK}::{PROJECT}::{qualified}::{name}"
        self.qualified[urn] = qualified
        self.stack.append({"type": type_token, "name": name, "urn": urn, "parent": parent,
                           "properties": properties, "dependencies": list(dependencies)})
        return urn


def tags(workload: str, role: str, site: str, gpu: str, gpus: int) -> dict[str, str]:
    return {"gpufleet-workload": workload, "gpufleet-role": role, "gpufleet-site": site,
            "gpufleet-pool": f"{workload}-{site}", "gpufleet-gpu": gpu.lower(), "gpufleet-gpus-per-node": str(gpus)}


def _component(kind: str, workload: str, site: str, cloud: str, itype: str, gpu: str, gpus: int, zones: list[str],
               nodes: int, min_nodes: int, node_kw: float, pue: float, fabric: str, fabric_if: int,
               demand: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{workload}-{site}", "workload": workload, "role": kind, "cloud": cloud, "site": site,
        "zones": zones, "instance_type": itype, "gpu": gpu, "gpus_per_node": gpus, "nodes": nodes,
        "min_nodes": min_nodes, "max_nodes": nodes, "node_power_kw": node_kw, "pue": pue, "fabric": fabric,
        "fabric_interfaces": fabric_if, "tags": tags(workload, kind, site, gpu, gpus), "demand": copy.deepcopy(demand),
    }


CHAT_70B = {"workload": "chat-70b", "peak_tokens_per_s": 40000, "growth_per_month": 0.08, "lead_time_days": 30,
            "horizon_days": 90, "headroom": 0.2, "tokens_per_s_per_replica": 3000, "survive_zone_losses": 1,
            "survive_site_losses": 0, "boot_minutes": 10, "demand_ramp_per_minute": 0.02,
            "model": {"params": 70e9, "layers": 80, "kv_heads": 8, "head_dim": 128, "dtype": "bf16"},
            "context_tokens": 8192, "concurrency": 16, "memory_reserved_fraction": 0.1, "gpus_per_replica": 4,
            "gpu": "H100"}
CHAT_8B = {"workload": "chat-8b", "peak_tokens_per_s": 9000, "growth_per_month": 0.08, "lead_time_days": 30,
           "horizon_days": 90, "headroom": 0.2, "tokens_per_s_per_replica": 2400, "survive_zone_losses": 1,
           "survive_site_losses": 0, "boot_minutes": 10, "demand_ramp_per_minute": 0.02,
           "model": {"params": 8e9, "layers": 32, "kv_heads": 8, "head_dim": 128, "dtype": "bf16"},
           "context_tokens": 8192, "concurrency": 32, "memory_reserved_fraction": 0.1, "gpus_per_replica": 4,
           "gpu": "L4"}
PRETRAIN_70B = {"workload": "pretrain-70b", "flops": 6 * 70e9 * 1e12, "gpu": "H100", "deadline_days": 30, "mfu": 0.4}
FINETUNE_8B = {"workload": "finetune-8b", "flops": 6 * 8e9 * 1.5e11, "gpu": "H100", "deadline_days": 14, "mfu": 0.4}
POSTTRAIN_30B = {"workload": "posttrain-30b", "flops": 6 * 30e9 * 1e12, "gpu": "H200", "deadline_days": 30, "mfu": 0.4}


def _p5_interfaces(efa: int) -> list[dict[str, Any]]:
    """AWS's P5 layout: ENA primary at card 0, then one efa-only per network card."""
    nics = [{"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface", "deleteOnTermination": "true"}]
    nics += [{"networkCardIndex": i, "deviceIndex": 1 if i == 0 else 0, "interfaceType": "efa-only",
              "deleteOnTermination": "true"} for i in range(efa)]
    return nics


def baseline() -> Stack:
    """The compliant stack (a fresh copy each call)."""
    b = _Builder()
    add = b.add

    # --- aws-use1 ---
    aws_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    add("gpufleet:index:SiteNetwork", "aws-use1", {
        "site": "aws-use1", "cloud": "aws", "region": "us-east-1", "zones": aws_zones, "power_mw": 2.0,
        "pue": 1.2, "quota_gpus": {"H100": 600}, "failure_domain": "us-east"})
    chat = add("gpufleet:index:InferencePool", "chat-70b-aws-use1", _component(
        "inference", "chat-70b", "aws-use1", "aws", "p5.48xlarge", "H100", 8, aws_zones, 18, 3, 10.2, 1.2, "efa", 32,
        CHAT_70B))
    t = tags("chat-70b", "inference", "aws-use1", "H100", 8)
    add("aws:ec2/launchTemplate:LaunchTemplate", "chat-70b-aws-use1-lt", {
        "name": "chat-70b-aws-use1", "instanceType": "p5.48xlarge", "imageId": "ami-0123",
        "networkInterfaces": [{"deviceIndex": 0, "networkCardIndex": 0, "interfaceType": "interface"}],
        "tags": t}, chat)
    add("aws:autoscaling/group:Group", "chat-70b-aws-use1-asg", {
        "minSize": 3, "maxSize": 18, "desiredCapacity": 3, "availabilityZones": aws_zones,
        "launchTemplate": {"name": "chat-70b-aws-use1", "version": "$Latest"},
        "tags": [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in t.items()]}, chat)
    add("aws:autoscaling/policy:Policy", "chat-70b-aws-use1-scaling", {
        "autoscalingGroupName": UNKNOWN, "policyType": "TargetTrackingScaling"}, chat)

    pre = add("gpufleet:index:TrainingCluster", "pretrain-70b-aws-use1", _component(
        "training", "pretrain-70b", "aws-use1", "aws", "p5.48xlarge", "H100", 8, ["us-east-1a"], 52, 52, 10.2, 1.2,
        "efa", 32, PRETRAIN_70B))
    t = tags("pretrain-70b", "training", "aws-use1", "H100", 8)
    add("aws:ec2/placementGroup:PlacementGroup", "pretrain-70b-aws-use1-pg",
        {"name": "pretrain-70b-aws-use1", "strategy": "cluster", "tags": t}, pre)
    add("aws:ec2/launchTemplate:LaunchTemplate", "pretrain-70b-aws-use1-lt", {
        "name": "pretrain-70b-aws-use1", "instanceType": "p5.48xlarge", "networkInterfaces": _p5_interfaces(32),
        "placement": {"groupName": "pretrain-70b-aws-use1"}, "tags": t}, pre)
    add("aws:autoscaling/group:Group", "pretrain-70b-aws-use1-asg", {
        "minSize": 52, "maxSize": 52, "desiredCapacity": 52, "availabilityZones": ["us-east-1a"],
        "placementGroup": "pretrain-70b-aws-use1", "launchTemplate": {"name": "pretrain-70b-aws-use1"},
        "tags": [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in t.items()]}, pre)

    # --- azure-eastus ---
    add("gpufleet:index:SiteNetwork", "azure-eastus", {
        "site": "azure-eastus", "cloud": "azure", "region": "eastus", "zones": ["1", "2", "3"], "power_mw": 1.0,
        "pue": 1.2, "quota_gpus": {"H100": 64}})
    ft = add("gpufleet:index:TrainingCluster", "finetune-8b-azure-eastus", _component(
        "training", "finetune-8b", "azure-eastus", "azure", "Standard_ND96isr_H100_v5", "H100", 8, ["1"], 2, 2, 10.2,
        1.2, "infiniband", 8, FINETUNE_8B))
    add("azure-native:compute:VirtualMachineScaleSet", "finetune-8b-azure-eastus-island-0", {
        "sku": {"name": "Standard_ND96isr_H100_v5", "tier": "Standard", "capacity": 2},
        "singlePlacementGroup": True, "zones": ["1"], "overprovision": False, "orchestrationMode": "Uniform",
        "tags": tags("finetune-8b", "training", "azure-eastus", "H100", 8)}, ft)

    # --- gcp-usc1 ---
    gcp_zones = ["us-central1-a", "us-central1-b", "us-central1-c"]
    add("gpufleet:index:SiteNetwork", "gcp-usc1", {
        "site": "gcp-usc1", "cloud": "gcp", "region": "us-central1", "zones": gcp_zones, "power_mw": 1.5, "pue": 1.1,
        "quota_gpus": {"L4": 64, "H200": 200}})
    c8 = add("gpufleet:index:InferencePool", "chat-8b-gcp-usc1", _component(
        "inference", "chat-8b", "gcp-usc1", "gcp", "g2-standard-48", "L4", 4, gcp_zones, 12, 3, 0.768, 1.1, "none", 0,
        CHAT_8B))
    labels = tags("chat-8b", "inference", "gcp-usc1", "L4", 4)
    add("gcp:compute/instanceTemplate:InstanceTemplate", "chat-8b-gcp-usc1-template", {
        "namePrefix": "chat-8b-gcp-usc1-", "machineType": "g2-standard-48", "labels": labels,
        "networkInterfaces": [{"subnetwork": UNKNOWN, "nicType": "GVNIC"}]}, c8)
    add("gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager", "chat-8b-gcp-usc1-mig", {
        "name": "chat-8b-gcp-usc1", "region": "us-central1", "baseInstanceName": "chat-8b",
        "distributionPolicyZones": gcp_zones, "versions": [{"instanceTemplate": UNKNOWN, "name": "primary"}],
        "allInstancesConfig": {"labels": labels}}, c8)
    add("gcp:compute/regionAutoscaler:RegionAutoscaler", "chat-8b-gcp-usc1-autoscaler", {
        "name": "chat-8b-gcp-usc1", "region": "us-central1", "target": UNKNOWN,
        "autoscalingPolicy": {"minReplicas": 3, "maxReplicas": 12, "cooldownPeriod": 600}}, c8)

    post = add("gpufleet:index:TrainingCluster", "posttrain-30b-gcp-usc1", _component(
        "training", "posttrain-30b", "gcp-usc1", "gcp", "a3-ultragpu-8g", "H200", 8, ["us-central1-a"], 22, 22, 10.2,
        1.1, "rdma", 8, POSTTRAIN_30B))
    labels = tags("posttrain-30b", "training", "gcp-usc1", "H200", 8)
    workload = add("gcp:compute/resourcePolicy:ResourcePolicy", "posttrain-30b-gcp-usc1-workload", {
        "name": "posttrain-30b-gcp-usc1", "region": "us-central1",
        "workloadPolicy": {"type": "HIGH_THROUGHPUT"}}, post)
    add("gcp:compute/instanceTemplate:InstanceTemplate", "posttrain-30b-gcp-usc1-template", {
        "namePrefix": "posttrain-30b-gcp-usc1-", "machineType": "a3-ultragpu-8g", "labels": labels,
        "networkInterfaces": [{"nicType": "GVNIC"}, {"nicType": "GVNIC"}] + [{"nicType": "MRDMA"}] * 8}, post)
    add("gcp:compute/instanceGroupManager:InstanceGroupManager", "posttrain-30b-gcp-usc1-mig", {
        "name": "posttrain-30b-gcp-usc1", "zone": "us-central1-a", "targetSize": 22,
        "resourcePolicies": {"workloadPolicy": UNKNOWN}, "versions": [{"instanceTemplate": UNKNOWN}]}, post,
        (workload,))  # its unknown workloadPolicy self link is the workload policy's
    return b.stack


__all__ = ["UNKNOWN", "Stack", "baseline", "tags"]
