"""Pulumi components that build a gpufleet plan: one facade per capability, one backend per cloud.

Facades (type tokens ``gpufleet:index:<Class>``):

* :class:`SiteNetwork` — a site's network, shared by its pools;
* :class:`TrainingCluster` — a static training cluster in one zone, fabric switched on;
* :class:`InferencePool` — an autoscaled inference pool across zones.

Backends (:mod:`components.aws`, :mod:`components.azure`, :mod:`components.gcp`) register themselves
with :func:`register`; :func:`backend_for` picks one by cloud name, importing its module the first
time it is asked for (a stack loads only the provider SDKs of the clouds it uses), and
:mod:`components.k8s` does the same for the Kubernetes backends (:mod:`components.k8s.base`: pools
on sites with ``platform.kind: kubernetes``). What each cloud offers and refuses is its profile in :mod:`gpufleet.clouds`; the checks
that refuse a plan before anything is built are :mod:`gpufleet.checks` (re-exported here as
:func:`check_plan` / :func:`validate_plan`, the program's checks).
"""

from components.base import CloudBackend, ClusterBuild, InferencePoolArgs, NetworkBuild, PoolBuild
from components.base import SiteNetworkArgs, TrainingClusterArgs, backend_for, pool_facts, register, registered
from components.cluster import InferencePool, TrainingCluster
from components.network import SiteNetwork
from components.program import demand_for, plan_summary, serving_for
from gpufleet.checks import check_plan, validate_plan
from gpufleet.names import TYPE_PREFIX

__all__ = [
    "TYPE_PREFIX",
    "CloudBackend",
    "ClusterBuild",
    "InferencePool",
    "InferencePoolArgs",
    "NetworkBuild",
    "PoolBuild",
    "SiteNetwork",
    "SiteNetworkArgs",
    "TrainingCluster",
    "TrainingClusterArgs",
    "backend_for",
    "check_plan",
    "demand_for",
    "plan_summary",
    "pool_facts",
    "register",
    "registered",
    "serving_for",
    "validate_plan",
]
