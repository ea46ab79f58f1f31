"""Hand-built pools and sites, and a runner that builds components from them under Pulumi's mocks.

The components never size anything, so their tests build :class:`PoolPlan` objects directly
(:mod:`tests.clouds.builders`), without the planner: what a test asserts is exactly what it put in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pytest

from components import InferencePool, InferencePoolArgs, SiteNetwork, SiteNetworkArgs, TrainingCluster
from components import TrainingClusterArgs, backend_for
from gpufleet.offline import OfflineRun, run_function
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec
from tests.clouds.conftest import pool_of, site_of  # noqa: F401  (fixtures the component tests use)

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Qta2V5LWZvci11bml0LXRlc3Rz unit@test"


def deploy(site: SiteSpec, pools: Sequence[PoolPlan], *, images: Mapping[str, str] | None = None,
           ssh_public_key: str | None = SSH_KEY, check: bool = True) -> OfflineRun:
    """Build a site network and one component per pool, as ``__main__.py`` does, under mocks."""
    images = dict(images or {})

    def program() -> None:
        provider = backend_for(site.cloud).provider(site)
        network = SiteNetwork(site.name, SiteNetworkArgs(site=site, pools=tuple(pools)),
                              opts=pulumi.ResourceOptions(providers=[provider]))
        for pool in pools:
            common: dict[str, Any] = dict(pool=pool, network=network, demand={"workload": pool.workload},
                                          image=images.get(pool.name), ssh_public_key=ssh_public_key)
            if pool.role == "training":
                TrainingCluster(pool.name, TrainingClusterArgs(**common))
            else:
                InferencePool(pool.name, InferencePoolArgs(**common))

    return run_function(program, stack="unit", check=check)


@pytest.fixture
def build() -> Callable[..., OfflineRun]:
    return deploy
