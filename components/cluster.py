"""``TrainingCluster`` and ``InferencePool``: one facade each, one implementation per cloud behind them.

A facade takes one :class:`~gpufleet.plan.PoolPlan` (sized and placed by the core) and the site's
:class:`~components.network.SiteNetwork`, records the pool's facts and its demand on itself (so a
policy pack can recompute the need from the stack alone), and lets the pool cloud's backend create
the cloud resources as its children.

Props and outputs of both components (snake_case, as the spec names things):

* flat facts: ``workload``, ``role``, ``cloud``, ``site``, ``region``, ``zones``, ``instance_type``,
  ``gpu``, ``gpus_per_node``, ``nodes``, ``min_nodes``, ``max_nodes``, ``gpus``, ``node_power_kw``,
  ``pue``, ``power_kw``, ``fabric``, ``fabric_interfaces``, ``fabric_gbps``;
* ``pool``: the whole pool (see :func:`components.base.pool_facts`);
* ``demand``: the workload's demand, keyed exactly as the spec fields.

The cloud resources stay authoritative: an ASG's ``maxSize``, a scale set's ``sku.capacity``, an
autoscaler's ``maxReplicas`` equal the component's ``max_nodes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.base import (
    InferencePoolArgs,
    TrainingClusterArgs,
    backend_for,
    pool_facts,
)
from components.k8s import base as k8s
from components.network import SiteNetwork
from gpufleet.names import TYPE_PREFIX
from gpufleet.plan import PoolPlan

FLAT_FACTS = (
    "workload", "role", "cloud", "site", "region", "zones", "instance_type", "gpu", "gpus_per_node",
    "nodes", "min_nodes", "max_nodes", "gpus", "node_power_kw", "pue", "power_kw", "fabric",
    "fabric_interfaces", "fabric_gbps",
)
"""Pool facts repeated at the top level of the component's props and outputs."""


def _props(pool: PoolPlan, demand: Mapping[str, Any]) -> dict[str, Any]:
    facts = pool_facts(pool)
    return {**{k: facts[k] for k in FLAT_FACTS}, "pool": facts, "demand": dict(demand)}


def _with_site_provider(opts: pulumi.ResourceOptions | None, network: SiteNetwork) -> pulumi.ResourceOptions:
    """Hand the component the site's provider unless the caller chose one."""
    opts = opts or pulumi.ResourceOptions()
    if opts.provider is None and not opts.providers and network.provider is not None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[network.provider]))
    return opts


class TrainingCluster(pulumi.ComponentResource):
    """A static training cluster in one zone, with its GPU fabric switched on.

    AWS: cluster placement group, EFA launch template (every EFA card the catalog lists), self-only
    security group, one-subnet autoscaling group with min = max = desired. Azure: one single-placement-
    group scale set per InfiniBand island in a proximity placement group. GCP: the machine family's NIC
    layout, a COLLOCATED placement policy and a zonal managed instance group.

    Attributes:
        pool: the pool plan it builds.
        instance_type, gpus_per_node, nodes, min_nodes, max_nodes, gpus, zones, site, node_power_kw,
            pue, fabric, fabric_interfaces: the pool's facts (plain values).
        fabric_interfaces_attached: fabric NICs per node the nodes really get.
        fabric_gbps_attached: fabric bandwidth per node those NICs carry.
        placement_ids: placement group / proximity placement group / resource policy identifiers.
        node_group_ids: the node groups (ASG names, scale-set ids, MIG self links).
    """

    placement_ids: pulumi.Output[list[str]]
    node_group_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TrainingClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        pool = args.pool
        if pool.role != "training":
            raise ValueError(f"TrainingCluster {name!r} needs a training pool, got role {pool.role!r}")
        props = _props(pool, args.demand)
        super().__init__(f"{TYPE_PREFIX}TrainingCluster", name, props, _with_site_provider(opts, args.network))
        self.pool = pool
        _set_facts(self, pool)
        build = (k8s.build_training(self, args) if pool.platform == "kubernetes"
                 else backend_for(pool.cloud).build_training(self, args))
        self.fabric_interfaces_attached: int = build.fabric_interfaces_attached
        self.fabric_gbps_attached: float = _attached_gbps(pool, build.fabric_interfaces_attached)
        self.placement_ids = pulumi.Output.all(*build.placement_ids).apply(list)
        self.node_group_ids = pulumi.Output.all(*build.node_group_ids).apply(list)
        self.register_outputs({
            **props,
            "node_count": pool.nodes,
            "fabric_kind": pool.fabric,
            "fabric_interfaces_attached": self.fabric_interfaces_attached,
            "fabric_gbps_attached": self.fabric_gbps_attached,
            "placement_ids": self.placement_ids,
            "node_group_ids": self.node_group_ids,
        })


class InferencePool(pulumi.ComponentResource):
    """An autoscaled inference pool between ``min_nodes`` and ``nodes`` across the pool's zones.

    The group scales on the service's own per-node metric (tokens/s); its current size is left to
    the autoscaler (``ignore_changes``), so ``pulumi up`` never fights it.

    Attributes:
        pool: the pool plan it builds.
        instance_type, gpus_per_node, min_nodes, max_nodes, nodes, gpus, zones, site, node_power_kw,
            pue, fabric, fabric_interfaces: the pool's facts (plain values).
        node_group_id: the autoscaled group.
        autoscaler_id: the scaling policy / autoscale setting / autoscaler.
        warm_nodes: pre-initialised stopped nodes kept beside the group.
        notes: configuration choices worth knowing (e.g. why a warm pool was left out).
    """

    node_group_id: pulumi.Output[str]
    autoscaler_id: pulumi.Output[str]

    def __init__(self, name: str, args: InferencePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        pool = args.pool
        if pool.role != "inference":
            raise ValueError(f"InferencePool {name!r} needs an inference pool, got role {pool.role!r}")
        props = _props(pool, args.demand)
        super().__init__(f"{TYPE_PREFIX}InferencePool", name, props, _with_site_provider(opts, args.network))
        self.pool = pool
        _set_facts(self, pool)
        build = (k8s.build_inference(self, args) if pool.platform == "kubernetes"
                 else backend_for(pool.cloud).build_inference(self, args))
        self.node_group_id = pulumi.Output.from_input(build.node_group_id)
        self.autoscaler_id = pulumi.Output.from_input(build.autoscaler_id)
        self.warm_nodes: int = build.warm_nodes
        self.notes: list[str] = list(build.notes)
        self.register_outputs({
            **props,
            "scaling": {
                "metric_name": pool.scaling_metric_name,
                "metric_namespace": pool.scaling_metric_namespace,
                "target_per_node": pool.scaling_target_per_node,
            },
            "warm_nodes": self.warm_nodes,
            "notes": self.notes,
            "node_group_id": self.node_group_id,
            "autoscaler_id": self.autoscaler_id,
        })


def _set_facts(component: pulumi.ComponentResource, pool: PoolPlan) -> None:
    """Plain-valued attributes for the pool facts (the props' Output attributes are replaced)."""
    facts = pool_facts(pool)
    for key in FLAT_FACTS:
        value = facts[key]
        setattr(component, key, tuple(value) if isinstance(value, list) else value)


def _attached_gbps(pool: PoolPlan, attached: int) -> float:
    if pool.fabric_interfaces <= 0 or attached <= 0:
        return 0.0
    return pool.fabric_gbps * min(attached, pool.fabric_interfaces) / pool.fabric_interfaces
