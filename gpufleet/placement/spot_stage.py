"""Spot as a second stage: the on-demand optimum first, then spot over its neighbourhood.

Pure apart from calling HiGHS (through :func:`gpufleet.placement.milp.run`). Offering every spot
option beside every on-demand one leaves HiGHS's bound tight (the spot rows change the LP bound by
little) but makes its primal heuristics slow: at 200 sites × 100 pools the joint program reached
the time limit with a placement 2.17× the cost of the one without spot. So a problem with spot
offers is solved in two stages:

1. **On-demand.** The program without any spot option (exactly what the fleet costs with no spot,
   found by :func:`~gpufleet.placement.forced.forced` when there is nothing to choose).
2. **Spot.** The full program of :mod:`gpufleet.placement.milp` (spot rows included) over a
   neighbourhood of that optimum: each pool keeps the (site, type) options its on-demand placement
   uses (a training pool its one option), and an inference pool with spot offers gets spot at those
   options and at its :data:`SPOT_NEIGHBOURS` cheapest other spot offers (USD per GPU-hour, then
   site order).

What this gives, and what it gives up:

- The on-demand optimum is a feasible point of the second stage (spot is optional: every spot
  column at 0 meets the share row, and T_p ≥ N_p ≥ F_p meets the floor row), so the second stage's
  optimum costs at most the on-demand optimum. The result is the cheaper of the two placements, so
  **spot never raises the cost**, even when the second stage stops at its gap or its time limit.
- The result is optimal (within ``mip_rel_gap``) among placements whose on-demand nodes stay on the
  options the on-demand optimum uses, with spot there or at the pool's cheapest spot offers. It
  gives up placements that move on-demand nodes to options the on-demand optimum left empty (for
  example to free a site's power for spot elsewhere) and spot at a pool's more expensive offers.
  ``benchmarks/spot_bench.py`` prints the cost of the joint program beside it (``--before``).
- ``status`` is ``optimal`` when both stages are; ``mip_gap`` is the larger of the two stages' gaps
  (for the on-demand placement kept, its gap to the second stage's dual bound).
- When the on-demand program is infeasible (spot can supply nodes on-demand quotas cannot) or finds
  nothing in time, there is no neighbourhood: the caller solves the joint program.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from gpufleet.placement.forced import forced
from gpufleet.placement.milp import Candidates, Option, decode, formulate, run

SPOT_NEIGHBOURS = 4
"""Spot offers beyond the on-demand placement's own options that an inference pool may use."""

# scipy.optimize.milp status codes (HiGHS model status mapped by scipy).
_OPTIMAL, _LIMIT = 0, 1


@dataclass(frozen=True)
class Staged:
    """A placement found in stages: nodes per option, ``optimal`` or ``feasible``, and the gap."""

    placed: list[tuple[Option, int]]
    status: str
    mip_gap: float


def without_spot(cands: Candidates) -> Candidates:
    """The candidates with every spot option removed: the on-demand program."""
    return dataclasses.replace(cands, spot_options=[[] for _ in cands.options])


def neighbourhood(cands: Candidates, placed: list[tuple[Option, int]]) -> Candidates:
    """The candidates restricted to an on-demand placement's options, and the spot offers at those
    options and at each pool's :data:`SPOT_NEIGHBOURS` cheapest other ones."""
    used = {(o.pool, o.site, o.instance_type) for o, _ in placed}
    options = [[o for o in pool_options if (p, o.site, o.instance_type) in used]
               for p, pool_options in enumerate(cands.options)]
    spot: list[list[Option]] = []
    for p, offers in enumerate(cands.spot_options):
        own = [o for o in offers if (p, o.site, o.instance_type) in used]
        others = sorted((o for o in offers if (p, o.site, o.instance_type) not in used),
                        key=lambda o: (o.cost_per_node_hour / o.gpus, o.site, o.rank))[:SPOT_NEIGHBOURS]
        spot.append(sorted(own + others, key=lambda o: (o.site, o.rank)))
    return dataclasses.replace(cands, options=options, spot_options=spot)


def cost_per_hour(placed: list[tuple[Option, int]]) -> float:
    """USD per hour of a placement (carbon included, tie-break excluded)."""
    return sum(nodes * o.cost_per_node_hour for o, nodes in placed)


def solve_in_stages(cands: Candidates, *, time_limit_s: float, mip_rel_gap: float) -> Staged | None:
    """Place the on-demand optimum, then spot over its neighbourhood, within ``time_limit_s`` in all.

    Args:
        cands: candidates with spot options.
        time_limit_s: HiGHS wall-clock limit for both stages together, in seconds.
        mip_rel_gap: relative gap at which HiGHS stops, in each stage.

    Returns:
        The cheaper of the two stages' placements, or None when the on-demand program has no
        placement (infeasible, or none found in time): then only the joint program can decide.
    """
    start = time.perf_counter()
    on_demand = without_spot(cands)
    first = forced(on_demand)
    status, gap = "optimal", 0.0
    if first is None:
        form = formulate(on_demand)
        res = run(form, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
        if res.x is None or res.status not in (_OPTIMAL, _LIMIT):
            return None
        first = decode(form, on_demand, res.x)
        status = "optimal" if res.status == _OPTIMAL else "feasible"
        gap = 0.0 if res.mip_gap is None else float(res.mip_gap)
    near = neighbourhood(cands, first)
    form = formulate(near)
    res = run(form, time_limit_s=time_limit_s - (time.perf_counter() - start), mip_rel_gap=mip_rel_gap)
    found = res.x is not None and res.status in (_OPTIMAL, _LIMIT)
    second = decode(form, near, res.x) if found else None
    if res.status != _OPTIMAL:
        status = "feasible"
    if second is not None and cost_per_hour(second) <= cost_per_hour(first):
        return Staged(second, status, max(gap, 0.0 if res.mip_gap is None else float(res.mip_gap)))
    return Staged(first, status, max(gap, _gap_to(cost_per_hour(first), getattr(res, "mip_dual_bound", None))))


def _gap_to(cost: float, bound: float | None) -> float:
    """The relative gap of a placement costing ``cost`` to the second stage's dual bound (1.0, i.e.
    unknown, without one)."""
    if bound is None or not cost or bound != bound:
        return 1.0
    return max(0.0, (cost - float(bound)) / cost)
