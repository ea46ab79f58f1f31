"""The Kubernetes seam: a site with ``platform.kind: kubernetes`` gets its cluster from the cloud's
Kubernetes backend, and the facades build node pools (and a KEDA ScaledObject) through it instead of
the VM backend. A recording backend stands in for a cloud's, so the seam is tested on its own."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from components.k8s import base as k8s_base
from components.k8s.base import KubeCluster, KubeClusterArgs, KubernetesBackend, NodePoolBuild
from tests.clouds.builders import make_pool
from tests.components.test_eks import SERVING, run



class Recording(KubernetesBackend):
    """Builds nothing in the cloud; records what the seam asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def cluster(self, owner: Any, args: KubeClusterArgs) -> KubeCluster:
        self.calls.append(("cluster", args))
        return KubeCluster(name=args.name, id=f"{args.name}-id", kubeconfig="apiVersion: v1", created=True)

    def node_pool(self, owner: Any, args: Any, cluster: KubeCluster) -> NodePoolBuild:
        self.calls.append(("node_pool", args.pool.name))
        return NodePoolBuild(node_pool_ids=[f"{args.pool.name}-np"], fabric_interfaces_attached=7)

    def addons(self, owner: Any, args: KubeClusterArgs, cluster: KubeCluster) -> None:
        self.calls.append(("addons", cluster.provider is not None))


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Recording:
    backend = Recording()
    monkeypatch.setitem(k8s_base._REGISTRY, "aws", backend)
    return backend


def k8s_pool(role: str, **overrides: Any) -> Any:
    pool = make_pool("aws", role, **overrides)
    return dataclasses.replace(pool, platform="kubernetes", cluster="gpufleet-aws-test",
                               min_replicas=3 if role == "inference" else 0,
                               max_replicas=36 if role == "inference" else 0)


def test_node_pools_come_from_the_kubernetes_backend_not_vm_groups(recording: Recording) -> None:
    train, serve = k8s_pool("training"), k8s_pool("inference")
    result = run([train, serve])
    kinds = [c[0] for c in recording.calls]
    assert kinds == ["cluster", "addons", "node_pool", "node_pool"]
    assert recording.calls[1] == ("addons", True)  # the provider exists before the add-ons
    (cluster_args,) = [c[1] for c in recording.calls if c[0] == "cluster"]
    assert cluster_args.name == "gpufleet-aws-test" and cluster_args.network.subnet_ids
    assert not result.of_type("aws:autoscaling/group:Group")  # no VM groups on Kubernetes
    (trainer,) = result.of_type("gpufleet:index:TrainingCluster")
    assert trainer.outputs is not None and trainer.outputs["node_group_ids"] == [f"{train.name}-np"]
    assert trainer.outputs["fabric_interfaces_attached"] == 7


def test_a_service_gets_a_keda_scaled_object_with_the_plans_bounds(recording: Recording) -> None:
    serve = k8s_pool("inference")
    result = run([serve])
    (scaler,) = result.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    spec = scaler.inputs["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 36)
    assert spec["scaleTargetRef"]["name"] == serve.workload
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "4"
    assert trigger["metadata"]["query"] == SERVING.query_for(serve.workload)
    assert scaler.inputs["metadata"]["namespace"] == "llm"
    (provider,) = result.of_type("pulumi:providers:kubernetes")
    assert scaler.provider is not None and scaler.provider.startswith(provider.urn)
    (pool,) = result.of_type("gpufleet:index:InferencePool")
    assert pool.inputs["pool"]["max_replicas"] == 36 and pool.inputs["pool"]["platform"] == "kubernetes"


def test_a_cloud_without_a_kubernetes_backend_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    k8s_base.k8s_backend_for("aws")  # its module loaded (and registered) once, so removing it sticks
    monkeypatch.delitem(k8s_base._REGISTRY, "aws", raising=False)
    with pytest.raises(KeyError, match="no gpufleet Kubernetes backend for cloud 'aws'"):
        k8s_base.k8s_backend_for("aws")
