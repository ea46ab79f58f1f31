"""Pools on a Kubernetes site and a runner building them under Pulumi's mocks, for the GKE and AKS tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi

from components import InferencePool, InferencePoolArgs, SiteNetwork, SiteNetworkArgs, TrainingCluster
from components import TrainingClusterArgs, backend_for
from gpufleet.offline import OfflineRun, run_function
from gpufleet.plan import PoolPlan
from gpufleet.platforms import ServingSpec
from gpufleet.spec import SiteSpec
from tests.clouds.builders import make_pool, make_site
from tests.components.conftest import SSH_KEY

SERVING = ServingSpec.model_validate({"prometheus_url": "http://prom.monitoring.svc:9090", "target_value": 4})


def k8s_pool(cloud: str, role: str = "training", **overrides: Any) -> PoolPlan:
    """A hand-built pool of ``cloud`` joining the site's cluster (replica bounds for a service)."""
    pool = make_pool(cloud, role, **overrides)
    return dataclasses.replace(pool, platform="kubernetes", cluster=f"gpufleet-{cloud}-test",
                               min_replicas=pool.min_nodes if role == "inference" else 0,
                               max_replicas=pool.nodes if role == "inference" else 0)


def deploy_k8s(cloud: str, pools: list[PoolPlan], platform: dict[str, Any], site: SiteSpec | None = None) -> OfflineRun:
    """The site network (and its cluster) and one component per pool, as ``__main__.py`` builds them
    (on ``site``, else a test site of ``cloud`` on ``platform``)."""
    site = site or make_site(cloud, platform=platform)

    def program() -> None:
        network = SiteNetwork(site.name, SiteNetworkArgs(site=site, pools=tuple(pools)),
                              opts=pulumi.ResourceOptions(providers=[backend_for(cloud).provider(site)]))
        for pool in pools:
            common: dict[str, Any] = dict(pool=pool, network=network, demand={"workload": pool.workload},
                                          ssh_public_key=SSH_KEY)
            if pool.role == "training":
                TrainingCluster(pool.name, TrainingClusterArgs(**common))
            else:
                InferencePool(pool.name, InferencePoolArgs(**common, serving=SERVING))

    return run_function(program, stack="unit")
