"""Why a placement problem has no solution, in capacity-planner terms.

Two kinds of reasons:

* Structural, found before any solve: a pool with no option at all (no site of the type's cloud in
  its regions, the type unpriced everywhere it could go, a pinned zone that no suitable site has),
  or an inference pool asked to survive losing at least as many failure domains as it can use. No
  amount of power or quota fixes these, so they are reported as they are.
* Capacity: options exist but power envelopes and GPU quotas cannot hold them all. The solver then
  solves the relaxed program (``milp.formulate(relaxed=True)``) whose slack variables say how much
  more power (MW) or quota (GPUs) each site needs; the non-zero slacks are the binding constraints.
  Fixing those slacks at zero and solving again gives alternative relaxations.

Pure apart from the HiGHS solves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from gpufleet.errors import BindingConstraint
from gpufleet.placement.milp import Candidates, Option, decode, formulate, run

_MAX_NAMES = 5


def _names(names: Iterable[str]) -> str:
    items = list(dict.fromkeys(names))
    if len(items) <= _MAX_NAMES:
        return ", ".join(items)
    return f"{', '.join(items[:_MAX_NAMES])} and {len(items) - _MAX_NAMES} more"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def mw_text(mw: float) -> str:
    """MW rounded up to 0.1, as a capacity planner would ask for it."""
    return f"{math.ceil(mw * 10 - 1e-9) / 10:,.1f}"


@dataclass
class Structural:
    """Reasons that no power or quota relaxation can fix."""

    reasons: list[str]
    binding: list[BindingConstraint]
    survival_pools: list[int]


def structural(cands: Candidates) -> Structural:
    """Find pools that cannot be placed whatever the capacity.

    Args:
        cands: candidate options.

    Returns:
        The reasons (one sentence each) and one BindingConstraint per reason, with kind ``regions``
        (no site of the right cloud in the pool's regions, or too few failure domains),
        ``instance_type`` (the types are not priced where they could run) or ``zones``.
    """
    out = Structural([], [], [])
    for p, pool in enumerate(cands.pools):
        if pool.nodes == 0:
            continue
        opts = cands.options[p]
        if not opts:
            text, kind = _no_option_reason(cands, p)
            out.reasons.append(text)
            out.binding.append(BindingConstraint(kind, pool.name, 1, "sites", text))
            continue
        k = pool.losses
        domains = sorted({o.domain for o in opts})
        if pool.role == "inference" and k >= len(domains):
            names = _names(cands.domains[d] for d in domains)
            text = (
                f"inference pool {pool.name!r} must survive losing {_plural(k, 'failure domain')} "
                f"but its candidate sites span only {len(domains)} ({names}); add sites in other "
                f"failure domains to its regions or lower survive_site_losses"
            )
            out.reasons.append(text)
            out.binding.append(BindingConstraint("regions", pool.name, k + 1 - len(domains), "sites", text))
            out.survival_pools.append(p)
    return out


def _no_option_reason(cands: Candidates, p: int) -> tuple[str, str]:
    pool = cands.pools[p]
    sites = cands.sites
    scope = cands.in_scope[p]
    limits = []
    if pool.regions is not None:
        limits.append(f"regions {_names(pool.regions)}")
    if pool.sites is not None:
        limits.append(f"sites {_names(pool.sites)}")
    where = " and ".join(limits) if limits else "the problem"
    parts: list[str] = []
    kinds: set[str] = set()
    for itype in pool.instance_types:
        cloud = cands.facts[itype].cloud
        same_cloud = [s for s in scope if sites[s].cloud == cloud]
        if not same_cloud:
            parts.append(f"{itype} runs on {cloud} and no {cloud} site is in {where}")
            kinds.add("regions")
            continue
        zoned = [s for s in same_cloud if pool.zone is None or pool.zone in sites[s].zones]
        if not zoned:
            parts.append(f"no {cloud} site in {where} has zone {pool.zone}")
            kinds.add("zones")
            continue
        parts.append(f"{itype} has no price at {_names(sites[s].name for s in zoned)}, so it is not offered there")
        kinds.add("instance_type")
    kind = next(k for k in ("instance_type", "zones", "regions") if k in kinds)
    text = f"{pool.role} pool {pool.name!r} has no candidate site: " + "; ".join(parts)
    return text, kind


def oversized_training(cands: Candidates) -> list[str]:
    """Training pools that no single site can hold within its own limits, in words."""
    out: list[str] = []
    for p, pool in enumerate(cands.pools):
        if pool.role != "training" or pool.nodes == 0 or not cands.options[p] or cands.usable(p):
            continue
        parts = []
        for itype in pool.instance_types:
            opts = [o for o in cands.options[p] if o.instance_type == itype]
            if not opts:
                continue
            first = opts[0]
            gpus_needed = pool.nodes * first.gpus
            mw_needed = [pool.nodes * o.site_kw / 1000 for o in opts]
            quotas = [(cands.sites[o.site].quota_gpus.get(o.gpu), o) for o in opts]
            best_quota = max((q for q, _ in quotas if q is not None), default=None)
            best_power = max(opts, key=lambda o: (cands.sites[o.site].power_mw, -o.site))
            text = f"on {itype} it needs {gpus_needed:,} {first.gpu} and {mw_text(min(mw_needed))} MW"
            if best_quota is not None and all(q is not None for q, _ in quotas):
                at = next(cands.sites[o.site].name for q, o in quotas if q == best_quota)
                text += f"; the largest {first.gpu} quota is {best_quota:,} at {at}"
            text += f"; the largest envelope is {cands.sites[best_power.site].power_mw:g} MW at {cands.sites[best_power.site].name}"
            parts.append(text)
        out.append(f"training pool {pool.name!r} ({pool.nodes} nodes) is larger than any single site allows: " + "; ".join(parts))
    return out


def price_notes(cands: Candidates, pools: Iterable[int]) -> list[str]:
    """Say which instance types the given pools could not use at which sites for lack of a price.

    One note per instance type and set of sites, naming every pool it affects.
    """
    grouped: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for p in sorted(set(pools)):
        by_type: dict[str, list[int]] = {}
        for s, itype in cands.exclusions[p].unpriced:
            by_type.setdefault(itype, []).append(s)
        for itype, excluded in by_type.items():
            grouped.setdefault((itype, tuple(excluded)), []).append(cands.pools[p].name)
    out = []
    for (itype, at), names in grouped.items():
        where = _names(cands.sites[s].name for s in at)
        label = "pools" if len(names) > 1 else "pool"
        out.append(f"{itype} has no price at {where}, so {label} {_names(names)} cannot use it there")
    return out


def unpriced_note(cands: Candidates) -> str:
    """A note for sites without a price table, or an empty string."""
    if not cands.unpriced_sites:
        return ""
    names = _names(cands.sites[s].name for s in cands.unpriced_sites)
    return f"no price table at {names}: their prices count as 0 (unknown), so the cost leaves them out"


@dataclass
class Relaxation:
    """One way to relax power and quota limits so that a placement exists."""

    binding: list[BindingConstraint]
    pools: list[int]
    proven: bool = True  # False when the time limit stopped HiGHS before it proved this the smallest

    def phrase(self) -> str:
        """``needs 3.4 MW more power at us-east and 512 more H100 quota at eastus``."""
        return "needs " + " and ".join(_phrase(b) for b in self.binding)


def _phrase(b: BindingConstraint) -> str:
    if b.kind == "power":
        return f"{mw_text(b.shortfall)} MW more power at {b.where}"
    site, _, gpu = b.where.rpartition("/")
    return f"{b.shortfall:,.0f} more {gpu} quota at {site}"


def relaxations(
    cands: Candidates,
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    max_alternatives: int = 2,
) -> list[Relaxation]:
    """Smallest relaxations of power and quota that make the problem feasible, best first.

    The first comes from the relaxed program; each next one forbids the slacks used so far.

    Args:
        cands: candidate options (structurally feasible).
        time_limit_s: time budget for all relaxed solves together.
        mip_rel_gap: HiGHS relative gap.
        max_alternatives: how many further relaxations to look for.

    Returns:
        Relaxations, possibly empty if the budget ran out before the first.
    """
    deadline = time.perf_counter() + time_limit_s
    forbidden: set[tuple[int, str | None]] = set()
    found: list[Relaxation] = []
    while len(found) <= max_alternatives:
        remaining = deadline - time.perf_counter()
        if found and remaining <= 0:
            break
        form = formulate(cands, relaxed=True, forbidden=frozenset(forbidden))
        res = run(form, time_limit_s=max(remaining, 0.5), mip_rel_gap=mip_rel_gap)
        if res.x is None:
            break
        relaxation = _read_relaxation(cands, decode(form, cands, res.x))
        relaxation.proven = res.status == 0
        if not relaxation.binding:
            break
        found.append(relaxation)
        for b in relaxation.binding:
            site, _, gpu = b.where.rpartition("/") if b.kind == "quota" else (b.where, "", "")
            forbidden.add((_site_index(cands, site), gpu or None))
    return found


def _site_index(cands: Candidates, name: str) -> int:
    return next(s for s, site in enumerate(cands.sites) if site.name == name)


def _read_relaxation(cands: Candidates, placed: list[tuple[Option, int]]) -> Relaxation:
    load_kw: dict[int, float] = {}
    used: dict[tuple[int, str], int] = {}
    pools_at: dict[int, list[int]] = {}
    for o, nodes in placed:
        load_kw[o.site] = load_kw.get(o.site, 0.0) + nodes * o.site_kw
        used[(o.site, o.gpu)] = used.get((o.site, o.gpu), 0) + nodes * o.gpus
        pools_at.setdefault(o.site, [])
        if o.pool not in pools_at[o.site]:
            pools_at[o.site].append(o.pool)
    binding: list[BindingConstraint] = []
    involved: list[int] = []
    for s, site in enumerate(cands.sites):
        pool_names = ", ".join(cands.pools[p].name for p in pools_at.get(s, []))
        over_mw = load_kw.get(s, 0.0) / 1000 - site.power_mw
        if over_mw > 1e-6:
            shortfall = math.ceil(over_mw * 1000 - 1e-6) / 1000
            detail = f"envelope {site.power_mw:g} MW; the relaxed placement draws {load_kw[s] / 1000:,.3f} MW for pools {pool_names}"
            binding.append(BindingConstraint("power", site.name, shortfall, "MW", detail))
            involved += pools_at[s]
        for gpu in sorted(site.quota_gpus):
            over = used.get((s, gpu), 0) - site.quota_gpus[gpu]
            if over > 0:
                detail = f"quota {site.quota_gpus[gpu]:,} {gpu}; the relaxed placement uses {used[(s, gpu)]:,} for pools {pool_names}"
                binding.append(BindingConstraint("quota", f"{site.name}/{gpu}", over, "GPUs", detail))
                involved += pools_at[s]
    return Relaxation(binding, sorted(set(involved)))


def capacity_explanation(cands: Candidates, found: list[Relaxation]) -> str:
    """The explanation for a problem that only power or quota keeps from being feasible."""
    lines = ["No placement fits within the sites' power envelopes and GPU quotas."]
    lines += [f"- {text}." for text in oversized_training(cands)]
    if found:
        first = found[0]
        if first.proven:
            lines.append(f"Smallest relaxation that makes it feasible: {first.phrase()}.")
        else:
            lines.append(f"A relaxation that makes it feasible (the time limit stopped the search for the smallest): {first.phrase()}.")
        lines += [f"- {b.where}: {b.detail}." for b in first.binding]
        lines += [f"Alternatively: {alt.phrase()}." for alt in found[1:]]
        notes = price_notes(cands, (p for r in found for p in r.pools))
    else:
        lines.append("The relaxed program found no relaxation within the time limit; raise the time limit.")
        notes = price_notes(cands, range(len(cands.pools)))
    lines += [f"Note: {text}." for text in notes]
    return "\n".join(lines)


def structural_explanation(cands: Candidates, found: Structural) -> str:
    """The explanation for a structurally infeasible problem."""
    lines = ["No placement exists whatever the power and quota:"]
    lines += [f"- {text}." for text in found.reasons]
    return "\n".join(lines)
