"""Previewing every stack in stacks/ one by one against one multi-stack ``gpufleet preview`` command.

Both are measured in the same run, as a user would run them, whole processes and wall clock:

* one by one: ``gpufleet preview --stack stacks/Pulumi.<name>.yaml --format json --output …`` for
  each stack, one after another (the baseline);
* together: ``gpufleet preview --stack stacks/ --jobs N --format json --output DIR`` (one command,
  one process per stack, at most N at once).

The script prints each stack's time, both totals and the ratio together / one by one (below 1 is
faster). It also checks that both runs reached the same verdict for every stack. Parallel runs share
the machine's cores: on a 2-core machine two previews at once cannot take less than half the time.

    .venv/bin/python benchmarks/multistack_bench.py [--jobs 2] [--stacks stacks] [--repeat 1] [--json]
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

ROOT = Path(__file__).resolve().parents[1]
STACKS = ROOT / "stacks"


def _gpufleet(*args: str) -> tuple[int, float]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gpufleet", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    return done.returncode, time.perf_counter() - began


def _verdicts(folder: Path) -> dict[str, str]:
    return {p.stem: json.loads(p.read_text())["verdict"] for p in sorted(folder.glob("*.json"))}


def one_by_one(stacks: list[Path], out: Path) -> dict[str, Any]:
    seconds: dict[str, float] = {}
    codes: dict[str, int] = {}
    for stack in stacks:
        name = stack.name.removeprefix("Pulumi.").removesuffix(".yaml")
        codes[name], seconds[name] = _gpufleet("preview", "--stack", str(stack), "--format", "json",
                                               "--output", str(out / f"{name}.json"))
    return {"seconds": seconds, "total_s": sum(seconds.values()), "exit_codes": codes, "verdicts": _verdicts(out)}


def together(folder: Path, jobs: int, out: Path) -> dict[str, Any]:
    code, seconds = _gpufleet("preview", "--stack", str(folder), "--jobs", str(jobs), "--format", "json",
                              "--output", str(out))
    return {"total_s": seconds, "exit_code": code, "verdicts": _verdicts(out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=2, help="previews at once in the multi-stack command")
    parser.add_argument("--stacks", type=Path, default=STACKS, help="the directory of stack files")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (the fastest is kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    stacks = sorted(args.stacks.glob("Pulumi.*.yaml"))
    best_serial: dict[str, Any] | None = None
    best_parallel: dict[str, Any] | None = None
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "serial").mkdir()
            serial = one_by_one(stacks, Path(tmp) / "serial")
            parallel = together(args.stacks, args.jobs, Path(tmp) / "parallel")
        if best_serial is None or serial["total_s"] < best_serial["total_s"]:
            best_serial = serial
        if best_parallel is None or parallel["total_s"] < best_parallel["total_s"]:
            best_parallel = parallel
    assert best_serial is not None and best_parallel is not None
    same = best_serial["verdicts"] == best_parallel["verdicts"]
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    figures = {"stacks": len(stacks), "jobs": args.jobs, "cpus": os.cpu_count(), "load_1min": load,
               "one_by_one": best_serial,
               "together": best_parallel, "ratio_together_over_one_by_one":
                   best_parallel["total_s"] / best_serial["total_s"], "same_verdicts": same}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{len(stacks)} stacks, {os.cpu_count()} CPUs, 1-minute load {load['before']} before, "
              f"{load['after']} after (other work on the machine takes cores from both runs)")
        for name, seconds in best_serial["seconds"].items():
            print(f"  {name:<18} {seconds:6.1f} s  {best_serial['verdicts'].get(name, '(no report)')}")
        print(f"one by one ({len(stacks)} commands):          {best_serial['total_s']:6.1f} s")
        print(f"together (1 command, --jobs {args.jobs}):   {best_parallel['total_s']:6.1f} s")
        print(f"ratio together / one by one:      {figures['ratio_together_over_one_by_one']:6.2f}")
        print(f"same verdict for every stack:     {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
