"""How long ``gpufleet diff`` takes on two 10,000-GPU stacks, and where the time goes.

Generates two stacks of about 10,000 GPUs each (training runs and inference services over six
sites on three clouds; head raises the demand of a quarter of the services, trims one training
run's deadline and moves one service to another cloud), then times each phase the way the command
runs it, for the big pair and for a small pair (the ``capacity-cut`` test fixture):

* plan: load and validate both stacks, size and place them (``build_plan``);
* preview: the Pulumi program under mocks and the policy pack, both sides (``run_preview``);
* compare: the :class:`~gpufleet.diff.FleetDiff`;
* render: Markdown (size-bounded), JSON and the SVG chart.

It prints seconds per phase, each phase's share, and the big/small ratio of every phase (how the
cost grows with the fleet). Target: the whole diff of the big pair under 30 s on a 2-core machine.

    .venv/bin/python benchmarks/diff_bench.py [--services 40] [--no-preview] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from gpufleet.diff import compare, render_markdown
from gpufleet.diff.chart import render_chart
from gpufleet.diff.sources import Timings, load_side, resolve

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "fixtures" / "diff" / "capacity-cut"
TARGET_S = 30.0

_SITES = [
    ("aws-use1", "aws", "us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c"], "p5.48xlarge", 3.93, 1.15),
    ("aws-usw2", "aws", "us-west-2", ["us-west-2a", "us-west-2b", "us-west-2c"], "p5.48xlarge", 3.93, 1.2),
    ("azure-eastus", "azure", "eastus", ["1", "2", "3"], "Standard_ND96isr_H100_v5", 4.10, 1.2),
    ("azure-westus3", "azure", "westus3", ["1", "2", "3"], "Standard_ND96isr_H100_v5", 4.10, 1.25),
    ("gcp-usc1", "gcp", "us-central1", ["us-central1-a", "us-central1-b", "us-central1-c"], "a3-highgpu-8g", 4.20, 1.1),
    ("gcp-euw4", "gcp", "europe-west4", ["europe-west4-a", "europe-west4-b", "europe-west4-c"], "a3-highgpu-8g", 4.40, 1.1),
]


def big_fleet(services: int, *, head: bool) -> dict[str, Any]:
    """About 10,000 H100s with the default 40 services: 4 runs of ~1,000 GPUs, services of ~150."""
    sites = []
    for i, (name, cloud, region, zones, itype, price, pue) in enumerate(_SITES):
        site: dict[str, Any] = {
            "name": name, "cloud": cloud, "region": region, "zones": zones, "power_mw": 12.0, "pue": pue,
            "quota_gpus": {"H100": 4096}, "price_per_gpu_hour": {itype: price},
            "network_cidr": f"10.{10 * (i + 1)}.0.0/16",
        }
        if cloud == "gcp":
            site["project"] = "gpufleet-bench"
        sites.append(site)
    training = []
    for i in range(4):
        training.append({
            "name": f"pretrain-{i}", "params": 7.0e10, "tokens": 2.5e12, "gpu": "H100",
            "deadline_days": 27 if (head and i == 0) else 30, "mfu": 0.4, "sites": [_SITES[i % 6][0]],
        })
    inference = []
    for i in range(services):
        raised = head and i % 4 == 0
        home = _SITES[i % 6]
        moved = head and i == 1
        where = _SITES[(i + 2) % 6] if moved else home
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": {"gpufleet:fleet": fleet}}, sort_keys=False))
    return path


def run_once(base_file: Path, head_file: Path, work: Path, *, preview: bool) -> dict[str, float]:
    """Seconds per phase of one ``gpufleet diff`` (markdown + JSON + chart)."""
    timings = Timings()
    base = load_side(resolve(str(base_file), work, label="base"), "base", evaluate_policies=preview, timings=timings)
    head = load_side(resolve(str(head_file), work, label="head"), "head", evaluate_policies=preview, timings=timings)
    t0 = time.perf_counter()
    diff = compare(base, head)
    t1 = time.perf_counter()
    markdown = render_markdown(diff)
    data = json.dumps(diff.to_json(), allow_nan=False)
    render_chart(base, head, work / "chart.svg")
    t2 = time.perf_counter()
    return {"plan": timings.plan_s, "preview": timings.preview_s, "compare": t1 - t0, "render": t2 - t1,
            "gpus": float(base.gpus), "head_gpus": float(head.gpus), "markdown_bytes": float(len(markdown.encode())),
            "json_bytes": float(len(data)), "workloads": float(len(diff.workloads))}


def best_of(repeat: int, *args: Any, **kwargs: Any) -> dict[str, float]:
    runs = [run_once(*args, **kwargs) for _ in range(repeat)]
    return min(runs, key=lambda r: r["plan"] + r["preview"] + r["compare"] + r["render"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=40, help="inference services in the big stacks")
    parser.add_argument("--no-preview", action="store_true", help="skip the policy preview (plan and render only)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest counts")
    args = parser.parse_args(argv)
    preview = not args.no_preview
    with tempfile.TemporaryDirectory(prefix="gpufleet-diff-bench-") as tmp:
        work = Path(tmp)
        base_file = write_stack(work / "base" / "Pulumi.bench.yaml", big_fleet(args.services, head=False))
        head_file = write_stack(work / "head" / "Pulumi.bench.yaml", big_fleet(args.services, head=True))
        # Warm-up (imports, catalog, matplotlib's font cache), not counted.
        run_once(SMALL / "base" / "Pulumi.fleet.yaml", SMALL / "head" / "Pulumi.fleet.yaml", work, preview=preview)
        small = best_of(args.repeat, SMALL / "base" / "Pulumi.fleet.yaml", SMALL / "head" / "Pulumi.fleet.yaml",
                        work, preview=preview)
        big = best_of(args.repeat, base_file, head_file, work, preview=preview)
    phases = ["plan", "preview", "compare", "render"] if preview else ["plan", "compare", "render"]
    total_small = sum(small[p] for p in phases)
    total_big = sum(big[p] for p in phases)
    print(f"gpufleet diff benchmark ({'with' if preview else 'without'} the policy preview)")
    print(f"  small: {small['gpus']:,.0f} → {small['head_gpus']:,.0f} GPUs, {small['workloads']:.0f} workloads "
          "(tests/fixtures/diff/capacity-cut)")
    print(f"  big:   {big['gpus']:,.0f} → {big['head_gpus']:,.0f} GPUs, {big['workloads']:.0f} workloads (generated)")
    print()
    print(f"  {'phase':<9} {'small s':>9} {'big s':>9} {'big share':>10} {'big/small':>10}")
    for p in phases:
        ratio = big[p] / small[p] if small[p] > 0 else float("inf")
        print(f"  {p:<9} {small[p]:>9.3f} {big[p]:>9.3f} {big[p] / total_big:>9.1%} {ratio:>9.1f}x")
    print(f"  {'total':<9} {total_small:>9.3f} {total_big:>9.3f} {1:>9.1%} {total_big / total_small:>9.1f}x")
    print()
    work_s = big["plan"] + (big["preview"] if preview else 0.0)
    print(f"  big: plan{'+preview' if preview else ''} / (compare+render) = "
          f"{work_s / (big['compare'] + big['render']):.1f}x")
    print(f"  big report: {big['markdown_bytes']:,.0f} bytes of Markdown, {big['json_bytes']:,.0f} bytes of JSON")
    ok = total_big < TARGET_S
    print(f"  target: the big diff in under {TARGET_S:.0f} s: {'met' if ok else 'MISSED'} ({total_big:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
