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


from gpufleet.diff import compare, render_markdown
from gpufleet.diff.chart import render_chart
from gpufleet.diff.sources import Timings, load_side, resolve

from fleets import big_fleet, write_stack  # benchmarks/fleets.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "fixtures" / "diff" / "capacity-cut"
TARGET_S = 30.0

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
