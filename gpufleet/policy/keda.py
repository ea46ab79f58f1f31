"""``replicas-fit-node-pools``: on Kubernetes, the replicas KEDA may run fit the node pools, and carry
the forecast.

Pure (no Pulumi). A service on Kubernetes has two maxima: its node pools' (read by each cloud's reader
like any node group: EKS ``scalingConfig.maxSize``, GKE autoscaling, AKS ``maxCount``) and the KEDA
``ScaledObject``'s ``spec.maxReplicaCount`` (``kubernetes:keda.sh/v1alpha1:ScaledObject``, read
here, in any cloud's cluster). The chain the plan builds is checked link by link:

* the replicas KEDA may run fit what the node pools hold at their maximum (a replica is one pod on
  one node: ``gpus_per_node // gpus_per_replica`` replicas a node); a KEDA maximum above it leaves
  pods pending;
* those replicas carry the forecast: KEDA's maximum is at least the replicas the service's demand
  needs at the horizon with headroom (:mod:`gpufleet.sizing`, as ``capacity-covers-demand`` sizes
  nodes). A KEDA maximum lowered by hand below it blocks, like a lowered node-pool maximum.

Node pools within quota and power, and covering the forecast, are the other policies' work: they read
node pools as node groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpufleet.policy.resources import Inventory, Pool, Resource, as_int, pick, unknown_at
from gpufleet.policy.rules import RuleResult, has_unknown, inference_needs, row_for, workloads_of

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
"""The type token of a KEDA ScaledObject built with ``pulumi_kubernetes.apiextensions.CustomResource``."""


@dataclass(frozen=True)
class Scaler:
    """A ScaledObject of a pool: its replica bounds (None: missing or unknown)."""

    resource: Resource
    min_replicas: int | None
    max_replicas: int | None


def scalers(pool: Pool) -> list[Scaler]:
    """The pool's ScaledObjects; a maximum unknown during a preview goes to ``pool.unknown``."""
    out = []
    for r in pool.of_type(SCALED_OBJECT):
        unknown_at(pool.unknown, r, "spec.maxReplicaCount")
        spec = pick(r.props, "spec") or {}
        out.append(Scaler(r, as_int(pick(spec, "minReplicaCount")), as_int(pick(spec, "maxReplicaCount"))))
    return out


def declares_scale_to_zero(pool: Pool) -> bool:
    """The pool's component declares a Kubernetes service that scales to zero (the plan's
    ``min_replicas`` 0 on Kubernetes): its owner accepted cold starts, so no warm capacity is owed."""
    facts = pick(pool.component.props, "pool") if pool.component is not None else None
    return (isinstance(facts, Mapping) and pick(facts, "platform") == "kubernetes"
            and pick(facts, "role") == "inference" and as_int(pick(facts, "min_replicas")) == 0)


def replicas_held(pool: Pool, gpus_per_replica: int) -> int | None:
    """Replicas the pool's node pools hold at their maximum (None when a maximum or the GPUs per node
    are unknown)."""
    if pool.max_nodes is None or not pool.gpus_per_node:
        return None
    return pool.max_nodes * (pool.gpus_per_node // gpus_per_replica)


def check_replicas_fit_node_pools(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """KEDA's maximum fits the node pools at their maximum and carries the forecast demand."""
    result = RuleResult()
    floors = config.get("floors") or {}
    for workload, _role, pools in workloads_of(inv, floors, "inference"):
        found = {p.name: scalers(p) for p in pools}
        scaled = [p for p in pools if found[p.name]]
        if not scaled or has_unknown(scaled, result):
            continue
        row = row_for(scaled, result, "its replicas")
        if row is None:
            continue
        per_replica = as_int(pick(scaled[0].demand, "gpus_per_replica"))
        if not per_replica:
            result.add(f"{workload}: its pools declare no gpus_per_replica, so KEDA's replicas cannot be checked "
                       "against its node pools", scaled[0].urn, workload)
            continue
        total = 0
        for pool in scaled:
            total += _check_pool(workload, pool, found[pool.name], per_replica, result)
        needs = inference_needs(workload, pools, row, floors, result)
        if not needs:
            continue
        need = max(needs, key=lambda n: n.sizing.replicas)
        if total < need.sizing.replicas:
            s = need.sizing
            result.add(
                f"{workload}: KEDA may run at most {total:,} replicas, the forecast needs {s.replicas:,} "
                f"({s.replicas - total:,} short): {s.demand_at_horizon_tokens_per_s:,.0f} tokens/s at the "
                f"horizon with {need.demand.get('headroom'):.0%} headroom, "
                f"{need.demand.get('tokens_per_s_per_replica'):,.0f} tokens/s per replica; scalers: "
                + ", ".join(f"{sc.resource.name} max {sc.max_replicas}" for p in scaled for sc in found[p.name]),
                scaled[0].urn, workload)
    return result


def _check_pool(workload: str, pool: Pool, found: list[Scaler], per_replica: int, result: RuleResult) -> int:
    """Report a scaler whose maximum is missing or exceeds what the pool's node pools hold; returns the
    pool's KEDA maximum (0 for one that is missing)."""
    total = 0
    held = replicas_held(pool, per_replica)
    for s in found:
        if s.max_replicas is None:
            result.add(f"{workload}: ScaledObject {s.resource.name} sets no spec.maxReplicaCount; KEDA's "
                       "default (100) is not sized to the node pools", s.resource.urn, workload)
            continue
        total += s.max_replicas
        if s.min_replicas is not None and s.min_replicas > s.max_replicas:
            result.add(f"{workload}: ScaledObject {s.resource.name} has minReplicaCount {s.min_replicas} above "
                       f"maxReplicaCount {s.max_replicas}", s.resource.urn, workload)
    if held is not None and total > held:
        per_node = (pool.gpus_per_node or 0) // per_replica
        result.add(
            f"{workload}: KEDA may run {total:,} replicas in pool {pool.name}, its node pools hold {held:,} at "
            f"their maximum ({pool.max_nodes:,} nodes × {per_node} replicas of {per_replica} GPUs per "
            f"{pool.gpus_per_node}-GPU node): {total - held:,} replicas would stay pending",
            pool.urn, workload)
    return total
