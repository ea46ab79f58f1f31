"""Where pools run: the spec's ``platform`` and ``serving``, and what the plan makes of them."""

from __future__ import annotations

from typing import Any

import pytest

from gpufleet.errors import SpecError
from gpufleet.plan import build_plan
from gpufleet.platforms import VLLM_QUEUE_DEPTH_QUERY, ServingSpec
from gpufleet.spec import parse_fleet

EKS = {"kind": "kubernetes", "kubernetes": {"version": "1.31",
                                           "system_pool": {"instance_type": "m6i.xlarge", "nodes": 2}}}
SERVING = {"prometheus_url": "http://prometheus-operated.monitoring.svc:9090", "target_value": 5}


def on_kubernetes(fleet: dict[str, Any], platform: dict[str, Any] | None = None,
                  serving: dict[str, Any] | None = None) -> dict[str, Any]:
    fleet["sites"][0]["platform"] = platform or EKS
    fleet["inference"][0]["serving"] = serving or SERVING
    return fleet


def issues(fleet: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as exc:
        parse_fleet(fleet)
    return {i.loc: i.message for i in exc.value.issues}


def test_a_site_runs_on_vms_unless_it_says_kubernetes(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(fleet), "t")
    assert {(p.platform, p.cluster, p.min_replicas, p.max_replicas) for p in plan.pools} == {("vm", None, 0, 0)}


def test_pools_on_a_kubernetes_site_join_its_cluster_with_replica_bounds(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(on_kubernetes(fleet)), "t")
    assert {(p.platform, p.cluster) for p in plan.pools} == {("kubernetes", "gpufleet-aws-use1")}
    for pool in plan.pools_of("chat"):
        per_replica = pool.sizing["memory"]["gpus_per_replica"]
        # KEDA never asks for a replica the node pool at its maximum could not place, and the
        # maximum uses the whole pool
        assert pool.max_replicas * per_replica <= pool.nodes * pool.gpus_per_node
        assert pool.max_replicas == pool.nodes * (pool.gpus_per_node // per_replica)
        assert 1 <= pool.min_replicas <= pool.max_replicas
        assert pool.min_nodes >= 1
    (train,) = plan.pools_of("pretrain")
    assert (train.min_replicas, train.max_replicas) == (0, 0)


def test_scale_to_zero_lets_replicas_and_nodes_reach_zero(fleet: dict[str, Any]) -> None:
    plan = build_plan(parse_fleet(on_kubernetes(fleet, serving={**SERVING, "scale_to_zero": True})), "t")
    for pool in plan.pools_of("chat"):
        assert (pool.min_replicas, pool.min_nodes) == (0, 0) and pool.max_replicas > 0


def test_an_existing_cluster_keeps_its_name(fleet: dict[str, Any]) -> None:
    platform = {"kind": "kubernetes", "kubernetes": {
        "create": False, "cluster_name": "prod-gpu",
        "node_role_arn": "arn:aws:iam::123456789012:role/eks-gpu-nodes"}}
    plan = build_plan(parse_fleet(on_kubernetes(fleet, platform)), "t")
    assert {p.cluster for p in plan.pools} == {"prod-gpu"}


@pytest.mark.parametrize(("platform", "loc", "words"), [
    ({"kind": "kubernetes"}, "fleet.sites[0].platform", "needs kubernetes"),
    ({"kind": "kubernetes", "kubernetes": {}}, "fleet.sites[0].platform.kubernetes", "system_pool"),
    ({"kind": "vm", "kubernetes": {"create": False}}, "fleet.sites[0].platform", "only read with kind: kubernetes"),
    ({"kind": "kubernetes", "kubernetes": {"create": False, "cluster_name": "c"}},
     "fleet.sites[0].platform.kubernetes.node_role_arn", "needs node_role_arn"),
    ({"kind": "kubernetes", "kubernetes": {"create": False, "cluster_name": "c", "cluster_id": "x",
                                           "node_role_arn": "arn:aws:iam::123456789012:role/n"}},
     "fleet.sites[0].platform.kubernetes.cluster_id", "does not attach a cluster by cluster_id"),
    ({"kind": "kubernetes", "kubernetes": {"create": False, "version": "1.31", "cluster_name": "c"}},
     "fleet.sites[0].platform.kubernetes", "existing cluster keeps its own"),
    ({"kind": "kubernetes", "kubernetes": {"version": "v1.31", "system_pool": {"instance_type": "m6i.xlarge"}}},
     "fleet.sites[0].platform.kubernetes.version", "1\\."),
    ({"kind": "ecs"}, "fleet.sites[0].platform.kind", "kubernetes"),
])
def test_bad_platforms_name_the_field(fleet: dict[str, Any], platform: dict[str, Any], loc: str,
                                      words: str) -> None:
    found = issues(on_kubernetes(fleet, platform))
    assert loc in found, found
    assert words in found[loc]


def test_a_service_on_kubernetes_says_how_it_scales(fleet: dict[str, Any]) -> None:
    fleet = on_kubernetes(fleet)
    del fleet["inference"][0]["serving"]
    assert "how its Deployment scales" in issues(fleet)["fleet.inference[0].serving"]


def test_serving_on_vms_only_is_refused(fleet: dict[str, Any]) -> None:
    fleet["inference"][0]["serving"] = SERVING
    assert "none of the service's sites" in issues(fleet)["fleet.inference[0].serving"]


@pytest.mark.parametrize(("serving", "loc"), [
    ({**SERVING, "target_value": 0}, "target_value"),
    ({**SERVING, "target_value": float("nan")}, "target_value"),
    ({**SERVING, "prometheus_url": "prometheus:9090"}, "prometheus_url"),
    ({**SERVING, "namespace": "Serving"}, "namespace"),
    ({"target_value": 5}, "prometheus_url"),
])
def test_bad_serving_names_the_field(fleet: dict[str, Any], serving: dict[str, Any], loc: str) -> None:
    assert f"fleet.inference[0].serving.{loc}" in issues(on_kubernetes(fleet, serving=serving))


def test_the_default_query_is_vllm_queue_depth_of_the_deployment() -> None:
    serving = ServingSpec.model_validate({**SERVING, "namespace": "llm"})
    assert serving.query_for("chat") == 'sum(vllm:num_requests_waiting{namespace="llm",pod=~"chat-.*"})'
    own = ServingSpec.model_validate({**SERVING, "deployment": "vllm", "prometheus_query": "sum(x)"})
    assert own.query_for("chat") == "sum(x)" and own.deployment_for("chat") == "vllm"
    assert "{namespace}" in VLLM_QUEUE_DEPTH_QUERY


def test_an_image_override_for_a_kubernetes_pool_is_refused(fleet: dict[str, Any]) -> None:
    from gpufleet.checks import check_images

    plan = build_plan(parse_fleet(on_kubernetes(fleet)), "t")
    (issue,) = check_images(plan, {"chat": "ami-0123456789abcdef0"})
    assert issue.loc == "config.gpufleet:images.chat" and "runs on Kubernetes" in issue.message


def test_a_replica_larger_than_a_node_is_refused_on_kubernetes(fleet: dict[str, Any]) -> None:
    fleet = on_kubernetes(fleet)
    # 70B at fp8 with its KV cache needs 8 L4s: two 4-GPU nodes per replica
    fleet["inference"][0].update(gpu="L4", instance_types=["g6.12xlarge"], model={
        "params": 7e10, "layers": 80, "kv_heads": 8, "head_dim": 128, "dtype": "fp8"})
    fleet["sites"][0].update(quota_gpus={}, price_per_gpu_hour={})
    with pytest.raises(SpecError) as exc:
        build_plan(parse_fleet(fleet), "t")
    messages = [i.message for i in exc.value.issues]
    assert any("a Deployment's pod runs on one node" in m for m in messages), messages


def test_trainium_on_kubernetes_is_refused_until_neuron_node_pools_exist(fleet: dict[str, Any]) -> None:
    fleet = on_kubernetes(fleet)
    fleet["training"][0].update(gpu="trainium2", instance_types=["trn2.48xlarge"])
    fleet["sites"][0].update(quota_gpus={}, price_per_gpu_hour={})
    with pytest.raises(SpecError) as exc:
        build_plan(parse_fleet(fleet), "t")
    messages = [i.message for i in exc.value.issues]
    assert any("trainium2 (trainium) on Kubernetes" in m and "NVIDIA GPUs only" in m for m in messages), messages
    # the same run on the site's VMs plans
    fleet["sites"][0]["platform"] = {"kind": "vm"}
    del fleet["inference"][0]["serving"]
    assert build_plan(parse_fleet(fleet), "t").pools_of("pretrain")[0].accelerator_kind == "trainium"
