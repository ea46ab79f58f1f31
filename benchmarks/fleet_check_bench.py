"""How long ``gpufleet fleet check`` takes over 20 stacks of 25 services each, beside previewing the
largest of them alone, both as whole ``gpufleet`` processes in the same run.

Every stack is ``fleets.big_fleet(25)``: the same six shared sites (declared alike, as one fleet file
all stacks include would declare them), 4 training runs and 25 inference services. ``fleet check``
plans each stack (sizing and the placement MILP) in parallel processes and adds their draws up per
site; the preview runs the Pulumi program under mocks and the policy pack over one stack. Goal: the
check of all 20 stacks under 2x the single preview.

    .venv/bin/python benchmarks/fleet_check_bench.py [--stacks 20] [--services 25] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleets import big_fleet, write_stack  # benchmarks/fleets.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 2.0


def timed(args: list[str]) -> tuple[float, int, str]:
    """Seconds, exit code and stdout of ``python -m gpufleet ARGS`` run from the repository root."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gpufleet", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 3):
        raise SystemExit(f"gpufleet {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.returncode, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stacks", type=int, default=20, help="stacks checked together")
    parser.add_argument("--services", type=int, default=25, help="inference services per stack")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (the fastest is kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stacks = Path(tmp) / "stacks"
        for i in range(args.stacks):
            write_stack(stacks / f"Pulumi.team-{i:02d}.yaml", big_fleet(args.services))
        largest = stacks / "Pulumi.team-00.yaml"  # every stack is the same size
        repeat = max(1, args.repeat)
        loads = [os.getloadavg()[0]]
        checks, previews = [], []
        for _ in range(repeat):  # interleaved, so a busy moment hits both alike
            checks.append(timed(["fleet", "check", str(stacks), "--json"]))
            previews.append(timed(["preview", "--stack", str(largest), "--format", "json"]))
            loads.append(os.getloadavg()[0])
        check, preview = min(checks), min(previews)
    report: dict[str, Any] = json.loads(check[2])
    figures = {
        "stacks": args.stacks,
        "services_per_stack": args.services,
        "cpus": os.cpu_count(),
        "fleet_check_s": round(check[0], 2),
        "fleet_check_exit": check[1],
        "sites_over": sum(s["over"] for s in report["sites"]),
        "gpus": sum(s["gpus"] for s in report["stacks"]),
        "preview_largest_s": round(preview[0], 2),
        "resources_largest": len(json.loads(preview[2])["resources"]),
        "ratio": round(check[0] / preview[0], 2),
        "goal_ratio": GOAL_RATIO,
        "load_average": [round(min(loads), 2), round(max(loads), 2)],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"fleet check, {args.stacks} stacks x {args.services} services ({figures['gpus']:,} GPUs, "
              f"{figures['cpus']} CPUs): {figures['fleet_check_s']:.1f} s, exit {figures['fleet_check_exit']} "
              f"({figures['sites_over']} sites over)")
        print(f"preview of the largest stack alone ({figures['resources_largest']} resources): "
              f"{figures['preview_largest_s']:.1f} s")
        print(f"load average (1 min) over the runs: {min(loads):.1f}-{max(loads):.1f}")
        verdict = "within" if figures["ratio"] < GOAL_RATIO else "OVER"
        print(f"ratio: {figures['ratio']:.2f}x, {verdict} the {GOAL_RATIO:g}x goal")
    return 0 if figures["ratio"] < GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
