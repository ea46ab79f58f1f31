"""What the Pulumi program needs besides the components: demand objects and the plan summary.

Pure (no resources). ``__main__.py`` calls these; tests call them directly.

The ``demand`` objects are the spec's own demand models dumped (same names), so a policy pack
reading the stack can recompute what a workload needs with :mod:`gpufleet.sizing` without the
stack file.
"""

from __future__ import annotations

from typing import Any

from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.platforms import ServingSpec
from gpufleet.spec import FleetSpec, InferenceSpec, TrainingSpec


_index: list[tuple[FleetSpec, dict[str, TrainingSpec | InferenceSpec]]] = []


def _workloads(spec: FleetSpec) -> dict[str, TrainingSpec | InferenceSpec]:
    """The spec's workloads by name, built once per spec (the program asks once per pool)."""
    entry = _index[0] if _index else None
    if entry is None or entry[0] is not spec:
        entry = (spec, {w.name: w for w in reversed(spec.workloads)})  # the first of a name wins
        _index[:] = [entry]
    return entry[1]


def demand_for(spec: FleetSpec, pool: PoolPlan) -> dict[str, Any]:
    """The demand object of the workload a pool serves: ``model_dump()`` of the spec's own demand
    model (:class:`~gpufleet.spec.TrainingClusterDemand` / :class:`~gpufleet.spec.InferencePoolDemand`).

    An inference pool's ``gpus_per_replica`` is the plan's memory fit (from the pool's sizing), not
    recomputed here; ``model.kv_dtype`` is resolved to ``model.dtype`` when the spec leaves it out,
    so the object carries no nulls.
    """
    workload = _workloads(spec).get(pool.workload)
    if isinstance(workload, TrainingSpec):
        return workload.demand().model_dump()
    if isinstance(workload, InferenceSpec):
        return workload.demand(int(pool.sizing["memory"]["gpus_per_replica"]), spec.plan_confidence).model_dump()
    raise KeyError(f"pool {pool.name} serves unknown workload {pool.workload!r}")


def serving_for(spec: FleetSpec, pool: PoolPlan) -> ServingSpec | None:
    """How the Deployment of a Kubernetes inference pool scales (its service's ``serving``); None
    for a pool on VMs or a training pool."""
    workload = _workloads(spec).get(pool.workload)
    if pool.platform == "kubernetes" and isinstance(workload, InferenceSpec):
        return workload.serving
    return None


def pool_summary(plan: FleetPlan, pool: PoolPlan) -> dict[str, Any]:
    """One pool in the stack outputs: size, power, price and how much of its demand it covers."""
    summary: dict[str, Any] = {
        "role": pool.role,
        "workload": pool.workload,
        "cloud": pool.cloud,
        "site": pool.site,
        "zones": list(pool.zones),
        "instance_type": pool.instance_type,
        "gpu": pool.gpu,
        "gpus": pool.gpus,
        "nodes": pool.nodes,
        "min_nodes": pool.min_nodes,
        "power_kw": round(pool.power_kw, 3),
        "usd_per_hour": None if pool.usd_per_hour is None else round(pool.usd_per_hour, 2),
    }
    if pool.role == "inference":
        capacity = pool.nodes * pool.tokens_per_s_per_node
        summary["demand"] = {
            "tokens_per_s": round(pool.demand_tokens_per_s, 3),
            "capacity_tokens_per_s_at_max": round(capacity, 3),
            "covered": capacity + 1e-9 >= pool.demand_tokens_per_s,
        }
    else:
        work = next((w for w in plan.workloads if w.name == pool.workload), None)
        days = float(pool.sizing.get("days_at_rounded_size", work.days_at_planned_size if work else 0.0))
        deadline = float(work.deadline_days if work else pool.sizing.get("inputs", {}).get("deadline_days", 0.0))
        summary["demand"] = {
            "flops": pool.sizing.get("flops"),
            "days_at_planned_size": round(days, 3),
            "deadline_days": deadline,
            "covered": days <= deadline * (1 + 1e-9),
        }
    return {k: v for k, v in summary.items() if v is not None}


def plan_summary(plan: FleetPlan) -> dict[str, Any]:
    """The stack outputs: fleet totals and one entry per pool."""
    return {
        "stack": plan.stack,
        "gpus": plan.gpus,
        "power_mw": round(plan.power_mw, 6),
        "usd_per_hour": round(plan.usd_per_hour, 2),
        "pools": {pool.name: pool_summary(plan, pool) for pool in sorted(plan.pools, key=lambda p: p.name)},
    }
