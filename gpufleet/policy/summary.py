"""A summary of what the stack provisions against what it needs, for reports (``gpufleet preview``).

Computed with the same inventory and the same need functions as the rules, so a report's numbers are
the numbers the policies judged. Pure: no Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpufleet.policy.resources import Inventory, Resource, build_inventory
from gpufleet.policy.rules import (
    RuleResult,
    full_scale_nodes,
    inference_needs,
    pools_by_site,
    row_for,
    site_draws,
    training_needs,
    workloads_of,
)


def summarize(resources: Sequence[Resource], config: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``{"workloads": [...], "sites": [...]}`` for a stack's resources and the effective policy config.

    Demand floors are read from the ``capacity-covers-demand`` policy's config, as that policy does.
    """
    config = config or {}
    floors = dict((config.get("capacity-covers-demand") or {}).get("floors") or {})
    inv = build_inventory(resources)
    return {"workloads": workload_summaries(inv, floors), "sites": site_summaries(inv)}


def workload_summaries(inv: Inventory, floors: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, role, pools in workloads_of(inv, floors):
        scratch = RuleResult()
        row = row_for(pools, scratch, "its capacity") if pools else None
        entry: dict[str, Any] = {
            "name": name,
            "role": role or "unknown",
            "pools": [p.name for p in pools],
            "sites": sorted({p.site for p in pools if p.site}),
            "instance_type": row.instance_type if row else (pools[0].instance_type if pools else None),
            "gpu": row.gpu if row else None,
            "gpus_per_node": row.gpus if row else None,
            "nodes_provisioned": None,
            "nodes_min": None,
            "nodes_needed": None,
            "gpus_provisioned": None,
            "gpus_needed": None,
            "demand_source": None,
            "status": "unknown",
            "note": "",
        }
        out.append(entry)
        if not pools:
            entry["note"] = "a floor names it, but the stack provisions nothing"
            entry["status"] = "short"
            entry["nodes_provisioned"] = 0
            continue
        if row is None or any(p.unknown for p in pools):
            entry["note"] = "; ".join([f.message for f in scratch.findings] + [u for p in pools for u in p.unknown])
            continue
        if role == "training":
            provisioned = sum(p.count or 0 for p in pools)
            entry["nodes_min"] = provisioned
            sizings = training_needs(name, pools, row, floors, scratch)
            if sizings:
                source, t = max(sizings, key=lambda x: x[1].nodes)
                entry.update(nodes_needed=t.nodes, demand_source=source.source,
                             deadline_days=source.get("deadline_days"), flops=t.flops,
                             days_at_provisioned=(t.gpu_hours / (provisioned * row.gpus) / 24 if provisioned else None))
        else:
            provisioned = sum(p.max_nodes or 0 for p in pools)
            entry["nodes_min"] = sum(p.min_nodes or 0 for p in pools)
            needs = inference_needs(name, pools, row, floors, scratch)
            if needs:
                need = max(needs, key=lambda n: n.nodes)
                s = need.sizing
                entry.update(nodes_needed=need.nodes, demand_source=need.demand.source,
                             warm_nodes_needed=s.warm_nodes,
                             horizon_days=need.demand.get("lead_time_days") + need.demand.get("horizon_days"),
                             demand_at_horizon_tokens_per_s=round(s.demand_at_horizon_tokens_per_s, 3),
                             tokens_per_s_at_max=round(provisioned * s.tokens_per_s_per_node, 3),
                             survive_zone_losses=need.zone_losses, survive_site_losses=need.site_losses)
        entry["nodes_provisioned"] = provisioned
        entry["gpus_provisioned"] = provisioned * row.gpus
        if entry["nodes_needed"] is not None:
            entry["gpus_needed"] = entry["nodes_needed"] * row.gpus
            entry["status"] = "ok" if provisioned >= entry["nodes_needed"] else "short"
        entry["note"] = "; ".join(f.message for f in scratch.findings)
    return out


def site_summaries(inv: Inventory) -> list[dict[str, Any]]:
    by_site = pools_by_site(inv)
    out = []
    for name in sorted(set(by_site) | set(inv.sites)):
        site = inv.sites.get(name)
        pools = by_site.get(name, [])
        scratch = RuleResult()
        draws = [] if any(p.unknown for p in pools) else site_draws(inv, name, pools, scratch)
        gpus: dict[str, int] = {}
        for p in pools:
            row = row_for([p], RuleResult(), "")
            if row is not None:
                gpus[row.gpu] = gpus.get(row.gpu, 0) + full_scale_nodes(p) * row.gpus
        out.append({
            "name": name,
            "power_mw": round(sum(d.kw for d in draws) / 1000.0, 6),
            "envelope_mw": site.power_mw if site else None,
            "pue": site.pue if site else None,
            "gpus": dict(sorted(gpus.items())),
            "quota_gpus": dict(sorted(site.quota_gpus.items())) if site else {},
            "pools": [p.name for p in pools],
        })
    return out


__all__ = ["site_summaries", "summarize", "workload_summaries"]
