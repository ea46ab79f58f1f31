"""The placement when nothing is left to choose: every pool has one usable option, no spot option, and
loses nothing.

A training pool with one usable option sits on it (its choice row forces ``y_o = 1``); an inference
pool with one usable option and ``k_p = 0`` puts all its ``N_p`` nodes there (``T_p = x_o ≥ N_p`` and
``x_o ≤ N_p``). The program then has one candidate solution: when it meets every power and quota row
exactly, it is the program's only feasible point, so its optimum, and HiGHS has nothing to solve
(nor SciPy to import). Otherwise (a row broken, a choice left, a loss to survive) :func:`forced`
returns None and the program is solved as usual, so the result never depends on which path ran.

Pure: no SciPy, no NumPy.
"""

from __future__ import annotations

from gpufleet.placement.milp import Candidates, Option


def forced(cands: Candidates) -> list[tuple[Option, int]] | None:
    """Nodes per option, in (pool, site, preference) order, when every pool with nodes has exactly one
    usable option and no inference pool must survive a loss, and that placement meets every site's
    envelope and quotas; else None."""
    placed: list[tuple[Option, int]] = []
    power_kw = [0.0] * len(cands.sites)
    gpus: list[dict[str, float]] = [{} for _ in cands.sites]
    for p, pool in enumerate(cands.pools):
        if pool.nodes == 0:
            continue
        usable = cands.usable(p)
        if len(usable) != 1 or (pool.role != "training" and pool.losses != 0) or cands.spot_options[p]:
            return None  # a choice left: of option, of a loss to survive, or of a spot share
        [o] = usable
        placed.append((o, pool.nodes))
        # Summed as the program's rows are (power: n · site_kw per column; quota: n · gpus).
        power_kw[o.site] += float(pool.nodes) * o.site_kw
        gpus[o.site][o.gpu] = gpus[o.site].get(o.gpu, 0.0) + float(pool.nodes) * o.gpus
    for s, site in enumerate(cands.sites):
        if power_kw[s] > 1000.0 * site.power_mw:
            return None
        if any(gpu in site.quota_gpus and used > float(site.quota_gpus[gpu]) for gpu, used in gpus[s].items()):
            return None
    placed.sort(key=lambda item: (item[0].pool, item[0].site, item[0].rank))
    return placed


__all__ = ["forced"]
