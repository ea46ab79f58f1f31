"""Placement: put sized pools on sites at minimum hourly cost, under power, quota, zone and survival limits.

Pure core (no Pulumi, no cloud SDK, no I/O besides the shipped catalog): a mixed-integer program solved
with HiGHS through ``scipy.optimize.milp``.

Notations (full version in ``gpufleet.placement.milp`` and ``docs/placement.md``):
    Sets: sites S (envelope P_s MW, PUE u_s, quota Q_{s,m} per GPU model m, failure domain f(s)),
        pools P = P_T ∪ P_I (N_p nodes, k_p domain losses to survive), options O_p = allowed
        (site, instance type) pairs of pool p.
    Variables: y_o ∈ {0,1} for training options (the whole pool on one site and type), x_o ∈ ℤ≥0 for
        inference options (nodes on that site and type).
    Objective: min Σ_o n_o · (G_o · price_o + carbon_price · e_o · g_s / 10⁶) + a tiny tie-break on
        preference rank and site order, where n_o = N_p · y_o or x_o and e_o = node kW × PUE.
    Constraints: one option per training pool; for every set of k_p failure domains an inference
        pool could lose, the rest holds ≥ N_p nodes; per site Σ n_o · e_o ≤ 1000 · P_s; per site and
        GPU model Σ n_o · G_o ≤ Q_{s,m}.

Typical use::

    problem = PlacementProblem.model_validate(json.loads(text))
    result = solve(problem)
    result.raise_if_infeasible()
    for a in result.assignments: ...
"""

from __future__ import annotations

from gpufleet.placement.model import (
    Assignment,
    InstanceFacts,
    PlacementProblem,
    PlacementResult,
    PoolSpec,
    check_problem,
    parse_problem,
)
from gpufleet.placement.solver import instance_facts_from_catalog, solve
from gpufleet.spec import Site

__all__ = [
    "Assignment",
    "InstanceFacts",
    "PlacementProblem",
    "PlacementResult",
    "PoolSpec",
    "Site",
    "check_problem",
    "instance_facts_from_catalog",
    "parse_problem",
    "solve",
]
