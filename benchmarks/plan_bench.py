"""How long `gpufleet plan` takes for 10, 100 and 1,000 inference services.

Prints, per size: validation time, sizing time, placement time and total, each as a ratio against
the 10-service run measured in the same process. The target: sizing a 1,000-service plan takes
under 2 s here (placement has its own benchmark, benchmarks/placement_bench.py).

    .venv/bin/python benchmarks/plan_bench.py
"""

from __future__ import annotations

import random
import time
from typing import Any

from gpufleet.catalog import load_catalog
from gpufleet.plan import _size, build_plan
from gpufleet.spec import parse_fleet

GPUS = [("H100", "p5.48xlarge"), ("L40S", "g6e.12xlarge"), ("L4", "g6.12xlarge")]


def fleet(services: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    sites = [
        {
            "name": f"aws-{i}",
            "cloud": "aws",
            "region": "us-east-1",
            "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
            "power_mw": 10_000.0,
            "pue": 1.2,
            "price_per_gpu_hour": {"p5.48xlarge": 3.9 + i * 0.01, "g6e.12xlarge": 2.6 + i * 0.01,
                                   "g6.12xlarge": 1.1 + i * 0.01},
        }
        for i in range(4)
    ]
    inference = []
    for n in range(services):
        gpu, itype = GPUS[n % len(GPUS)]
        inference.append({
            "name": f"svc-{n:04d}",
            "model": {"params": rng.choice([1e9, 3e9, 8e9]), "layers": 32, "kv_heads": 8, "head_dim": 128},
            "context_tokens": rng.choice([2048, 4096]),
            "concurrency": rng.choice([4, 8]),
            "tokens_per_s_per_replica": rng.uniform(500, 3000),
            "gpu": gpu,
            "instance_types": [itype],
            "peak_tokens_per_s": rng.uniform(1_000, 50_000),
            "growth_per_month": rng.uniform(0, 0.15),
            "lead_time_days": rng.choice([30, 60, 90]),
            "horizon_days": 90,
        })
    return {"sites": sites, "inference": inference}


def measure(services: int) -> dict[str, float]:
    data = fleet(services)
    t0 = time.perf_counter()
    spec = parse_fleet(data)
    t1 = time.perf_counter()
    catalog = load_catalog()
    for i, w in enumerate(spec.inference):
        _size(w, spec, catalog, f"fleet.inference[{i}]")
    t2 = time.perf_counter()
    plan = build_plan(spec, "bench", time_limit_s=60)
    t3 = time.perf_counter()
    assert len(plan.workloads) == services
    return {"validate": t1 - t0, "size": t2 - t1, "plan": t3 - t2, "total": t3 - t0}


def main() -> None:
    measure(10)  # warm the catalog and imports
    results = {n: measure(n) for n in (10, 100, 1000)}
    base = results[10]
    print(f"{'services':>8} {'validate s':>11} {'size s':>8} {'plan+place s':>13} {'total s':>8}  ratios vs 10 (size, total)")
    for n, r in results.items():
        print(f"{n:>8} {r['validate']:>11.3f} {r['size']:>8.3f} {r['plan']:>13.3f} {r['total']:>8.3f}"
              f"  x{r['size'] / base['size']:.1f}, x{r['total'] / base['total']:.1f}")
    verdict = "meets" if results[1000]["validate"] + results[1000]["size"] < 2.0 else "MISSES"
    print(f"validating + sizing 1,000 services: {results[1000]['validate'] + results[1000]['size']:.2f} s "
          f"({verdict} the 2 s target)")


if __name__ == "__main__":
    main()
