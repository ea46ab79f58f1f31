"""The placement mixed-integer program: candidate options, the matrix, and a HiGHS solve.

Pure apart from calling HiGHS through ``scipy.optimize.milp``; deterministic for a given input
(HiGHS's branch and bound is deterministic, rows and columns are built in input order, and a tie-break
term makes the optimum unique up to the solver's gap).

Notations:
    Sets:
        S                 sites, in input order; s ∈ S has envelope P_s (MW), PUE u_s, zones Z_s,
                          carbon intensity g_s (gCO2e/kWh, 0 if unknown) and failure domain f(s).
        M                 GPU models; Q_{s,m} is the quota of m at s (absent: unlimited).
        P = P_T ∪ P_I     training and inference pools; pool p needs N_p nodes and survives
                          losing k_p failure domains (k_p = 0 for training).
        O_p               options of pool p: pairs (s, t) of a site and an allowed instance type with
                          s in the pool's regions, cloud(t) = cloud(s), t priced at s (or s has no
                          price table), and, for a training pool pinned to a zone, that zone in Z_s.
                          Option o has GPUs per node G_o, GPU model m_o, meter power per node
                          e_o = node_power_kw(t) · u_s (kW) and hourly cost per node
                          c_o = G_o · price_{s,t} + carbon_price · e_o · g_s / 10⁶.
        D_p               failure domains spanned by O_p; O_{p,d} the options of p in domain d.
    Variables:
        y_o ∈ {0, 1}      o ∈ O_p, p ∈ P_T: the training pool sits on option o (all N_p nodes).
        x_o ∈ ℤ, 0 ≤ x_o ≤ N_p
                          o ∈ O_p, p ∈ P_I: nodes of the inference pool on option o.
        T_p ≥ N_p         p ∈ P_I: total nodes of the pool (T_p = Σ_{o ∈ O_p} x_o).
        λ_p ≥ 0, μ_{p,d} ≥ 0
                          p ∈ P_I with k_p ≥ 2: the dual of "sum of the k_p largest domain loads".
        n_o               nodes on option o: N_p · y_o (training) or x_o (inference).
    Objective:
        minimise Σ_o n_o · (c_o + ε_o), with ε_o = δ · (rank_o · |S| + index(s_o) + 1) / (R · |S| + |S| + 1)
        with δ = 0.001 USD per node-hour: a tie-break that prefers earlier instance types, then
        earlier sites, and never outweighs a real price difference.
    Constraints:
        Σ_{o ∈ O_p} y_o = 1                                   p ∈ P_T (one site, one type)
        T_p − Σ_{o ∈ O_{p,d}} x_o ≥ N_p                       p ∈ P_I, k_p = 1, d ∈ D_p
        T_p − k_p·λ_p − Σ_d μ_{p,d} ≥ N_p,
        μ_{p,d} + λ_p − Σ_{o ∈ O_{p,d}} x_o ≥ 0               p ∈ P_I, k_p ≥ 2, d ∈ D_p
        Σ_{o at s} n_o · e_o ≤ 1000 · P_s                     s ∈ S (power, kW)
        Σ_{o at s, m_o = m} n_o · G_o ≤ Q_{s,m}               s ∈ S, m with a quota (GPUs)

    Spot (inference pools with a spot share f_p and a reclaim share r_p): a site s that prices type t
    as spot (spot_price_{s,t}) offers spot nodes of t at s, at G_o · spot_price_{s,t} (+ carbon) per
    node, under its own quota Q^spot_{s,m} (the providers' spot quotas are separate) and with the same
    power. Where the pool also has the on-demand option o = (s, t), the spot nodes are a part of o's
    nodes rather than a second option: x_o counts all of o's nodes and
        z_o ∈ ℤ, 0 ≤ x_o − z_o ≤ N_p, z_o ≤ N_p, x_o ≤ 2 N_p
                                      the spot ones, at cost (c^spot_o − c_o) per node (a discount),
    so power and the survival rows read x_o alone, the on-demand quota row reads G_o · (x_o − z_o) and
    the spot quota row G_o · z_o; the pool's integer structure is the on-demand program's. A spot
    offer with no usable on-demand option beside it is a column x_{o'} of its own (all spot). With
    S_p the pool's spot nodes (Σ z_o + Σ x_{o'}) and F_p its floor (the nodes the forecast peak
    needs, at most N_p):
        T_p = Σ_o x_o + Σ x_{o'};   S_p − f_p · T_p ≤ 0;   T_p − r_p · S_p ≥ F_p
        Σ_{o' at s, m = m_o'} x_{o'} · G_o' + Σ_{o at s, m = m_o} z_o · G_o ≤ Q^spot_{s,m}
    so at most f_p of the pool is spot and what remains after r_p of the spot nodes are reclaimed
    still carries the peak, and the survival rows again over the reclaim-weighted loads (on-demand
    counts 1, spot 1 − r_p), with F_p for N_p: for k_p = 1 and d ∈ D_p
        (T_p − r_p · S_p) − (Σ_{o ∈ O_{p,d}} x_o − r_p · S_{p,d}) ≥ F_p
    (k_p ≥ 2: the λ/μ rows below on those loads), so a reclaim during the worst declared site loss
    still leaves the peak (``gpufleet.capacity.nodes_after_reclaim_and_losses``; the zone-loss margin
    is in F_p, as in N_p, from ``gpufleet.plan``). (The bounds are those of separate on-demand and spot columns of ≤ N_p each:
    cheap spot that is little reclaimed may take a pool past N_p.)
    The relaxed program leaves spot out. ``gpufleet.placement.spot_stage`` solves this program over
    a neighbourhood of the on-demand optimum (its docstring says what that gives up).

    The k_p ≥ 2 rows are exact: for any loads z_d, the sum of the k largest equals
    min_λ≥0 k·λ + Σ_d max(0, z_d − λ) (LP duality), so the pool keeps ≥ N_p nodes after losing any
    k_p domains with |D_p| + 1 rows instead of C(|D_p|, k_p).

    Options that can never be used are dropped before the solve (a quota of 0 for the option's GPU,
    an envelope smaller than one node, or, for training, one site too small for the whole pool).

    Relaxed program (used only to explain infeasibility): every power row gets a slack
    σ_s ≥ 0 (MW) and every quota row a slack σ_{s,m} ≥ 0 (GPUs), no option is dropped for capacity,
    and the objective is Σ_s σ_s · W / max(P_s, 1) + Σ σ_{s,m} · W / max(Q_{s,m}, 8) plus a much
    smaller tie-break: the least relative relaxation of the limits that admits a placement.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from math import inf
from typing import TYPE_CHECKING

from gpufleet.placement.model import InstanceFacts, PlacementProblem, PoolSpec
from gpufleet.sizing import site_domain as failure_domain_of
from gpufleet.spec import Site

if TYPE_CHECKING:  # NumPy and SciPy load when a program is built or solved (a forced placement needs neither)
    import numpy as np
    from scipy.optimize import LinearConstraint, OptimizeResult  # type: ignore[import-untyped]

# Tie-break scale in USD per node-hour: below any real price difference (a cent per GPU-hour on a
# 1-GPU node), above HiGHS's tolerances.
TIE_BREAK_USD_PER_NODE = 1e-3
# Relaxed program: weight of relaxing a limit by its own size, and the tie-break under it.
SLACK_WEIGHT = 1e3
SLACK_TIE_BREAK = 1e-6
# Floors of the relative slack weights, so a limit of 0 still has a finite weight.
POWER_FLOOR_MW = 1.0
QUOTA_FLOOR_GPUS = 8.0


@dataclass(frozen=True)
class Option:
    """One way to hold nodes of a pool: an instance type at a site.

    Attributes:
        pool: pool index.
        site: site index.
        instance_type: instance type name.
        rank: position of the type in the pool's preference list (0 = most preferred).
        gpu: GPU model.
        gpus: GPUs per node.
        node_kw: IT power per node (kW).
        site_kw: power per node at the meter (kW): node_kw × PUE.
        cost_per_node_hour: USD per node-hour, carbon included.
        domain: failure-domain index.
        usable: False when capacity rules the option out on its own (quota 0, envelope too small,
            or a training pool bigger than the site); such options appear only in the relaxed program.
        spot: the option holds spot nodes (priced and capped by the site's spot tables).
    """

    pool: int
    site: int
    instance_type: str
    rank: int
    gpu: str
    gpus: int
    node_kw: float
    site_kw: float
    cost_per_node_hour: float
    domain: int
    usable: bool
    spot: bool = False


@dataclass
class Exclusions:
    """Why (site, type) pairs in a pool's regions are not options, for explanations."""

    wrong_cloud: list[tuple[int, str]] = field(default_factory=list)
    wrong_zone: list[tuple[int, str]] = field(default_factory=list)
    unpriced: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Candidates:
    """A validated problem turned into options per pool, with the facts explanations need.

    Attributes:
        problem: the problem.
        facts: instance facts by type.
        options: per pool, its options ordered by site then preference.
        in_scope: per pool, the sites in its regions (all sites without regions).
        exclusions: per pool, why other (site, type) pairs in scope are not options.
        domains: failure-domain names; ``site_domain[s]`` indexes into it.
        unpriced_sites: sites with no price table at all (their prices count as 0).
        spot_options: per pool, its usable spot options (inference pools with a spot share only).
    """

    problem: PlacementProblem
    facts: Mapping[str, InstanceFacts]
    options: list[list[Option]]
    in_scope: list[list[int]]
    exclusions: list[Exclusions]
    domains: list[str]
    site_domain: list[int]
    unpriced_sites: list[int]
    spot_options: list[list[Option]] = field(default_factory=list)

    @property
    def sites(self) -> list[Site]:
        return self.problem.sites

    @property
    def pools(self) -> list[PoolSpec]:
        return self.problem.pools

    def usable(self, p: int) -> list[Option]:
        """Options of pool p that capacity does not rule out on their own."""
        return [o for o in self.options[p] if o.usable]


def build_candidates(problem: PlacementProblem, facts: Mapping[str, InstanceFacts]) -> Candidates:
    """List every option of every pool, and why other pairs are excluded.

    Args:
        problem: a problem that passed ``check_problem`` against ``facts``.
        facts: instance facts by type.

    Returns:
        The candidates, in deterministic order.
    """
    sites = problem.sites
    carbon_price = problem.carbon_price_per_tonne or 0.0
    domains: list[str] = []
    domain_index: dict[str, int] = {}
    site_domain: list[int] = []
    for site in sites:
        key = failure_domain_of(site.name, site.failure_domain)
        if key not in domain_index:
            domain_index[key] = len(domains)
            domains.append(site.failure_domain or site.name)
        site_domain.append(domain_index[key])

    options: list[list[Option]] = []
    spot_options: list[list[Option]] = []
    in_scope: list[list[int]] = []
    exclusions: list[Exclusions] = []
    for p, pool in enumerate(problem.pools):
        scope = [
            s
            for s, site in enumerate(sites)
            if (pool.regions is None or site.region in pool.regions)
            and (pool.sites is None or site.name in pool.sites)
        ]
        why = Exclusions()
        pool_options: list[Option] = []
        for s in scope:
            site = sites[s]
            for rank, itype in enumerate(pool.instance_types):
                fact = facts[itype]
                if fact.cloud != site.cloud:
                    why.wrong_cloud.append((s, itype))
                    continue
                if pool.role == "training" and pool.zone is not None and pool.zone not in site.zones:
                    why.wrong_zone.append((s, itype))
                    continue
                prices = site.price_per_gpu_hour
                if prices and itype not in prices:
                    why.unpriced.append((s, itype))
                    continue
                price = prices[itype] if prices else 0.0
                pool_options.append(_option(pool, p, s, site, rank, itype, fact, price, site_domain[s], carbon_price))
        options.append(pool_options)
        spot_options.append(_spot_options(pool, p, scope, sites, facts, site_domain, carbon_price))
        in_scope.append(scope)
        exclusions.append(why)
    unpriced = [s for s, site in enumerate(sites) if not site.price_per_gpu_hour]
    return Candidates(problem, facts, options, in_scope, exclusions, domains, site_domain, unpriced, spot_options)


def _spot_options(pool: PoolSpec, p: int, scope: list[int], sites: list[Site], facts: Mapping[str, InstanceFacts],
                  site_domain: list[int], carbon_price: float) -> list[Option]:
    """The usable spot options of an inference pool with a spot share: a type a site prices as spot."""
    if pool.role != "inference" or pool.spot is None or pool.spot.max_fraction == 0:
        return []
    out: list[Option] = []
    for s in scope:
        site = sites[s]
        for rank, itype in enumerate(pool.instance_types):
            fact = facts[itype]
            price = site.spot_price_per_gpu_hour.get(itype)
            if price is None or fact.cloud != site.cloud:
                continue
            option = _option(pool, p, s, site, rank, itype, fact, price, site_domain[s], carbon_price, spot=True)
            if option.usable:
                out.append(option)
    return out


def _option(pool: PoolSpec, p: int, s: int, site: Site, rank: int, itype: str, fact: InstanceFacts, price: float,
            domain: int, carbon_price: float, *, spot: bool = False) -> Option:
    """Pool p's option of ``itype`` at site s, on-demand or spot, at ``price`` per GPU-hour plus its carbon."""
    node_kw = site.node_power_kw.get(itype, fact.node_power_kw)
    site_kw = node_kw * site.pue
    carbon_usd = carbon_price * site_kw * (site.carbon_g_per_kwh or 0.0) / 1e6
    return Option(pool=p, site=s, instance_type=itype, rank=rank, gpu=fact.gpu, gpus=fact.gpus, node_kw=node_kw,
                  site_kw=site_kw, cost_per_node_hour=fact.gpus * price + carbon_usd, domain=domain,
                  usable=_usable(pool, site, fact, site_kw, site.spot_quota_gpus if spot else site.quota_gpus),
                  spot=spot)


def _usable(pool: PoolSpec, site: Site, fact: InstanceFacts, site_kw: float, quotas: Mapping[str, int]) -> bool:
    """False when the site's GPU quota (on-demand or spot) or its power envelope cannot hold the option's
    smallest use: a training pool's nodes, or one serving node."""
    quota = quotas.get(fact.gpu)
    nodes = pool.nodes if pool.role == "training" else 1
    if quota is not None and nodes * fact.gpus > quota:
        return False
    return nodes * site_kw <= 1000.0 * site.power_mw


@dataclass
class SlackColumn:
    """A slack column of the relaxed program: a power row (gpu None) or a quota row."""

    column: int
    site: int
    gpu: str | None


@dataclass
class Formulation:
    """The matrices handed to ``scipy.optimize.milp``, and what each column means."""

    c: np.ndarray
    integrality: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rows: LinearConstraint | None
    option_columns: list[tuple[Option, int]]
    slack_columns: list[SlackColumn]
    # the spot part's column z_o of an on-demand option's column x_o (x_o counts all of o's nodes)
    spot_of: dict[int, int] = field(default_factory=dict)

    @property
    def n_columns(self) -> int:
        return int(self.c.size)


class _Builder:
    """Accumulates columns and rows in COO form."""

    def __init__(self) -> None:
        self.c: list[float] = []
        self.integrality: list[int] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.row_idx: list[int] = []
        self.col_idx: list[int] = []
        self.values: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def column(self, cost: float, lower: float, upper: float, integer: bool) -> int:
        self.c.append(cost)
        self.lower.append(lower)
        self.upper.append(upper)
        self.integrality.append(1 if integer else 0)
        return len(self.c) - 1

    def row(self, entries: Sequence[tuple[int, float]], lower: float, upper: float) -> None:
        r = len(self.row_lower)
        for col, value in entries:
            self.row_idx.append(r)
            self.col_idx.append(col)
            self.values.append(value)
        self.row_lower.append(lower)
        self.row_upper.append(upper)

    def build(self, option_columns: list[tuple[Option, int]], slack_columns: list[SlackColumn],
              spot_of: dict[int, int]) -> Formulation:
        import numpy as np

        n_rows, n_cols = len(self.row_lower), len(self.c)
        rows = None
        if n_rows:
            from scipy.optimize import LinearConstraint
            from scipy.sparse import coo_matrix  # type: ignore[import-untyped]

            matrix = coo_matrix((self.values, (self.row_idx, self.col_idx)), shape=(n_rows, n_cols)).tocsr()
            rows = LinearConstraint(matrix, np.array(self.row_lower), np.array(self.row_upper))
        return Formulation(
            c=np.array(self.c, dtype=float),
            integrality=np.array(self.integrality, dtype=int),
            lower=np.array(self.lower, dtype=float),
            upper=np.array(self.upper, dtype=float),
            rows=rows,
            option_columns=option_columns,
            slack_columns=slack_columns,
            spot_of=spot_of,
        )


def formulate(cands: Candidates, *, relaxed: bool = False, forbidden: frozenset[tuple[int, str | None]] = frozenset()) -> Formulation:
    """Build the placement program (see the module docstring for the notation).

    Args:
        cands: candidate options.
        relaxed: build the relaxed program with slack on every power and quota row.
        forbidden: in the relaxed program, (site, gpu) slacks fixed at 0 (gpu None for power), to
            look for alternative relaxations.

    Returns:
        The formulation. With ``relaxed=False`` a training pool without usable options makes the
        program infeasible (an empty choice row), which the caller should catch before solving.
    """
    sites, pools = cands.sites, cands.pools
    n_sites = len(sites)
    max_rank = max((len(p.instance_types) for p in pools), default=1)
    tie_scale = (SLACK_TIE_BREAK if relaxed else TIE_BREAK_USD_PER_NODE) / (max_rank * n_sites + n_sites + 1)

    b = _Builder()
    option_columns: list[tuple[Option, int]] = []
    power_rows: list[list[tuple[int, float]]] = [[] for _ in sites]
    quota_rows: list[dict[str, list[tuple[int, float]]]] = [{} for _ in sites]
    spot_quota_rows: list[dict[str, list[tuple[int, float]]]] = [{} for _ in sites]
    spot_of: dict[int, int] = {}

    for p, pool in enumerate(pools):
        if pool.nodes == 0:
            continue
        opts = cands.options[p] if relaxed else cands.usable(p)
        spot_opts = [] if relaxed or p >= len(cands.spot_options) else cands.spot_options[p]
        n = pool.nodes
        training = pool.role == "training"
        cols: list[tuple[Option, int]] = []
        held: list[int] = []  # columns of the pool's nodes (on-demand + spot on a shared option, or spot alone)
        spot_cols: list[int] = []
        by_domain: dict[int, list[int]] = {}
        shared: dict[tuple[int, str], tuple[Option, int]] = {}
        for o in [*opts, *spot_opts]:
            tie = tie_scale * (o.rank * n_sites + o.site + 1)
            per_node = tie if relaxed else o.cost_per_node_hour + tie
            twin = shared.get((o.site, o.instance_type)) if o.spot else None
            if twin is not None:  # spot part z of an on-demand option's nodes x: z ≤ x, priced as the discount
                od, x = twin
                col = b.column(o.cost_per_node_hour - od.cost_per_node_hour, 0.0, float(n), integer=True)
                b.row([(x, 1.0), (col, -1.0)], 0.0, float(n))  # at most N_p on-demand, as without spot
                b.upper[x] = 2.0 * n
                spot_of[x] = col
                quotas = sites[o.site].quota_gpus
                if o.gpu in quotas:
                    quota_rows[o.site].setdefault(o.gpu, []).append((col, -float(o.gpus)))
            elif training:
                col = b.column(n * per_node, 0.0, 1.0, integer=True)
            else:
                col = b.column(per_node, 0.0, float(n), integer=True)
                held.append(col)
                by_domain.setdefault(o.domain, []).append(col)
                if not o.spot:
                    shared[(o.site, o.instance_type)] = (o, col)
            cols.append((o, col))
            if o.spot:
                spot_cols.append(col)
            scale = float(n) if training else 1.0
            if twin is None:
                power_rows[o.site].append((col, scale * o.site_kw))
            quotas, rows = ((sites[o.site].spot_quota_gpus, spot_quota_rows) if o.spot
                            else (sites[o.site].quota_gpus, quota_rows))
            if o.gpu in quotas:
                rows[o.site].setdefault(o.gpu, []).append((col, scale * o.gpus))
        option_columns.extend(cols)
        if training:
            b.row([(col, 1.0) for _, col in cols], 1.0, 1.0)
            continue
        total = b.column(0.0, float(n), inf, integer=False)
        b.row([(col, 1.0) for col in held] + [(total, -1.0)], 0.0, 0.0)
        loads = {d: [(col, 1.0) for col in cols_d] for d, cols_d in by_domain.items()}
        _survival_rows(b, [(total, 1.0)], loads, pool.losses, float(n))
        if spot_cols and pool.spot is not None:
            r = pool.spot.reclaim_fraction
            b.row([(col, 1.0) for col in spot_cols] + [(total, -pool.spot.max_fraction)], -inf, 0.0)
            kept = [(total, 1.0)] + [(col, -r) for col in spot_cols]  # on-demand + (1 − r) · spot
            for o, col in cols:
                if o.spot:
                    loads[o.domain].append((col, -r))
            _survival_rows(b, kept, loads, pool.losses, float(pool.floor_nodes))
            b.row(kept, float(pool.floor_nodes), inf)

    slack_columns: list[SlackColumn] = []
    for s, site in enumerate(sites):
        entries = power_rows[s]
        if entries:
            limit_kw = 1000.0 * site.power_mw
            if relaxed:
                upper = 0.0 if (s, None) in forbidden else inf
                weight = SLACK_WEIGHT / max(site.power_mw, POWER_FLOOR_MW)
                slack = b.column(weight, 0.0, upper, integer=False)
                slack_columns.append(SlackColumn(slack, s, None))
                entries = entries + [(slack, -1000.0)]
            b.row(entries, -inf, limit_kw)
        for gpu in sorted(quota_rows[s]):
            entries = quota_rows[s][gpu]
            quota = float(site.quota_gpus[gpu])
            if relaxed:
                upper = 0.0 if (s, gpu) in forbidden else inf
                slack = b.column(SLACK_WEIGHT / max(quota, QUOTA_FLOOR_GPUS), 0.0, upper, integer=False)
                slack_columns.append(SlackColumn(slack, s, gpu))
                entries = entries + [(slack, -1.0)]
            b.row(entries, -inf, quota)
        for gpu in sorted(spot_quota_rows[s]):
            b.row(spot_quota_rows[s][gpu], -inf, float(site.spot_quota_gpus[gpu]))
    return b.build(option_columns, slack_columns, spot_of)


def _survival_rows(b: _Builder, kept: list[tuple[int, float]], loads: Mapping[int, list[tuple[int, float]]],
                   k: int, need: float) -> None:
    """Rows saying ``kept`` less the loads of any ``k`` failure domains is at least ``need``: one row
    per domain for k = 1, the λ/μ rows of the module docstring for k ≥ 2, none for k = 0."""
    if k == 1:
        for d in sorted(loads):
            b.row(kept + [(col, -coef) for col, coef in loads[d]], need, inf)
    elif k >= 2:
        lam = b.column(0.0, 0.0, inf, integer=False)
        mus = [b.column(0.0, 0.0, inf, integer=False) for _ in sorted(loads)]
        b.row(kept + [(lam, -float(k))] + [(mu, -1.0) for mu in mus], need, inf)
        for mu, d in zip(mus, sorted(loads)):
            b.row([(mu, 1.0), (lam, 1.0)] + [(col, -coef) for col, coef in loads[d]], 0.0, inf)


def run(form: Formulation, *, time_limit_s: float, mip_rel_gap: float) -> OptimizeResult:
    """Solve a formulation with HiGHS.

    Args:
        form: the program.
        time_limit_s: wall-clock limit for HiGHS, in seconds.
        mip_rel_gap: relative gap at which HiGHS stops.

    Returns:
        scipy's result (``status`` 0 optimal, 1 limit reached, 2 infeasible, 3 unbounded, 4 other;
        ``x``, ``mip_gap``).
    """
    from scipy.optimize import Bounds, milp

    constraints = [form.rows] if form.rows is not None else []
    with _quiet_native_stdout():
        return milp(
            form.c,
            integrality=form.integrality,
            bounds=Bounds(form.lower, form.upper),
            constraints=constraints,
            options={"time_limit": max(time_limit_s, 0.01), "mip_rel_gap": mip_rel_gap, "presolve": True},
        )


@contextlib.contextmanager
def _quiet_native_stdout() -> Iterator[None]:
    """Silence what HiGHS' C++ code writes to file descriptor 1 while it solves.

    scipy's ``disp=False`` does not cover every message (some builds print
    ``HighsMipSolverData::transformNewIntegerFeasibleSolution`` lines), and anything on stdout
    would corrupt ``--json`` output.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured or replaced stdout: nothing native to hide
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


def decode(form: Formulation, cands: Candidates, x: np.ndarray) -> list[tuple[Option, int]]:
    """Nodes per option from a solution vector, in (pool, site, preference) order, zeros dropped."""
    placed: list[tuple[Option, int]] = []
    for o, col in form.option_columns:
        value = float(x[col]) - (float(x[form.spot_of[col]]) if col in form.spot_of else 0.0)
        nodes = cands.pools[o.pool].nodes * round(value) if cands.pools[o.pool].role == "training" else round(value)
        if nodes > 0:
            placed.append((o, int(nodes)))
    placed.sort(key=lambda item: (item[0].pool, item[0].site, item[0].spot, item[0].rank))
    return placed
