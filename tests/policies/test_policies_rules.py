"""Each rule against the compliant baseline with a single change (no Pulumi engine involved)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gpufleet.policy.config import BY_NAME
from gpufleet.policy.pack import run_rule
from gpufleet.policy.rules import RULES, RuleResult
from tests.policies.policy_baseline import UNKNOWN, Stack, baseline


def run(stack: Stack, policy: str, config: dict[str, Any] | None = None) -> RuleResult:
    return run_rule(BY_NAME[policy], RULES[policy], stack.policy_resources(), config or {})


def messages(stack: Stack, policy: str, config: dict[str, Any] | None = None) -> list[str]:
    result = run(stack, policy, config)
    assert not result.unknown, result.unknown
    return [f.message for f in result.findings]


@pytest.mark.parametrize("policy", sorted(RULES))
def test_baseline_passes_every_rule(stack: Stack, policy: str) -> None:
    result = run(stack, policy)
    assert result.findings == [] and result.unknown == []


# --- capacity-covers-demand ------------------------------------------------------------------------


def test_capacity_catches_an_autoscaler_maximum_lowered_by_hand(stack: Stack) -> None:
    # The component still says 18; only the ASG was edited. The forecast needs 11 nodes.
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 8
    [msg] = messages(stack, "capacity-covers-demand")
    assert msg.startswith("chat-70b: 8 nodes provisioned at the 90-day horizon, forecast needs 11 "
                          "(3 nodes, 24 H100 short)")
    assert "declared by the stack (chat-70b-aws-use1)" in msg


def test_capacity_reads_the_gcp_autoscaler_not_the_component(stack: Stack) -> None:
    stack.props("chat-8b-gcp-usc1-autoscaler")["autoscalingPolicy"]["maxReplicas"] = 6
    [msg] = messages(stack, "capacity-covers-demand")
    assert msg.startswith("chat-8b: 6 nodes provisioned at the 90-day horizon, forecast needs 7 (1 node, 4 L4 short)")


def test_capacity_reads_the_azure_scale_set_size(stack: Stack) -> None:
    stack.props("finetune-8b-azure-eastus-island-0")["sku"]["capacity"] = 1
    [msg] = messages(stack, "capacity-covers-demand")
    assert msg.startswith("finetune-8b: 1 node provisioned, the 14-day deadline needs 2 (1 node, 8 H100 short); "
                          "at 1 node the run takes 26.3 days")


def test_capacity_training_counts_the_smaller_of_desired_and_maximum(stack: Stack) -> None:
    stack.props("pretrain-70b-aws-use1-asg")["maxSize"] = 40
    [msg] = messages(stack, "capacity-covers-demand")
    assert msg.startswith("pretrain-70b: 40 nodes provisioned, the 30-day deadline needs 52 (12 nodes, 96 H100 short)")


def test_capacity_floor_above_the_declared_demand_binds(stack: Stack) -> None:
    floors = {"chat-70b": {"peak_tokens_per_s": 80000}}
    [msg] = messages(stack, "capacity-covers-demand", {"floors": floors})
    assert msg.startswith("chat-70b: 18 nodes provisioned at the 90-day horizon, forecast needs 22 (4 nodes, 32 H100 short)")
    assert "demand policy config floor" in msg


def test_capacity_floor_below_the_declared_demand_does_not_excuse_it(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 8
    floors = {"chat-70b": {"peak_tokens_per_s": 1000}}
    [msg] = messages(stack, "capacity-covers-demand", {"floors": floors})
    assert "forecast needs 11" in msg and "declared by the stack" in msg


def test_capacity_training_floor(stack: Stack) -> None:
    floors = {"pretrain-70b": {"deadline_days": 20}}
    [msg] = messages(stack, "capacity-covers-demand", {"floors": floors})
    assert msg.startswith("pretrain-70b: 52 nodes provisioned, the 20-day deadline needs 77 (25 nodes, 200 H100 short)")


def test_capacity_floor_for_a_workload_the_stack_lacks(stack: Stack) -> None:
    floors = {"chat-405b": {"peak_tokens_per_s": 1000}}
    [msg] = messages(stack, "capacity-covers-demand", {"floors": floors})
    assert msg.startswith("chat-405b: the policy config sets a demand floor, but the stack provisions no capacity")


def test_capacity_floor_of_the_wrong_role_is_reported(stack: Stack) -> None:
    floors = {"chat-70b": {"deadline_days": 3}}
    [msg] = messages(stack, "capacity-covers-demand", {"floors": floors})
    assert "deadline_days, which a inference workload does not have" in msg


def test_capacity_without_any_demand_fails_closed(stack: Stack) -> None:
    del stack.props("chat-70b-aws-use1")["demand"]
    [msg] = messages(stack, "capacity-covers-demand")
    assert msg.startswith("chat-70b: no demand to check capacity against")


def test_capacity_with_incomplete_demand_names_the_missing_fields(stack: Stack) -> None:
    del stack.props("chat-70b-aws-use1")["demand"]["peak_tokens_per_s"]
    [msg] = messages(stack, "capacity-covers-demand")
    assert "lacks peak_tokens_per_s" in msg


def test_capacity_unknown_maximum_is_reported_as_unknown_not_passed(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = UNKNOWN
    result = run(stack, "capacity-covers-demand")
    assert result.findings == []
    assert result.unknown == ["chat-70b-aws-use1-asg: cannot verify the node maximum because it is unknown until apply"]


def test_capacity_group_tagged_without_component_still_counts(stack: Stack) -> None:
    # Node groups found by their gpufleet-pool tag alone (no parent component) are still capacity.
    asg = stack.named("chat-70b-aws-use1-asg")
    asg["parent"] = None
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 20
    assert messages(stack, "capacity-covers-demand") == []


# --- survives-zone-loss ----------------------------------------------------------------------------


def test_zone_loss_catches_a_pool_squeezed_into_two_zones(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["availabilityZones"] = ["us-east-1a", "us-east-1b"]
    [msg] = messages(stack, "survives-zone-loss")
    assert msg == ("chat-70b: losing 1 of 2 zones (aws-use1/us-east-1a with 9) leaves 9 nodes, the forecast peak "
                   "needs 11 (2 nodes, 16 H100 short)")


def test_zone_loss_catches_a_maximum_that_only_covers_the_peak_with_every_zone_up(stack: Stack) -> None:
    stack.props("chat-8b-gcp-usc1-autoscaler")["autoscalingPolicy"]["maxReplicas"] = 8
    assert messages(stack, "capacity-covers-demand") == []
    [msg] = messages(stack, "survives-zone-loss")
    assert msg.startswith("chat-8b: losing 1 of 3 zones (gcp-usc1/us-central1-a with 3) leaves 5 nodes")


def test_zone_loss_declared_site_losses(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"]["survive_site_losses"] = 1
    [msg] = messages(stack, "survives-zone-loss")
    assert msg.startswith("chat-70b: losing 1 of 1 site (failure domain us-east with 18) leaves 0 nodes")


def test_zone_loss_floor_can_demand_more_losses(stack: Stack) -> None:
    [msg] = messages(stack, "survives-zone-loss", {"floors": {"chat-8b": {"survive_zone_losses": 2}}})
    assert msg.startswith("chat-8b: losing 2 of 3 zones")


# --- warm-capacity-covers-boot-time ----------------------------------------------------------------


def test_warm_capacity_catches_a_minimum_of_one(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["minSize"] = 1
    [msg] = messages(stack, "warm-capacity-covers-boot-time")
    assert msg.startswith("chat-70b: the autoscalers keep 1 node running; demand can rise 8,630 tokens/s "
                          "(2% of peak per minute) during a 10-minute boot, which needs 2 running (1 node, 8 H100 short)")


def test_warm_capacity_longer_boot_needs_more(stack: Stack) -> None:
    stack.props("chat-8b-gcp-usc1")["demand"]["boot_minutes"] = 60
    stack.props("chat-8b-gcp-usc1-autoscaler")["autoscalingPolicy"]["minReplicas"] = 1
    [msg] = messages(stack, "warm-capacity-covers-boot-time")
    assert "rise 9,709 tokens/s (2% of peak per minute) during a 60-minute boot, which needs 5 running" in msg


def test_warm_capacity_default_boot_minutes_from_config(stack: Stack) -> None:
    del stack.props("chat-70b-aws-use1")["demand"]["boot_minutes"]
    stack.props("chat-70b-aws-use1-asg")["minSize"] = 2
    assert messages(stack, "warm-capacity-covers-boot-time") == []
    [msg] = messages(stack, "warm-capacity-covers-boot-time", {"default_boot_minutes": 30})
    assert "30-minute boot" in msg


# --- training-fabric-complete ----------------------------------------------------------------------


def test_fabric_catches_missing_efa_interfaces(stack: Stack) -> None:
    lt = stack.props("pretrain-70b-aws-use1-lt")
    lt["networkInterfaces"] = lt["networkInterfaces"][:17]  # ENA + 16 EFA
    [msg] = messages(stack, "training-fabric-complete")
    assert msg == ("pretrain-70b-aws-use1: 52-node p5.48xlarge training cluster is missing fabric: launch template "
                   "pretrain-70b-aws-use1-lt attaches 16 of the 32 EFA interfaces a p5.48xlarge has (16 missing)")


def test_fabric_catches_a_spread_placement_group(stack: Stack) -> None:
    stack.props("pretrain-70b-aws-use1-pg")["strategy"] = "spread"
    [msg] = messages(stack, "training-fabric-complete")
    assert "is not a cluster placement group (pretrain-70b-aws-use1-pg: 'spread')" in msg


def test_fabric_catches_no_placement_group(stack: Stack) -> None:
    del stack.props("pretrain-70b-aws-use1-asg")["placementGroup"]
    del stack.props("pretrain-70b-aws-use1-lt")["placement"]
    [msg] = messages(stack, "training-fabric-complete")
    assert "launches into no cluster placement group" in msg


def test_fabric_capacity_block_needs_no_placement_group(stack: Stack) -> None:
    del stack.props("pretrain-70b-aws-use1-asg")["placementGroup"]
    lt = stack.props("pretrain-70b-aws-use1-lt")
    del lt["placement"]
    lt["instanceMarketOptions"] = {"marketType": "capacity-block"}
    assert messages(stack, "training-fabric-complete") == []


def test_fabric_catches_a_cluster_spread_over_zones(stack: Stack) -> None:
    stack.props("pretrain-70b-aws-use1-asg")["availabilityZones"] = ["us-east-1a", "us-east-1b"]
    [msg] = messages(stack, "training-fabric-complete")
    assert "it spans zones us-east-1a, us-east-1b (a fabric does not cross zones)" in msg


def test_fabric_catches_an_azure_scale_set_without_single_placement_group(stack: Stack) -> None:
    stack.props("finetune-8b-azure-eastus-island-0")["singlePlacementGroup"] = False
    [msg] = messages(stack, "training-fabric-complete")
    assert "scale set finetune-8b-azure-eastus-island-0 is not a single placement group" in msg


def test_fabric_catches_missing_mrdma_nics(stack: Stack) -> None:
    tmpl = stack.props("posttrain-30b-gcp-usc1-template")
    tmpl["networkInterfaces"] = tmpl["networkInterfaces"][:6]
    [msg] = messages(stack, "training-fabric-complete")
    assert "attaches 4 of the 8 MRDMA NICs a a3-ultragpu-8g has (4 missing)" in msg


def test_fabric_catches_a_missing_compact_policy(stack: Stack) -> None:
    s = Stack(stack.without("posttrain-30b-gcp-usc1-workload"))
    result = run(s, "training-fabric-complete")
    [finding] = result.findings
    assert ("node group posttrain-30b-gcp-usc1-mig has no HIGH_THROUGHPUT workload policy and consumes no "
            "specific reservation, so nothing places its VMs close together") in finding.message
    # its workloadPolicy self link is unknown and names no policy of the stack
    assert result.unknown == ["posttrain-30b-gcp-usc1-mig: cannot verify resourcePolicies.workloadPolicy because "
                              "it is unknown until apply"]


def test_fabric_single_node_cluster_is_exempt(stack: Stack) -> None:
    stack.props("finetune-8b-azure-eastus-island-0")["sku"]["capacity"] = 1
    stack.props("finetune-8b-azure-eastus-island-0")["singlePlacementGroup"] = False
    assert messages(stack, "training-fabric-complete") == []
    assert messages(stack, "training-fabric-complete", {"min_nodes": 1}) != []


# --- power-within-envelope -------------------------------------------------------------------------


def test_power_catches_a_site_over_its_envelope(stack: Stack) -> None:
    stack.props("aws-use1")["power_mw"] = 0.8
    [msg] = messages(stack, "power-within-envelope")
    assert msg.startswith("aws-use1: 0.86 MW at full scale exceeds the 0.8 MW envelope by 56.8 kW "
                          "(about 5 p5.48xlarge nodes too many); pools: chat-70b-aws-use1 0.22 MW (18 nodes)")


def test_power_reads_the_autoscaler_maximum(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1-asg")["maxSize"] = 120
    [msg] = messages(stack, "power-within-envelope")
    assert msg.startswith("aws-use1: 2.11 MW at full scale exceeds the 2 MW envelope by 0.11 MW "
                          "(about 9 p5.48xlarge nodes too many); pools: chat-70b-aws-use1 1.47 MW (120 nodes)")


def test_power_utilization_cap_from_config(stack: Stack) -> None:
    [msg] = messages(stack, "power-within-envelope", {"max_utilization": 0.4})
    assert msg.startswith("aws-use1: 0.86 MW at full scale exceeds the 2 MW envelope at 40% by 56.8 kW")


def test_power_without_a_declared_envelope_fails_closed(stack: Stack) -> None:
    del stack.props("gcp-usc1")["power_mw"]
    [msg] = messages(stack, "power-within-envelope")
    assert msg.startswith("gcp-usc1: 0.26 MW of GPU nodes at full scale, but the stack declares no power envelope")


# --- model-fits-memory -----------------------------------------------------------------------------


def test_memory_catches_too_few_gpus_per_replica(stack: Stack) -> None:
    stack.props("chat-70b-aws-use1")["demand"]["gpus_per_replica"] = 2
    [msg] = messages(stack, "model-fits-memory")
    assert msg.startswith("chat-70b-aws-use1: 2 × H100 per replica hold 155 GB usable; weights 140 GB + KV cache "
                          "43 GB need 183 GB (28 GB short; 4 GPUs per replica fit)")


def test_memory_floor_with_longer_context(stack: Stack) -> None:
    [msg] = messages(stack, "model-fits-memory", {"floors": {"chat-8b": {"context_tokens": 32768}}})
    assert msg.startswith("chat-8b-gcp-usc1: 4 × L4 per replica hold 86 GB usable")
    assert "demand policy config floor" in msg


def test_memory_unfittable_model_says_so(stack: Stack) -> None:
    stack.props("chat-8b-gcp-usc1")["demand"]["model"]["params"] = 4e12
    [msg] = messages(stack, "model-fits-memory")
    assert "no replica of up to" in msg


# --- gpu-quota-respected ---------------------------------------------------------------------------


def test_quota_catches_requests_over_the_declared_quota(stack: Stack) -> None:
    stack.props("gcp-usc1")["quota_gpus"]["H200"] = 100
    [msg] = messages(stack, "gpu-quota-respected")
    assert msg == ("gcp-usc1: 176 H200 requested at full scale, the quota is 100 (76 H200 over); pools: "
                   "posttrain-30b-gcp-usc1")


def test_quota_override_from_config(stack: Stack) -> None:
    [msg] = messages(stack, "gpu-quota-respected", {"quota_gpus": {"aws-use1": {"H100": 500}}})
    assert msg.startswith("aws-use1: 560 H100 requested at full scale, the quota is 500")


def test_quota_missing_model_is_reported(stack: Stack) -> None:
    del stack.props("gcp-usc1")["quota_gpus"]["L4"]
    [msg] = messages(stack, "gpu-quota-respected")
    assert msg.startswith("gcp-usc1: 48 L4 requested, but the site declares no L4 quota")


def test_quota_for_a_site_the_stack_lacks_is_a_violation(stack: Stack) -> None:
    # A renamed site in the capacity owners' config must not leave the real site unchecked silently.
    [msg] = messages(stack, "gpu-quota-respected", {"quota_gpus": {"aws-use2": {"H100": 500}}})
    assert msg.startswith("aws-use2: the policy config sets a GPU quota, but the stack has no such site")


# --- config validation inside the pack -------------------------------------------------------------


def test_invalid_config_raises_before_the_rule_runs(stack: Stack) -> None:
    with pytest.raises(ValueError, match=re.escape("floors.chat-70b.peak_tokens_per_s: must be greater than 0")):
        run(stack, "capacity-covers-demand", {"floors": {"chat-70b": {"peak_tokens_per_s": -1}}})
    with pytest.raises(ValueError, match="floor: unknown property"):
        run(stack, "capacity-covers-demand", {"floor": {}})


def test_baseline_resources_are_untouched_by_the_rules() -> None:
    a, b = baseline(), baseline()
    for policy in RULES:
        run(a, policy)
    assert a == b
