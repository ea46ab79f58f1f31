"""How fast and how good the placement MILP is, against a greedy "cheapest site first" baseline.

For 10, 50 and 200 sites × 10, 40 and 100 pools (seeded random instances over three clouds), prints
the solve time, the solver's cost, the greedy baseline's cost, their ratio (greedy / solver; above 1
means the solver is cheaper) and the optimality gap HiGHS reports. Target: 200 sites × 100 pools
solves to a gap under 0.5 % in under 10 s on a 2-core machine.

    .venv/bin/python benchmarks/placement_bench.py [--seed 1] [--time-limit-s 10] [--mip-rel-gap 0.001]

Instances: 30 % training pools (8 to 128 nodes of an 8-GPU type, any region, preference lists
across clouds), 70 % inference pools (2 to 48 nodes of a 1-GPU or 8-GPU type in 3 to 6 regions,
surviving 1 site loss, a fifth of them 2). Sites: a third per cloud, 4 to 12 MW, PUE 1.1 to 1.5,
per GPU model a quota of 1,024 to 3,072 GPUs (10 % of them 0, 20 % unlimited), a price for each
type of their cloud but one in ten, and every tenth pair of sites in a shared failure domain.
``--headroom X`` sizes the sites instead so that together they hold X times the demand (with
floors so most training pools fit somewhere): the tight regime.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import defaultdict
from typing import Any

from gpufleet.placement import InstanceFacts, PlacementProblem, solve

# Instance facts for the benchmark (fixed here so catalog edits do not move the figures).
FACTS = {
    f.instance_type: f
    for f in [
        InstanceFacts("p5.48xlarge", "aws", "H100", 8, 10.2),
        InstanceFacts("p4d.24xlarge", "aws", "A100", 8, 6.5),
        InstanceFacts("g6.xlarge", "aws", "L4", 1, 0.112),
        InstanceFacts("Standard_ND96isr_H100_v5", "azure", "H100", 8, 10.2),
        InstanceFacts("Standard_ND96asr_v4", "azure", "A100", 8, 6.5),
        InstanceFacts("Standard_NC24ads_A100_v4", "azure", "A100", 1, 0.54),
        InstanceFacts("a3-highgpu-8g", "gcp", "H100", 8, 10.2),
        InstanceFacts("a2-highgpu-8g", "gcp", "A100", 8, 6.5),
        InstanceFacts("g2-standard-4", "gcp", "L4", 1, 0.112),
    ]
}
BASE_PRICE = {  # USD per GPU-hour, rough list prices
    "p5.48xlarge": 3.9, "p4d.24xlarge": 2.7, "g6.xlarge": 0.8,
    "Standard_ND96isr_H100_v5": 4.1, "Standard_ND96asr_v4": 2.9, "Standard_NC24ads_A100_v4": 3.7,
    "a3-highgpu-8g": 3.7, "a2-highgpu-8g": 2.9, "g2-standard-4": 0.7,
}
CLOUDS = ("aws", "azure", "gcp")
TRAINING_TYPES = {
    "H100": ["p5.48xlarge", "Standard_ND96isr_H100_v5", "a3-highgpu-8g"],
    "A100": ["p4d.24xlarge", "Standard_ND96asr_v4", "a2-highgpu-8g"],
}
INFERENCE_TYPES = [
    ["g6.xlarge", "g2-standard-4"],
    ["Standard_NC24ads_A100_v4"],
    ["p5.48xlarge", "a3-highgpu-8g", "Standard_ND96isr_H100_v5"],
    ["p4d.24xlarge", "a2-highgpu-8g"],
]


def instance(n_sites: int, n_pools: int, seed: int, headroom: float | None = None) -> dict[str, Any]:
    """A seeded random placement problem (JSON-like).

    Args:
        n_sites: number of sites.
        n_pools: number of pools.
        seed: random seed.
        headroom: None for sites of fixed size (4 to 12 MW, 1,024 to 3,072 GPUs of a model); a
            number to size all sites together at that multiple of the demand instead (at least
            0.6 to 1.8 MW and 320 to 960 GPUs each).
    """
    rng = random.Random(seed * 1_000_003 + n_sites * 1_009 + n_pools)
    n_regions = max(3, n_sites // 4)
    regions = [(CLOUDS[r % 3], f"{CLOUDS[r % 3]}-region-{r}") for r in range(n_regions)]
    pools: list[dict[str, Any]] = []
    for j in range(n_pools):
        if rng.random() < 0.3:
            gpu = rng.choice(sorted(TRAINING_TYPES))
            types = rng.sample(TRAINING_TYPES[gpu], rng.randint(1, 3))
            pools.append({"name": f"train-{j}", "role": "training", "nodes": rng.randint(8, 128), "instance_types": types})
        else:
            types = list(rng.choice(INFERENCE_TYPES))
            rng.shuffle(types)
            pool: dict[str, Any] = {"name": f"serve-{j}", "role": "inference", "nodes": rng.randint(2, 48), "instance_types": types}
            pool["survive_site_losses"] = 2 if rng.random() < 0.2 else 1
            pools.append(pool)
    # Site sizes: fixed distributions (a site is a site, however many there are), or, with
    # ``headroom``, scaled so that all sites together hold ``headroom`` times the demand (at the
    # first type, PUE 1.3), with floors of 1.2 MW and 640 GPUs so that most training pools fit
    # somewhere: the tight regime, where sites shrink towards one training pool as their number grows.
    demand_mw = sum(p["nodes"] * FACTS[p["instance_types"][0]].node_power_kw * 1.3 / 1000 for p in pools)
    demand_gpus: dict[str, float] = defaultdict(float)
    for p in pools:
        f = FACTS[p["instance_types"][0]]
        demand_gpus[f.gpu] += p["nodes"] * f.gpus
    sites: list[dict[str, Any]] = []
    for i in range(n_sites):
        cloud, region = regions[i] if i < n_regions else rng.choice(regions)
        scale = rng.uniform(0.5, 1.5)
        types = [t for t, f in FACTS.items() if f.cloud == cloud]
        prices = {t: round(BASE_PRICE[t] * rng.uniform(0.8, 1.3), 3) for t in types if rng.random() > 0.1}
        quota = {}
        for gpu in ("H100", "A100", "L4"):
            roll = rng.random()
            if roll < 0.1:
                quota[gpu] = 0
            elif roll < 0.8:
                share = 2048.0 if headroom is None else max(headroom * demand_gpus.get(gpu, 0.0) / n_sites, 640.0)
                quota[gpu] = int(math.ceil(share * scale / 8) * 8)
        power_mw = 8.0 if headroom is None else max(headroom * demand_mw / n_sites, 1.2)
        site: dict[str, Any] = {
            "name": f"site-{i}", "cloud": cloud, "region": region,
            "zones": [f"{region}-{z}" for z in "abc"[: rng.randint(2, 3)]],
            "power_mw": round(power_mw * scale, 3), "pue": round(rng.uniform(1.1, 1.5), 2),
            "quota_gpus": quota, "price_per_gpu_hour": prices,
            "carbon_g_per_kwh": round(rng.uniform(30, 700), 1),
        }
        if i % 10 in (0, 1):
            site["failure_domain"] = f"domain-{i - i % 10}"  # sites 0 and 1, 10 and 11, ... fail together
        sites.append(site)
    # Inference pools: 3 to 6 regions of their clouds, widened to every region when that leaves
    # fewer than k + 2 failure domains.
    for pool in pools:
        if pool["role"] != "inference":
            continue
        clouds = {FACTS[t].cloud for t in pool["instance_types"]}
        allowed = [name for cloud, name in regions if cloud in clouds]
        chosen = rng.sample(allowed, min(len(allowed), rng.randint(3, 6)))
        domains = {s.get("failure_domain", s["name"]) for s in sites
                   if s["region"] in chosen and set(pool["instance_types"]) & set(s["price_per_gpu_hour"])}
        if len(domains) >= pool["survive_site_losses"] + 2:
            pool["regions"] = sorted(chosen)
    return {"sites": sites, "pools": pools, "carbon_price_per_tonne": 60.0}


# --------------------------------------------------------------------------------------------------
# Greedy baseline
# --------------------------------------------------------------------------------------------------


class _Greedy:
    """Cheapest site first: pools largest first (training before inference), no look-ahead."""

    def __init__(self, problem: PlacementProblem) -> None:
        self.problem = problem
        self.carbon = problem.carbon_price_per_tonne or 0.0
        self.power_kw = {s.name: 1000 * s.power_mw for s in problem.sites}
        self.quota = {(s.name, g): float(q) for s in problem.sites for g, q in s.quota_gpus.items()}

    def _options(self, pool: Any) -> list[tuple[float, Any, str]]:
        out = []
        for s in self.problem.sites:
            if pool.regions is not None and s.region not in pool.regions:
                continue
            for t in pool.instance_types:
                f = FACTS[t]
                prices = s.price_per_gpu_hour
                if f.cloud != s.cloud or (prices and t not in prices):
                    continue
                price = prices[t] if prices else 0.0
                kw = f.node_power_kw * s.pue
                out.append((f.gpus * price + self.carbon * kw * (s.carbon_g_per_kwh or 0) / 1e6, s, t))
        out.sort(key=lambda o: o[0])
        return out

    def _room(self, s: Any, t: str) -> int:
        f = FACTS[t]
        by_power = self.power_kw[s.name] / (f.node_power_kw * s.pue)
        by_quota = self.quota.get((s.name, f.gpu), math.inf) / f.gpus
        return int(math.floor(min(by_power, by_quota) + 1e-9))

    def _take(self, s: Any, t: str, nodes: int) -> None:
        f = FACTS[t]
        self.power_kw[s.name] -= nodes * f.node_power_kw * s.pue
        if (s.name, f.gpu) in self.quota:
            self.quota[(s.name, f.gpu)] -= nodes * f.gpus

    def run(self) -> float | None:
        cost = 0.0
        order = sorted(self.problem.pools, key=lambda p: (p.role != "training", -p.nodes))
        for pool in order:
            if pool.nodes == 0:
                continue
            placed = self._training(pool) if pool.role == "training" else self._inference(pool)
            if placed is None:
                return None
            cost += placed
        return cost

    def _training(self, pool: Any) -> float | None:
        for unit, s, t in self._options(pool):
            if self._room(s, t) >= pool.nodes:
                self._take(s, t, pool.nodes)
                return unit * pool.nodes
        return None

    def _inference(self, pool: Any) -> float | None:
        k = pool.losses
        domains: dict[str, list[tuple[float, Any, str]]] = defaultdict(list)
        for option in self._options(pool):
            domains[option[1].failure_domain or option[1].name].append(option)
        best: tuple[float, list[tuple[Any, str, int]]] | None = None
        for m in range(k + 1, min(len(domains), k + 8) + 1):
            per_domain = math.ceil(pool.nodes / (m - k))
            plans: list[tuple[float, list[tuple[Any, str, int]]]] = []
            for options in domains.values():
                plan: list[tuple[Any, str, int]] = []
                left, cost = per_domain, 0.0
                for unit, s, t in options:  # cheapest site in the domain first
                    take = min(left, self._room(s, t) - sum(n for s2, t2, n in plan if s2 is s))
                    if take > 0:
                        plan.append((s, t, take))
                        cost += unit * take
                        left -= take
                    if left == 0:
                        break
                if left == 0:
                    plans.append((cost, plan))
            if len(plans) < m:
                continue
            plans.sort(key=lambda p: p[0])
            total = sum(c for c, _ in plans[:m])
            if best is None or total < best[0]:
                best = (total, [item for _, plan in plans[:m] for item in plan])
        if best is None:
            return None
        for s, t, n in best[1]:
            self._take(s, t, n)
        return best[0]


def greedy_cost(problem: PlacementProblem) -> float | None:
    """The greedy baseline's hourly cost, or None when it fails to place some pool."""
    return _Greedy(problem).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    parser.add_argument("--mip-rel-gap", type=float, default=0.001)
    parser.add_argument("--headroom", type=float, default=None,
                        help="size all sites together at this multiple of the demand (tight regime); "
                             "default: sites of fixed size")
    args = parser.parse_args()
    regime = "fixed-size sites" if args.headroom is None else f"sites sized at {args.headroom:g} x demand"
    print(f"seed {args.seed}, {regime}, time limit {args.time_limit_s:g} s, mip_rel_gap {args.mip_rel_gap:g}")
    print(f"{'sites':>5} {'pools':>5} {'status':>10} {'solve s':>8} {'cost USD/h':>12} {'greedy USD/h':>13} "
          f"{'greedy/solver':>13} {'gap':>8}")
    for n_sites in (10, 50, 200):
        for n_pools in (10, 40, 100):
            problem = PlacementProblem.model_validate(instance(n_sites, n_pools, args.seed, args.headroom))
            start = time.perf_counter()
            result = solve(problem, FACTS, time_limit_s=args.time_limit_s, mip_rel_gap=args.mip_rel_gap)
            seconds = time.perf_counter() - start
            greedy = greedy_cost(problem)
            cost = result.cost_per_hour
            ratio = f"{greedy / cost:.3f}" if greedy is not None and cost else ("greedy fails" if greedy is None else "—")
            gap = "—" if result.mip_gap is None else f"{result.mip_gap:.3%}"
            print(f"{n_sites:>5} {n_pools:>5} {result.status:>10} {seconds:>8.2f} "
                  f"{'—' if cost is None else f'{cost:,.0f}':>12} {'—' if greedy is None else f'{greedy:,.0f}':>13} "
                  f"{ratio:>13} {gap:>8}", flush=True)


if __name__ == "__main__":
    main()
