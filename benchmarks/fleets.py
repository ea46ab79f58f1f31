"""The generated 10,000-GPU multi-cloud fleet that the preview and diff benchmarks measure.

Six H100 sites on three clouds, 4 training runs of ~1,000 GPUs and (by default) 40 inference
services of ~150 GPUs. ``head=True`` gives the changed side of a diff: one training deadline
shortened, every fourth service's demand raised by half, and service 1 moved two sites over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SITES = [
    ("aws-use1", "aws", "us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c"], "p5.48xlarge", 3.93, 1.15),
    ("aws-usw2", "aws", "us-west-2", ["us-west-2a", "us-west-2b", "us-west-2c"], "p5.48xlarge", 3.93, 1.2),
    ("azure-eastus", "azure", "eastus", ["1", "2", "3"], "Standard_ND96isr_H100_v5", 4.10, 1.2),
    ("azure-westus3", "azure", "westus3", ["1", "2", "3"], "Standard_ND96isr_H100_v5", 4.10, 1.25),
    ("gcp-usc1", "gcp", "us-central1", ["us-central1-a", "us-central1-b", "us-central1-c"], "a3-highgpu-8g", 4.20, 1.1),
    ("gcp-euw4", "gcp", "europe-west4", ["europe-west4-a", "europe-west4-b", "europe-west4-c"], "a3-highgpu-8g", 4.40, 1.1),
]


def site(row: tuple[Any, ...], network_cidr: str, *, power_mw: float, quota_h100: int) -> dict[str, Any]:
    """A site of ``row`` (name, cloud, region, zones, instance type, $/GPU-hour, PUE), as a fleet declares it."""
    name, cloud, region, zones, itype, price, pue = row
    declared: dict[str, Any] = {
        "name": name, "cloud": cloud, "region": region, "zones": zones, "power_mw": power_mw, "pue": pue,
        "quota_gpus": {"H100": quota_h100}, "price_per_gpu_hour": {itype: price}, "network_cidr": network_cidr,
    }
    if cloud == "gcp":
        declared["project"] = "gpufleet-bench"
    return declared


def big_fleet(services: int = 40, *, head: bool = False) -> dict[str, Any]:
    """About 10,000 H100s with the default 40 services: 4 runs of ~1,000 GPUs, services of ~150."""
    sites = [site(row, f"10.{10 * (i + 1)}.0.0/16", power_mw=12.0, quota_h100=4096) for i, row in enumerate(SITES)]
    training = []
    for i in range(4):
        run: dict[str, Any] = {
            "name": f"pretrain-{i}", "params": 7.0e10, "tokens": 2.5e12, "gpu": "H100",
            "deadline_days": 27 if (head and i == 0) else 30, "mfu": 0.4, "sites": [SITES[i % 6][0]],
        }
        if SITES[i % 6][1] == "azure":
            run["allow_multiple_islands"] = True  # 128 VMs: two InfiniBand islands, as before the opt-in existed
        training.append(run)
    inference = []
    for i in range(services):
        raised = head and i % 4 == 0
        home = SITES[i % 6]
        moved = head and i == 1
        where = SITES[(i + 2) % 6] if moved else home
        inference.append({
            "name": f"svc-{i:02d}",
            "model": {"params": 7.0e10, "layers": 80, "kv_heads": 8, "head_dim": 128, "dtype": "fp8"},
            "context_tokens": 16384, "concurrency": 16, "tokens_per_s_per_replica": 3000, "gpu": "H100",
            "instance_types": [where[4]], "peak_tokens_per_s": (58000 + 1500 * i) * (1.5 if raised else 1.0),
            "growth_per_month": 0.05, "lead_time_days": 45, "horizon_days": 90, "headroom": 0.25,
            "survive_zone_losses": 1, "sites": [where[0]],
        })
    return {"sites": sites, "training": training, "inference": inference}


def write_stack(path: Path, fleet: dict[str, Any]) -> Path:
    """Write ``fleet`` as the ``gpufleet:fleet`` of a stack file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": {"gpufleet:fleet": fleet}}, sort_keys=False))
    return path
