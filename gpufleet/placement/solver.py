"""``solve``: validate, formulate, solve with HiGHS, spread over zones, explain when nothing fits.

Pure apart from reading the shipped catalog when no instance facts are given. The same input always
gives the same result (timing aside), so plans built from it are byte-identical run to run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from gpufleet.errors import BindingConstraint, GpufleetError
from gpufleet.placement import explain
from gpufleet.placement.forced import forced
from gpufleet.placement.milp import Candidates, Option, build_candidates, decode, formulate, run
from gpufleet.placement.spot_stage import solve_in_stages
from gpufleet.placement.model import (
    Assignment,
    InstanceFacts,
    PlacementProblem,
    PlacementResult,
    check_problem,
)

# scipy.optimize.milp status codes (HiGHS model status mapped by scipy).
_OPTIMAL, _LIMIT, _INFEASIBLE = 0, 1, 2


def instance_facts_from_catalog() -> tuple[dict[str, InstanceFacts], set[str]]:
    """Instance facts for every catalog row with a node power figure.

    Returns:
        The facts by instance type, and the catalog types left out for lack of ``node_power_kw``.
    """
    from gpufleet.catalog import load_catalog

    facts: dict[str, InstanceFacts] = {}
    missing: set[str] = set()
    for row in load_catalog().instances.values():
        if row.node_power_kw is None:
            missing.add(row.instance_type)
            continue
        facts[row.instance_type] = InstanceFacts(row.instance_type, row.cloud, row.gpu, row.gpus, row.node_power_kw)
    return facts, missing


def solve(
    problem: PlacementProblem,
    instance_facts: Mapping[str, InstanceFacts] | None = None,
    *,
    time_limit_s: float = 10.0,
    mip_rel_gap: float = 0.001,
    source: str = "",
) -> PlacementResult:
    """Place every pool at minimum hourly cost under power, quota, zone and survival constraints.

    See ``gpufleet.placement.milp`` for the program in notation.

    Args:
        problem: the validated problem (``PlacementProblem.model_validate`` or ``parse_problem``).
        instance_facts: facts per instance type; None reads them from the shipped catalog.
        time_limit_s: HiGHS time limit, in seconds, for the placement solve (and again, at most, for
            explaining an infeasible one).
        mip_rel_gap: relative optimality gap at which HiGHS stops.
        source: file name for error messages.

    Returns:
        The placement (status ``optimal`` or ``feasible``) or the reasons none exists (status
        ``infeasible``, with ``explanation`` and ``binding``), or status ``time_limit``.

    Raises:
        SpecError: unknown instance types or GPU models, duplicate names, fields that do not apply
            to a pool's role, regions or zones no site has; every issue at once.
        GpufleetError: HiGHS failed for a reason other than infeasibility or a limit.
    """
    start = time.perf_counter()
    if instance_facts is None:
        facts, missing = instance_facts_from_catalog()
        hint = "run `gpufleet catalog` for the list"
    else:
        facts, missing, hint = dict(instance_facts), set(), ""
    check_problem(problem, facts, source=source, unknown_type_hint=hint, missing_power=missing)
    cands = build_candidates(problem, facts)
    notes = [text for text in [explain.unpriced_note(cands)] if text]

    found = explain.structural(cands)
    if found.reasons:
        text = explain.structural_explanation(cands, found)
        notes += explain.price_notes(cands, found.survival_pools)
        return _infeasible(cands, text, found.binding, [], notes, start)

    training_blocked = any(
        pool.role == "training" and pool.nodes > 0 and not cands.usable(p) for p, pool in enumerate(cands.pools)
    )
    placed_alone = None if training_blocked else forced(cands)  # nothing to choose: no program to solve
    if placed_alone is not None:
        return _placed(cands, placed_alone, "optimal", 0.0, notes, start)
    staged = None
    if not training_blocked and any(cands.spot_options):  # spot: the on-demand optimum, then spot near it
        staged = solve_in_stages(cands, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    if staged is not None:
        return _placed(cands, staged.placed, staged.status, staged.mip_gap, notes, start)
    if not training_blocked:
        form = formulate(cands)
        if form.n_columns == 0:  # nothing to place (every pool has 0 nodes)
            return _placed(cands, [], "optimal", 0.0, notes, start)
        res = run(form, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
        if res.x is not None and res.status in (_OPTIMAL, _LIMIT):
            status = "optimal" if res.status == _OPTIMAL else "feasible"
            placed = decode(form, cands, res.x)
            gap = 0.0 if res.mip_gap is None else float(res.mip_gap)
            return _placed(cands, placed, status, gap, notes, start)
        if res.status == _LIMIT:
            text = f"HiGHS found no placement within the {time_limit_s:g} s time limit; raise the time limit."
            return PlacementResult(
                "time_limit", [], None, {}, "\n".join([text, *notes]), solve_seconds=time.perf_counter() - start
            )
        if res.status != _INFEASIBLE:
            raise GpufleetError(f"HiGHS failed on the placement program: {res.message}")

    found_relaxations = explain.relaxations(cands, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    text = explain.capacity_explanation(cands, found_relaxations)
    binding = found_relaxations[0].binding if found_relaxations else []
    alternatives = [r.binding for r in found_relaxations[1:]]
    return _infeasible(cands, text, binding, alternatives, notes, start)


def _infeasible(
    cands: Candidates,
    text: str,
    binding: list[BindingConstraint],
    alternatives: list[list[BindingConstraint]],
    notes: list[str],
    start: float,
) -> PlacementResult:
    explanation = "\n".join([text, *(f"Note: {n}." for n in notes if n not in text)])
    return PlacementResult(
        status="infeasible",
        assignments=[],
        cost_per_hour=None,
        site_power_mw={},
        explanation=explanation,
        binding=binding,
        alternatives=alternatives,
        solve_seconds=time.perf_counter() - start,
    )


def _placed(
    cands: Candidates,
    placed: list[tuple[Option, int]],
    status: str,
    mip_gap: float,
    notes: list[str],
    start: float,
) -> PlacementResult:
    sites = cands.sites
    power_kw = [0.0] * len(sites)
    cost = 0.0
    carbon_t = 0.0
    for o, nodes in placed:
        power_kw[o.site] += nodes * o.site_kw
        cost += nodes * o.cost_per_node_hour
        carbon_t += nodes * o.site_kw * (sites[o.site].carbon_g_per_kwh or 0.0) / 1e6
    any_carbon = any(site.carbon_g_per_kwh is not None for site in sites)
    return PlacementResult(
        status="optimal" if status == "optimal" else "feasible",
        assignments=spread_over_zones(cands, placed),
        cost_per_hour=round(cost, 6),
        carbon_tonnes_per_hour=round(carbon_t, 9) if any_carbon else None,
        site_power_mw={site.name: round(power_kw[s] / 1000, 6) for s, site in enumerate(sites)},
        explanation="\n".join(f"Note: {n}." for n in notes),
        mip_gap=mip_gap,
        solve_seconds=time.perf_counter() - start,
    )


def spread_over_zones(cands: Candidates, placed: list[tuple[Option, int]]) -> list[Assignment]:
    """Turn nodes per (pool, site, type) into assignments per zone.

    A training pool goes whole into its pinned zone, or the site's first zone. An inference pool's
    nodes at a site are dealt over the site's zones round-robin, on-demand before spot, types in
    preference order, starting
    at zone ``pool index mod zones`` so the remainders of different pools land in different zones:
    per pool and site, zone counts differ by at most one.

    Args:
        cands: candidate options.
        placed: nodes per option, in (pool, site, preference) order.

    Returns:
        Assignments ordered by pool, site, zone (site order), then preference.
    """
    out: list[Assignment] = []
    cursor: dict[tuple[int, int], int] = {}
    for o, nodes in placed:
        pool, site = cands.pools[o.pool], cands.sites[o.site]
        if pool.role == "training":
            zone = pool.zone if pool.zone is not None else site.zones[0]
            out.append(Assignment(pool.name, site.name, zone, o.instance_type, nodes))
            continue
        n_zones = len(site.zones)
        pos = cursor.get((o.pool, o.site), o.pool % n_zones)
        counts = [nodes // n_zones] * n_zones
        for i in range(nodes % n_zones):
            counts[(pos + i) % n_zones] += 1
        cursor[(o.pool, o.site)] = (pos + nodes) % n_zones
        for z, count in enumerate(counts):
            if count:
                out.append(Assignment(pool.name, site.name, site.zones[z], o.instance_type, count, spot=o.spot))
    zone_order = {(s.name, z): i for s in cands.sites for i, z in enumerate(s.zones)}
    site_order = {s.name: i for i, s in enumerate(cands.sites)}
    pool_order = {p.name: i for i, p in enumerate(cands.pools)}
    rank = {(p.name, t): r for p in cands.pools for r, t in enumerate(p.instance_types)}
    out.sort(key=lambda a: (pool_order[a.pool], site_order[a.site], zone_order[(a.site, a.zone)], a.spot, rank[(a.pool, a.instance_type)]))
    return out
