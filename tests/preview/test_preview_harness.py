"""The fixture stacks' real resources (the Pulumi program under mocks) through the pack's gRPC protocol,
including edits made by hand to the recorded resources, which the spec never sees."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from gpufleet.engine import PolicyEngine, StackResource, analyzed_resources, parse_policy_config
from gpufleet.offline import run_program
from tests.policies.conftest import started_engine
from tests.preview.conftest import CONFIGS, STACKS


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> PolicyEngine:
    return started_engine(request, "good")


def recorded(stack: str) -> list[StackResource]:
    """The stack's resources as the engine would send them (outputs, computed values unknown)."""
    return analyzed_resources(run_program(STACKS / stack))


@pytest.fixture(scope="module")
def good_resources() -> list[StackResource]:
    return recorded("Pulumi.good.yaml")


def edited(resources: list[StackResource], name: str, change: Any) -> list[StackResource]:
    """A copy of the resources with one resource's properties changed by ``change(props)``."""
    out = []
    for r in resources:
        if r.name == name:
            props = copy.deepcopy(r.properties)
            change(props)
            r = dataclasses.replace(r, properties=props)
        out.append(r)
    return out


def test_good_stack_has_no_violations(engine: PolicyEngine, good_resources: list[StackResource]) -> None:
    assert engine.run(good_resources).diagnostics == []


def test_properties_reach_the_pack_as_the_engine_sends_them(good_resources: list[StackResource]) -> None:
    asg = next(r for r in good_resources if r.type == "aws:autoscaling/group:Group")
    assert asg.properties["maxSize"] == 2.0  # numbers arrive as floats
    assert asg.parent and asg.parent.endswith("gpufleet:index:TrainingCluster::pretrain-8b-aws-use1")


def test_lowering_the_asg_maximum_by_hand_is_caught(engine: PolicyEngine, good_resources: list[StackResource]) -> None:
    asg = next(r for r in good_resources if r.type == "aws:autoscaling/group:Group")
    resources = edited(good_resources, asg.name, lambda p: p.update(maxSize=1.0))
    [d] = engine.run(resources).diagnostics
    assert (d.policy, d.enforcement) == ("capacity-covers-demand", "mandatory")
    assert d.message.startswith("pretrain-8b: 1 node provisioned, the 14-day deadline needs 2 (1 node, 8 H100 short)")


@pytest.mark.parametrize("stack", ["Pulumi.dev.yaml", "Pulumi.aws-training.yaml", "Pulumi.prod.yaml"])
def test_a_hand_lowered_asg_maximum_blocks_a_shipped_stack_with_computed_values_unknown(engine: PolicyEngine,
                                                                                      stack: str) -> None:
    from gpufleet.names import UNKNOWN_SENTINEL
    from tests.preview.conftest import REPO

    resources = analyzed_resources(run_program(REPO / "stacks" / stack))
    assert engine.run(resources).diagnostics == []
    asg = next(r for r in resources if r.type == "aws:autoscaling/group:Group")
    assert UNKNOWN_SENTINEL in json.dumps(asg.properties)  # its launch template and subnets are unknown
    [workload] = [t["value"] for t in asg.properties["tags"] if t["key"] == "gpufleet-workload"]
    lowered = edited(resources, asg.name, lambda p: p.update(maxSize=1.0, minSize=1.0, desiredCapacity=1.0))
    blocking = [d for d in engine.run(lowered).diagnostics if d.enforcement == "mandatory"]
    assert any(d.message.startswith(f"{workload}:") for d in blocking), blocking


def test_lowering_the_gcp_autoscaler_maximum_by_hand_is_caught(engine: PolicyEngine,
                                                               good_resources: list[StackResource]) -> None:
    name = next(r.name for r in good_resources if r.type == "gcp:compute/regionAutoscaler:RegionAutoscaler")
    resources = edited(good_resources, name, lambda p: p["autoscalingPolicy"].update(maxReplicas=6.0))
    diags = {d.policy: d for d in engine.run(resources).diagnostics}
    # 4 of the 6 nodes left after a zone loss serve 9,600 tokens/s, under the 10,800 peak with headroom
    assert set(diags) == {"capacity-covers-demand", "survives-zone-loss", "runway-covers-lead-time"}
    assert diags["runway-covers-lead-time"].message.startswith("chat-8b: runway 0 days at p90")
    assert diags["capacity-covers-demand"].message.startswith(
        "chat-8b: 6 nodes provisioned at the 90-day horizon, forecast needs 7 (1 node, 4 L4 short)")


def test_removing_efa_interfaces_by_hand_is_caught(engine: PolicyEngine, good_resources: list[StackResource]) -> None:
    lt = next(r for r in good_resources if r.type == "aws:ec2/launchTemplate:LaunchTemplate")
    resources = edited(good_resources, lt.name, lambda p: p.update(networkInterfaces=p["networkInterfaces"][:5]))
    [d] = engine.run(resources).diagnostics
    assert d.policy == "training-fabric-complete"
    assert "of the 32 EFA interfaces a p5.48xlarge has" in d.message


def test_under_provisioned_stack_through_the_protocol(engine: PolicyEngine) -> None:
    [d] = engine.run(recorded("Pulumi.under.yaml")).diagnostics
    assert (d.policy, d.enforcement) == ("capacity-covers-demand", "mandatory")
    assert "pretrain-8b: 1 node provisioned" in d.message


def test_floors_through_the_protocol(engine: PolicyEngine, good_resources: list[StackResource]) -> None:
    config = parse_policy_config(json.loads((CONFIGS / "floors-high.json").read_text()))
    [d] = engine.run(good_resources, config).diagnostics
    assert d.message.startswith("chat-8b: 12 nodes provisioned at the 90-day horizon, forecast needs 14")


def test_site_envelope_and_quota_are_read_from_the_site_network(engine: PolicyEngine,
                                                                good_resources: list[StackResource]) -> None:
    site = next(r for r in good_resources if r.type == "gpufleet:index:SiteNetwork" and r.name == "gcp-usc1")
    assert (site.properties["power_mw"], site.properties["pue"]) == (1.5, 1.1)

    def squeeze(props: dict[str, Any]) -> None:
        props.update(power_mw=0.005, quota_gpus={"L4": 16})

    diags = {d.policy: d for d in engine.run(edited(good_resources, site.name, squeeze)).diagnostics}
    assert set(diags) == {"power-within-envelope", "gpu-quota-respected"}
    assert diags["power-within-envelope"].message.startswith(
        "gcp-usc1: 10.1 kW at full scale exceeds the 0.005 MW envelope by 5.1 kW (about 7 g2-standard-48 nodes too many); "
        "pools: chat-8b-gcp-usc1 10.1 kW (12 nodes)")
    assert diags["gpu-quota-respected"].enforcement == "advisory"
    assert diags["gpu-quota-respected"].message.startswith("gcp-usc1: 48 L4 requested at full scale, the quota is 16")
