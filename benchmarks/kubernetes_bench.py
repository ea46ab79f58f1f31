"""How long ``gpufleet preview`` takes on the 10,000-GPU stack when its pools run on managed Kubernetes,
against the same stack on VMs, measured in the same run.

The VM stack is :func:`fleets.big_fleet` (six H100 sites on three clouds, 4 training runs of ~1,000
GPUs, 40 services). The Kubernetes stack is the same fleet with every site whose cloud has a Kubernetes
backend (``components.k8s.base.k8s_registered()``) on ``platform: kubernetes`` (a created cluster,
its system pool) and every service there scaled by KEDA (``serving``): the same pools, plus a cluster,
its roles, endpoints and device plugins per site, a launch template per node group and a ScaledObject
per service; its training runs declare that their clusters run the fabric software the managed
services leave to the owner (``fabric_setup_by_workload``). Target: the Kubernetes preview takes at most 1.3× the VM preview.

    .venv/bin/python benchmarks/kubernetes_bench.py [--services 40] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

from fleets import big_fleet, write_stack  # benchmarks/fleets.py (scripts run from benchmarks/)
from preview_bench import timed  # one preview, timed as preview_bench times it

TARGET_RATIO = 1.3
SYSTEM_POOL = {"aws": "m7i.xlarge", "gcp": "e2-standard-8", "azure": "Standard_D8s_v5"}
SERVING = {"prometheus_url": "http://prometheus-operated.monitoring.svc:9090", "target_value": 8}


def on_kubernetes(fleet: dict[str, Any], clouds: set[str]) -> dict[str, Any]:
    """``fleet`` with its sites on ``clouds`` on created clusters and their services scaled by KEDA."""
    out = copy.deepcopy(fleet)
    moved = set()
    for site in out["sites"]:
        if site["cloud"] in clouds:
            site["platform"] = {"kind": "kubernetes", "kubernetes": {
                "version": "1.33", "system_pool": {"instance_type": SYSTEM_POOL[site["cloud"]], "nodes": 2}}}
            moved.add(site["name"])
    for service in out["inference"]:
        if set(service.get("sites") or []) & moved:
            service["serving"] = dict(SERVING)
    for run in out["training"]:
        if set(run.get("sites") or []) & moved:
            # the run's cluster runs the fabric software a managed cluster leaves to its owner (AKS:
            # the NVIDIA Network Operator for InfiniBand; docs/kubernetes.md)
            run["fabric_setup_by_workload"] = True
    return out


def main(argv: list[str] | None = None) -> int:
    from components.k8s.base import k8s_registered

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--services", type=int, default=40, help="inference services in the stack")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stack, alternating (the fastest is kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    clouds = set(k8s_registered())
    vm_fleet = big_fleet(args.services)
    k8s_fleet = on_kubernetes(vm_fleet, clouds)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"vm": write_stack(Path(tmp) / "Pulumi.big-vm.yaml", vm_fleet),
                 "kubernetes": write_stack(Path(tmp) / "Pulumi.big-k8s.yaml", k8s_fleet)}
        timed(files["vm"])  # the first preview in a process pays for importing the SDKs
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in files}
        for _ in range(max(1, args.repeat)):  # alternate, so load on the machine hits both alike
            for label, path in files.items():
                runs[label].append(timed(path))
    best = {label: min(rs, key=lambda r: r["total_s"]) for label, rs in runs.items()}
    ratio = best["kubernetes"]["total_s"] / best["vm"]["total_s"]
    sites = [s["name"] for s in k8s_fleet["sites"] if "platform" in s]
    if args.json:
        print(json.dumps({"runs": best, "kubernetes_over_vm": ratio, "target_ratio": TARGET_RATIO,
                          "kubernetes_sites": sites}, indent=2))
        return 0
    print(f"Kubernetes sites ({', '.join(sorted(clouds)) or 'no cloud has a Kubernetes backend'}): "
          f"{', '.join(sites) or 'none'}")
    print(f"{'stack':<11} {'resources':>9} {'program':>9} {'policy':>9} {'total':>9}  verdict")
    for label, r in best.items():
        print(f"{label:<11} {r['resources']:>9} {r['program_s']:>8.2f}s {r['policy_s']:>8.2f}s {r['total_s']:>8.2f}s"
              f"  {r['verdict']} ({r['violations']} violations)")
    print(f"kubernetes/vm: {ratio:.2f}x total (target ≤ {TARGET_RATIO}x, best of {max(1, args.repeat)} each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
