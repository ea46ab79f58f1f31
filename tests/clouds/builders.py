"""A valid site and pool of each cloud, built by hand (no planner): what a test asserts is what it put in.

Used by the checks' tests and the components' tests (``site_of`` / ``pool_of`` fixtures).
"""

from __future__ import annotations

from typing import Any

from gpufleet.catalog import load_catalog
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec

SITES: dict[str, dict[str, Any]] = {
    "aws": {"name": "aws-test", "cloud": "aws", "region": "us-east-1",
            "zones": ["us-east-1a", "us-east-1b", "us-east-1c"], "network_cidr": "10.10.0.0/16"},
    "azure": {"name": "azure-test", "cloud": "azure", "region": "eastus",
              "zones": ["1", "2", "3"], "network_cidr": "10.20.0.0/16"},
    "gcp": {"name": "gcp-test", "cloud": "gcp", "region": "us-central1",
            "zones": ["us-central1-a", "us-central1-b", "us-central1-c"], "network_cidr": "10.30.0.0/16",
            "project": "unit-project"},
}

TRAINING_TYPES = {"aws": "p5.48xlarge", "azure": "Standard_ND96isr_H100_v5", "gcp": "a3-ultragpu-8g"}
INFERENCE_TYPES = {"aws": "g6e.12xlarge", "azure": "Standard_NC40ads_H100_v5", "gcp": "g2-standard-48"}


def make_site(cloud: str, **overrides: Any) -> SiteSpec:
    """A valid site of ``cloud`` (10 MW, three zones); fields can be overridden."""
    return SiteSpec.model_validate({**SITES[cloud], "power_mw": 10.0, **overrides})


def make_pool(cloud: str, role: str = "training", instance_type: str | None = None, **overrides: Any) -> PoolPlan:
    """A PoolPlan as the planner would emit it, from the catalog row of ``instance_type``."""
    site = make_site(cloud)
    itype = instance_type or (TRAINING_TYPES if role == "training" else INFERENCE_TYPES)[cloud]
    row = load_catalog().instance(itype)
    workload = overrides.pop("workload", "train" if role == "training" else "serve")
    nodes = int(overrides.pop("nodes", 4 if role == "training" else 9))
    if role == "training":
        zones = tuple(overrides.pop("zones", (site.zones[1],)))
        nodes_by_zone = {zones[0]: nodes}
        min_nodes = nodes
        islands = overrides.pop("islands", (nodes,))
    else:
        zones = tuple(overrides.pop("zones", tuple(site.zones)))
        per = nodes // len(zones)
        nodes_by_zone = {z: per for z in zones}
        min_nodes = int(overrides.pop("min_nodes", len(zones)))
        islands = (nodes,)
    node_kw = row.node_power_kw or 1.0
    fields: dict[str, Any] = dict(
        name=f"{workload}-{site.name}", workload=workload, role=role, cloud=cloud, site=site.name,
        region=site.region, zones=zones, nodes_by_zone=nodes_by_zone, instance_type=itype,
        fallback_instance_types=(), gpu=row.gpu, gpus_per_node=row.gpus, nodes=nodes, min_nodes=min_nodes,
        gpus=nodes * row.gpus, node_power_kw=node_kw, pue=1.2, power_kw=nodes * node_kw * 1.2, usd_per_hour=None,
        fabric=row.fabric, fabric_interfaces=row.fabric_interfaces, fabric_gbps=row.fabric_gbps,
        islands=tuple(islands), network_cidr=site.network_cidr,
    )
    if role == "inference":
        fields.update(demand_tokens_per_s=10_000.0, tokens_per_s_per_node=2_000.0, scaling_target_per_node=1_400.0,
                      sizing={"memory": {"gpus_per_replica": 1}})
    fields.update(overrides)
    return PoolPlan(**fields)
