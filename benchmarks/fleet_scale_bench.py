"""A 500-service fleet split into several stacks over 12 shared sites: plan, preview, diff and fleet check.

The fleet (``--services 500 --stacks 4`` by default) is ``fleets.big_fleet``'s kind of fleet, grown:
12 H100 sites on three clouds, every site declared alike in every stack (shared envelopes and
quotas, as a fleet file the stacks include would declare them), one training run and
``services / stacks`` inference services per stack, each service homed on one site. Sites are sized
so the stacks fit together. Each stack names its fleet in a fleet file (``gpufleet:fleetFiles``), as a
stack of this size must.

Every command runs as a user would run it, a whole ``gpufleet`` process, and must exit 0:

* ``gpufleet plan`` of each stack, one after another;
* ``gpufleet preview --stack DIR --jobs 2``: every stack at once, one process each;
* ``gpufleet diff --base STACK --head STACK'`` of each stack against a head that raises every fourth
  service's demand by a quarter;
* ``gpufleet fleet check DIR --json``: the stacks' draws added per shared site.

The script prints each command's wall time and peak memory, the fleet's GPUs, sites and resources,
and each site's power against its envelope from ``fleet check``.

    .venv/bin/python benchmarks/fleet_scale_bench.py [--services 500] [--stacks 4] [--json]

One run on the 2-core machine with other work running beside it (load average 4–5)::

    500 services in 4 stacks over 12 shared sites: 195,856 GPUs, 4,304 resources, verdicts pass
    plan, each stack:       1.0 s, 1.1 s, 1.3 s, 1.8 s
    preview, all stacks:    46.0 s (--jobs 2)
    diff, each stack:       33.4 s, 23.6 s, 39.7 s, 28.0 s
    fleet check:            0.6 s; sites over their envelope or quota: none
    peak memory of the largest process: 533 MiB
    (each site: 21.9-26.5 MW of its 40 MW, drawn by all 4 stacks)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from fleets import SITES as FLEET_SITES, site  # benchmarks/fleets.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]

_MORE = [  # six more regions beside fleets.py's six: name, cloud, region, zones, type, $/GPU-hour, PUE
    ("aws-use2", "aws", "us-east-2", ["us-east-2a", "us-east-2b", "us-east-2c"], "p5.48xlarge", 3.93, 1.15),
    ("aws-euw1", "aws", "eu-west-1", ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "p5.48xlarge", 4.10, 1.2),
    ("azure-northeurope", "azure", "northeurope", ["1", "2", "3"], "Standard_ND96isr_H100_v5", 4.30, 1.2),
    ("azure-swedencentral", "azure", "swedencentral", ["1", "2", "3"], "Standard_ND96isr_H100_v5", 4.30, 1.1),
    ("gcp-use4", "gcp", "us-east4", ["us-east4-a", "us-east4-b", "us-east4-c"], "a3-highgpu-8g", 4.20, 1.1),
    ("gcp-asne1", "gcp", "asia-northeast1", ["asia-northeast1-a", "asia-northeast1-b", "asia-northeast1-c"],
     "a3-highgpu-8g", 4.60, 1.15),
]
_ORDER = ("aws-use1", "aws-use2", "aws-usw2", "aws-euw1", "azure-eastus", "azure-westus3", "azure-northeurope",
          "azure-swedencentral", "gcp-usc1", "gcp-use4", "gcp-euw4", "gcp-asne1")
SITES = sorted(FLEET_SITES + _MORE, key=lambda row: _ORDER.index(row[0]))
"""The 12 sites, in the order services are dealt to them (service ``i`` at ``SITES[i % 12]``)."""


def stack_fleet(stack: int, stacks: int, services: int, *, head: bool = False) -> dict[str, Any]:
    """Stack ``stack`` of ``stacks``: every site, one training run and its share of the services."""
    sites = [site(row, f"10.{10 + i}.0.0/16", power_mw=40.0, quota_h100=30_000) for i, row in enumerate(SITES)]
    home = SITES[stack % len(SITES)]
    training = [{"name": f"pretrain-{stack}", "params": 7.0e10, "tokens": 2.5e12, "gpu": "H100",
                 "deadline_days": 30, "mfu": 0.4, "sites": [home[0]], "allow_multiple_islands": True}]
    inference = []
    for i in range(stack, services, stacks):  # services 0..N-1 dealt out to the stacks in turn
        where = SITES[i % len(SITES)]
        raised = head and i % 4 == 0
        inference.append({
            "name": f"svc-{i:03d}",
            "model": {"params": 7.0e10, "layers": 80, "kv_heads": 8, "head_dim": 128, "dtype": "fp8"},
            "context_tokens": 16384, "concurrency": 16, "tokens_per_s_per_replica": 3000, "gpu": "H100",
            "instance_types": [where[4]], "peak_tokens_per_s": (160_000 + 1600 * (i % 100)) * (1.25 if raised else 1.0),
            "growth_per_month": 0.05, "lead_time_days": 45, "horizon_days": 90, "headroom": 0.25,
            "survive_zone_losses": 1, "sites": [where[0]],
        })
    return {"sites": sites, "training": training, "inference": inference}


def write_stacks(tmp: Path, stacks: int, services: int) -> tuple[list[Path], list[Path]]:
    """Base stacks in ``tmp/stacks`` and head stacks in ``tmp/heads``, each naming its fleet file."""
    paths: dict[str, list[Path]] = {"stacks": [], "heads": []}
    for folder, head in (("stacks", False), ("heads", True)):
        (tmp / folder).mkdir(parents=True)
        for s in range(stacks):
            fleet_file = tmp / folder / f"fleet-{s:02d}.yaml"
            fleet_file.write_text(yaml.safe_dump(stack_fleet(s, stacks, services, head=head), sort_keys=False))
            stack = tmp / folder / f"Pulumi.team-{s:02d}.yaml"
            stack.write_text(yaml.safe_dump({"config": {
                "gpufleet:fleetFiles": [fleet_file.relative_to(ROOT).as_posix()]}}))
            paths[folder].append(stack)
    return paths["stacks"], paths["heads"]


def gpufleet(*args: str) -> dict[str, Any]:
    """``python -m gpufleet ARGS`` from the repository root: wall seconds and stdout; exit 0 or stop."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gpufleet", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"gpufleet {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return {"seconds": time.perf_counter() - began, "stdout": done.stdout}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--services", type=int, default=500, help="inference services in the whole fleet")
    parser.add_argument("--stacks", type=int, default=4, help="stacks the fleet is split into")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"services": args.services, "stacks": args.stacks, "sites": len(SITES)}
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".fleet-scale-") as tmp:  # fleet files: inside the project
        bases, heads = write_stacks(Path(tmp), args.stacks, args.services)
        plans = [gpufleet("plan", "--stack", str(s), "--json") for s in bases]
        figures["plan_s"] = [round(p["seconds"], 2) for p in plans]
        figures["gpus"] = sum(json.loads(p["stdout"])["gpus"] for p in plans)
        out = Path(tmp) / "previews"
        preview = gpufleet("preview", "--stack", str(Path(tmp) / "stacks"), "--jobs", "2", "--format", "json",
                           "--output", str(out))
        figures["preview_all_s"] = round(preview["seconds"], 2)
        reports = [json.loads((out / f"{s.name.removeprefix('Pulumi.').removesuffix('.yaml')}.json").read_text())
                   for s in bases]
        figures["resources"] = sum(len(r["resources"]) for r in reports)
        figures["verdicts"] = sorted({r["verdict"] for r in reports})
        diffs = [gpufleet("diff", "--base", str(b), "--head", str(h), "--format", "json") for b, h in zip(bases, heads)]
        figures["diff_s"] = [round(d["seconds"], 2) for d in diffs]
        check = gpufleet("fleet", "check", str(Path(tmp) / "stacks"), "--json")
        figures["fleet_check_s"] = round(check["seconds"], 2)
        sites = json.loads(check["stdout"])["sites"]
        figures["sites_over"] = [s["name"] for s in sites if s["over"]]
        figures["site_power_mw"] = {s["name"]: [round(s["power_mw_used"], 2), s["power_mw"], len(s["stacks"])]
                                    for s in sites}
    # the largest of the processes waited for (each gpufleet command, its per-stack children, the pack)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{args.services} services in {args.stacks} stacks over {len(SITES)} shared sites: "
          f"{figures['gpus']:,} GPUs, {figures['resources']:,} resources, verdicts {', '.join(figures['verdicts'])}")
    print(f"plan, each stack:       {', '.join(f'{s:.1f} s' for s in figures['plan_s'])}")
    print(f"preview, all stacks:    {figures['preview_all_s']:.1f} s (--jobs 2)")
    print(f"diff, each stack:       {', '.join(f'{s:.1f} s' for s in figures['diff_s'])}")
    print(f"fleet check:            {figures['fleet_check_s']:.1f} s; sites over their envelope or quota: "
          f"{', '.join(figures['sites_over']) or 'none'}")
    print(f"peak memory of the largest process: {figures['peak_rss_mib']} MiB")
    for name, (used, envelope, stacks) in figures["site_power_mw"].items():
        print(f"  {name:<20} {used:>7.2f} MW of {envelope:g} MW, {stacks} stacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
