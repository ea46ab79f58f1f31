"""In-cluster objects every cloud shares: the Kubernetes provider of a cluster and the KEDA
``ScaledObject`` that scales an inference service's Deployment.

The ScaledObject (``keda.sh/v1alpha1``, https://keda.sh/docs/latest/reference/scaledobject-spec/)
targets the service's Deployment with one Prometheus trigger
(https://keda.sh/docs/latest/scalers/prometheus/): ``serverAddress`` the spec's ``prometheus_url``,
``query`` its PromQL (default: vLLM's queue depth), ``threshold`` its ``target_value`` per replica.
``minReplicaCount`` / ``maxReplicaCount`` are the plan's (``PoolPlan.min_replicas`` /
``max_replicas``): KEDA's own default minimum is 0, so the minimum is always written, and it is 0
only when the service declares ``scale_to_zero`` (then ``activationThreshold`` 0: any waiting request
wakes it). The node pool's autoscaler bounds were sized by the plan to hold ``max_replicas``
replicas; nothing here sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from gpufleet.names import TAG_POOL
from gpufleet.plan import PoolPlan
from gpufleet.platforms import ServingSpec

if TYPE_CHECKING:
    from components.k8s.base import KubeCluster

KEDA_API_VERSION = "keda.sh/v1alpha1"
SCALED_OBJECT = "ScaledObject"
POLLING_INTERVAL_S = 15
"""How often KEDA runs the query (its default, 30 s, halved: a queue builds up in seconds)."""
COOLDOWN_S = 300
"""Seconds after the last active trigger before KEDA scales to zero (KEDA's default)."""


def kubernetes_provider(owner: pulumi.Resource, name: str, kubeconfig: pulumi.Input[str]) -> k8s.Provider:
    """The Kubernetes provider of a cluster, from its kubeconfig; in-cluster objects use it."""
    return k8s.Provider(name, kubeconfig=kubeconfig, enable_server_side_apply=True,
                        opts=pulumi.ResourceOptions(parent=owner))


def scaled_object_spec(pool: PoolPlan, serving: ServingSpec) -> dict[str, Any]:
    """The ScaledObject's ``spec`` for a pool's Deployment (plain data; tested without Pulumi)."""
    trigger: dict[str, str] = {
        "serverAddress": serving.prometheus_url,
        "query": serving.query_for(pool.workload),
        "threshold": f"{serving.target_value:g}",
    }
    if serving.scale_to_zero:
        trigger["activationThreshold"] = "0"
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                           "name": serving.deployment_for(pool.workload)},
        "minReplicaCount": pool.min_replicas,
        "maxReplicaCount": pool.max_replicas,
        "pollingInterval": POLLING_INTERVAL_S,
        "cooldownPeriod": COOLDOWN_S,
        "triggers": [{"type": "prometheus", "metadata": trigger}],
    }


def scaled_object(owner: pulumi.Resource, pool: PoolPlan, serving: ServingSpec,
                  cluster: KubeCluster) -> k8s.apiextensions.CustomResource:
    """The KEDA ScaledObject of the pool's Deployment, in the cluster through its provider."""
    name = f"{owner.pulumi_resource_name}-scaler"
    return k8s.apiextensions.CustomResource(
        name,
        api_version=KEDA_API_VERSION,
        kind=SCALED_OBJECT,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=pool.name, namespace=serving.namespace,
                                             labels={**pool.tags, TAG_POOL: pool.name}),
        spec=scaled_object_spec(pool, serving),
        opts=pulumi.ResourceOptions(parent=owner, provider=cluster.provider),
    )
