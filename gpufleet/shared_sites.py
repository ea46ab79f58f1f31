"""Sites shared by several stacks: every stack's draw added up against one envelope and one quota.

An organisation splits its fleet into stacks (per region, per team) while a data hall's power
envelope and a region's GPU quota are shared. Each stack is planned on its own (its placement sees
the whole envelope), so only the sum tells whether they fit together. Sites match by ``name``; a site
declared in two stacks must be declared alike (cloud, region, ``power_mw``, ``pue``, ``quota_gpus``),
else the input is contradictory and refused (exit 2, naming both files).

Two consumers, one sum (:func:`site_total`):

* ``gpufleet fleet check`` plans every stack (:func:`plan_stack`) and adds their plans' draws
  (:func:`check_fleet`); :func:`policy_configs` then writes, for each stack, what the *other* stacks
  draw at its shared sites, as config of the pack's ``shared-site-limits`` policy;
* that policy (:mod:`gpufleet.policy.shared`) adds the stack's own draw, read from its resources, to
  the others' from its config.

Draw is the facility draw at full scale (inference pools at their autoscaler maximum), in MW; GPUs
are counted per model at full scale. Pure apart from :func:`plan_stack` reading a stack file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpufleet.errors import EXIT_BAD_INPUT, EXIT_BLOCKED, EXIT_OK, InfeasiblePlanError, Issue, SpecError

if TYPE_CHECKING:
    from gpufleet.plan import FleetPlan

POLICY_NAME = "shared-site-limits"
"""The pack's policy that checks a stack's shared sites with the other stacks' draw."""
SCHEMA_VERSION = 1
_MW_TOLERANCE = 1e-9
_DECLARED = ("cloud", "region", "power_mw", "pue", "quota_gpus")


@dataclass(frozen=True)
class SiteDraw:
    """One stack's use of one site, and how that stack declares the site."""

    power_mw: float
    gpus: dict[str, int]
    declared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StackDraw:
    """A planned stack: what it draws at each site (sites it declares but leaves empty included)."""

    stack: str
    file: str
    sites: dict[str, SiteDraw]
    error: str = ""
    exit_code: int = EXIT_OK

    @property
    def gpus(self) -> int:
        return sum(sum(s.gpus.values()) for s in self.sites.values())

    @property
    def infeasible(self) -> bool:
        """The stack validates but has no feasible placement: its sites are declared (and checked
        against the other stacks' declarations), its draw is unknown and counted nowhere."""
        return self.exit_code == EXIT_BLOCKED


@dataclass(frozen=True)
class SiteTotal:
    """A site's envelope and quotas against the sum of every stack's draw there."""

    name: str
    power_mw: float
    quota_gpus: dict[str, int]
    draws: dict[str, tuple[float, dict[str, int]]]
    """stack → (MW, GPUs by model)."""
    not_counted: tuple[str, ...] = ()
    """Stacks that declare the site but have no feasible placement: their draw is not in the sums,
    which are then a lower bound."""

    @property
    def power_mw_used(self) -> float:
        return sum(mw for mw, _ in self.draws.values())

    @property
    def gpus_used(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, gpus in self.draws.values():
            for model, n in gpus.items():
                out[model] = out.get(model, 0) + n
        return dict(sorted(out.items()))

    @property
    def power_over_mw(self) -> float:
        over = self.power_mw_used - self.power_mw
        return over if over > _MW_TOLERANCE else 0.0

    @property
    def quota_over(self) -> dict[str, int]:
        """GPUs over quota by model (a model without a quota is unlimited)."""
        return {m: n - self.quota_gpus[m] for m, n in self.gpus_used.items()
                if m in self.quota_gpus and n > self.quota_gpus[m]}

    @property
    def over(self) -> bool:
        return bool(self.power_over_mw or self.quota_over)

    def problems(self) -> list[str]:
        """What is over, in words (empty when the site fits)."""
        who = ", ".join(f"{s} {mw:,.2f} MW" for s, (mw, _) in sorted(self.draws.items()))
        out = []
        if self.power_over_mw:
            out.append(f"{self.name}: {self.power_mw_used:,.2f} MW at full scale over {len(self.draws)} stack(s) "
                       f"exceeds the {self.power_mw:g} MW envelope by {self.power_over_mw:,.2f} MW ({who})")
        for model, over in self.quota_over.items():
            used = ", ".join(f"{s} {g.get(model, 0):,}" for s, (_, g) in sorted(self.draws.items()) if g.get(model))
            out.append(f"{self.name}: {self.gpus_used[model]:,} {model} over {len(self.draws)} stack(s) exceed the "
                       f"quota of {self.quota_gpus[model]:,} by {over:,} ({used})")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "power_mw_used": round(self.power_mw_used, 6),
            "power_mw": self.power_mw,
            "stacks": [{"name": s, "power_mw": round(mw, 6), "gpus": gpus} for s, (mw, gpus) in sorted(self.draws.items())],
            "over": self.over,
            "power_over_mw": round(self.power_over_mw, 6),
            "gpus_used": self.gpus_used,
            "quota_gpus": dict(self.quota_gpus),
            "quota_over": self.quota_over,
            "not_counted": list(self.not_counted),
        }


def site_total(name: str, power_mw: float, quota_gpus: Mapping[str, int],
               draws: Mapping[str, tuple[float, Mapping[str, int]]]) -> SiteTotal:
    """The one sum both ``fleet check`` and the pack use: ``draws`` is stack → (MW, GPUs by model)."""
    return SiteTotal(name, float(power_mw), dict(quota_gpus), {s: (float(mw), dict(g)) for s, (mw, g) in draws.items()})


# --- planning stacks --------------------------------------------------------------------------------


def plan_stack(path: str | Path) -> StackDraw:
    """Plan one stack (sizing and the placement MILP) and return its draw per site.

    Never raises for bad input or an infeasible plan: the failure travels back in
    :attr:`StackDraw.error` (this runs in worker processes, and gpufleet's errors carry structure
    that does not pickle). An infeasible stack still returns its declared sites (no draw).
    """
    from gpufleet.plan import build_plan
    from gpufleet.stackfile import read_stack

    plan: FleetPlan | None
    error = ""
    try:
        stack = read_stack(path)
        plan = build_plan(stack.spec, stack.name)
    except SpecError as exc:
        return StackDraw(stack=Path(path).name, file=str(path), sites={}, error=str(exc), exit_code=EXIT_BAD_INPUT)
    except InfeasiblePlanError as exc:
        plan, error = None, f"{path}: no feasible placement: {exc}"
    used = {s.name: s for s in plan.sites} if plan is not None else {}
    sites = {}
    for site in stack.spec.sites:
        declared = {k: getattr(site, k) for k in _DECLARED}
        declared["quota_gpus"] = dict(sorted(site.quota_gpus.items()))
        planned = used.get(site.name)
        sites[site.name] = SiteDraw(power_mw=planned.power_mw if planned else 0.0,
                                    gpus=dict(planned.gpus_by_model) if planned else {}, declared=declared)
    if plan is None:
        return StackDraw(stack=stack.name, file=str(path), sites=sites, error=error, exit_code=EXIT_BLOCKED)
    return StackDraw(stack=stack.name, file=str(path), sites=sites)


# --- adding them up ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetCheck:
    """Every shared site's total, and each stack's own figures."""

    stacks: list[StackDraw]
    sites: list[SiteTotal]

    @property
    def over(self) -> bool:
        return any(s.over for s in self.sites)

    @property
    def infeasible(self) -> list[StackDraw]:
        """Stacks with no feasible placement (their draw is counted nowhere)."""
        return [d for d in self.stacks if d.infeasible]

    @property
    def exit_code(self) -> int:
        return EXIT_BLOCKED if self.over or self.infeasible else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "over": self.over,
            "stacks": [{"name": d.stack, "file": d.file, "gpus": d.gpus,
                        "power_mw": round(sum(s.power_mw for s in d.sites.values()), 6),
                        "status": "infeasible" if d.infeasible else "planned",
                        **({"error": d.error} if d.infeasible else {})} for d in self.stacks],
            "sites": [s.to_json() for s in self.sites],
        }


def check_fleet(draws: Sequence[StackDraw]) -> FleetCheck:
    """Add every stack's draw per site (matched by name) against the site's envelope and quotas.

    A stack with no feasible placement (:attr:`StackDraw.infeasible`) has its site declarations
    checked like the others, but its draw is unknown: each of its sites lists it in
    :attr:`SiteTotal.not_counted`, and the check's exit code is 3.

    Raises:
        SpecError: a site declared differently in two stacks (both files named).
    """
    first: dict[str, StackDraw] = {}
    issues = []
    for draw in draws:
        for name, site in draw.sites.items():
            other = first.setdefault(name, draw)
            if other is draw:
                continue
            theirs = other.sites[name].declared
            differs = [k for k in _DECLARED if site.declared.get(k) != theirs.get(k)]
            if differs:
                what = "; ".join(f"{k} {theirs.get(k)!r} in {other.file}, {site.declared.get(k)!r} in {draw.file}"
                                 for k in differs)
                issues.append(Issue(f"sites.{name}", f"site {name!r} is declared differently in {other.file} and "
                                                     f"{draw.file}: {what}",
                                    "one declaration of a shared site: the same envelope, quotas, cloud, region "
                                    "and PUE in every stack (keep it in one fleet file all stacks include)"))
    if issues:
        raise SpecError(issues)
    totals = []
    for name in sorted(first):
        declared = first[name].sites[name].declared
        using = {d.stack: (d.sites[name].power_mw, d.sites[name].gpus) for d in draws
                 if name in d.sites and not d.infeasible}
        total = site_total(name, declared["power_mw"], declared["quota_gpus"], using)
        missing = tuple(d.stack for d in draws if name in d.sites and d.infeasible)
        totals.append(dataclasses.replace(total, not_counted=missing) if missing else total)
    return FleetCheck(stacks=list(draws), sites=totals)


def policy_configs(check: FleetCheck) -> dict[str, dict[str, Any]]:
    """For each stack, the ``shared-site-limits`` policy config: at each of its sites that other
    stacks use too, the site's envelope and quotas and what each other stack draws there."""
    out: dict[str, dict[str, Any]] = {}
    for draw in check.stacks:
        sites: dict[str, Any] = {}
        for total in check.sites:
            if draw.stack not in total.draws or len(total.draws) < 2:
                continue
            sites[total.name] = {
                "power_mw": total.power_mw,
                "quota_gpus": dict(total.quota_gpus),
                "other_stacks": {s: {"power_mw": round(mw, 6), "gpus": gpus}
                                 for s, (mw, gpus) in sorted(total.draws.items()) if s != draw.stack},
            }
        out[draw.stack] = {POLICY_NAME: {"sites": sites}}
    return out


__all__ = [
    "POLICY_NAME",
    "FleetCheck",
    "SiteDraw",
    "SiteTotal",
    "StackDraw",
    "check_fleet",
    "plan_stack",
    "policy_configs",
    "site_total",
]
