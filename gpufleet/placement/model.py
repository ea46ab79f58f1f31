"""Input and output types of the placement solver, and the checks that turn bad input into SpecError.

Pure: no I/O, no solver. ``PlacementProblem`` mirrors the JSON that ``gpufleet place --input`` reads;
``PlacementResult`` is what the solver returns and ``to_json()`` the JSON it prints.

Validation happens in two passes, each of which collects every issue before raising once:

1. ``parse_problem`` runs the pydantic models (``extra="forbid"``, strict types, finite numbers;
   the sites are the fleet spec's :class:`~gpufleet.spec.Site`) and turns each pydantic error into
   an :class:`~gpufleet.errors.Issue` whose ``loc`` is a field path such as ``pools[2].nodes``
   (:func:`gpufleet.validation.issues_from_validation`, as the fleet spec does).
2. ``check_problem`` checks what one field cannot see alone: unique names, instance types known to the
   catalog (or to the caller's ``instance_facts``), prices keyed by a type of the site's cloud, quota
   keyed by a known GPU model, regions and zones that name a site, and fields that only apply to one
   pool role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from gpufleet.capacity import SpotSpec
from gpufleet.errors import BindingConstraint, InfeasiblePlanError, Issues, SpecError
from gpufleet.spec import InferenceLoad, Site, SiteLosses
from gpufleet.validation import StrictModel, did_you_mean, format_loc, issues_from_validation, repeated

Role = Literal["training", "inference"]
Status = Literal["optimal", "feasible", "infeasible", "time_limit"]

Name = Annotated[str, Field(min_length=1)]


class PoolSpec(StrictModel):
    """A group of identical nodes to place.

    Attributes:
        name: unique pool name.
        role: ``training`` (whole pool in one zone of one site, one instance type) or ``inference``
            (may be split over sites and types; survives the loss of ``survive_site_losses`` failure
            domains while still carrying ``nodes``).
        nodes: nodes the pool needs (for inference: its peak, which must survive site losses).
        instance_types: allowed instance types, most preferred first.
        regions: if given, only sites in these regions are candidates.
        sites: if given, only these sites (by name) are candidates.
        survive_site_losses: inference only; failure domains the pool must survive losing
            (default: the fleet spec's, ``InferenceLoad.survive_site_losses``: 0).
        zone: training only; pin the pool to this zone (default: the site's first zone).
        spot: inference only; the share of the pool's nodes that may be spot where a site prices the
            type as spot (``Site.spot_price_per_gpu_hour``), and the share of them reclaimed at once.
        peak_nodes: inference with ``spot``: nodes that must remain after the reclaim (the forecast
            peak; default ``nodes``, which leaves no room for spot when all of it may be reclaimed).
    """

    name: str = Field(min_length=1)
    role: Role
    nodes: int = Field(ge=0)
    instance_types: list[Name] = Field(min_length=1)
    regions: list[Name] | None = None
    sites: list[Name] | None = None
    survive_site_losses: SiteLosses | None = None
    zone: str | None = Field(default=None, min_length=1)
    spot: SpotSpec | None = None
    peak_nodes: int | None = Field(default=None, ge=0)

    @property
    def floor_nodes(self) -> int:
        """Nodes the pool keeps after the declared spot reclaim: ``peak_nodes``, at most ``nodes``."""
        return self.nodes if self.peak_nodes is None else min(self.peak_nodes, self.nodes)

    @property
    def losses(self) -> int:
        """Failure domains an inference pool must survive losing (0 for training)."""
        if self.role == "training":
            return 0
        if self.survive_site_losses is None:
            default: int = InferenceLoad.model_fields["survive_site_losses"].default
            return default
        return self.survive_site_losses


class PlacementProblem(StrictModel):
    """Sites, pools and the carbon price: everything the solver needs besides instance facts.

    Attributes:
        sites: candidate sites, in a fixed order (ties are broken towards earlier sites).
        pools: pools to place.
        carbon_price_per_tonne: USD per tonne CO2e added to the hourly cost (0 or absent: ignore).
    """

    sites: list[Site] = Field(min_length=1)
    pools: list[PoolSpec]
    carbon_price_per_tonne: float | None = Field(default=None, ge=0)


@dataclass(frozen=True)
class InstanceFacts:
    """What the solver needs to know about one instance type.

    Attributes:
        instance_type: provider name, e.g. ``p5.48xlarge``.
        cloud: provider (``aws``, ``azure``, ``gcp``).
        gpu: GPU model, the key of site quotas (``H100``).
        gpus: GPUs per node.
        node_power_kw: whole-node IT draw in kW (before PUE).
    """

    instance_type: str
    cloud: str
    gpu: str
    gpus: int
    node_power_kw: float


@dataclass(frozen=True)
class Assignment:
    """Nodes of one pool on one instance type in one zone of one site, on-demand or spot."""

    pool: str
    site: str
    zone: str
    instance_type: str
    nodes: int
    spot: bool = False

    def to_json(self) -> dict[str, Any]:
        """The assignment as a JSON object: ``pool``, ``site``, ``zone``, ``instance_type``, ``nodes``,
        and ``"spot": true`` on spot nodes (on-demand assignments keep the original five keys)."""
        out = asdict(self)
        if not self.spot:
            del out["spot"]
        return out


@dataclass
class PlacementResult:
    """The solver's answer.

    Attributes:
        status: ``optimal`` (proved within ``mip_rel_gap``), ``feasible`` (the time limit stopped the
            search with a placement in hand; ``mip_gap`` says how far from optimal it may be),
            ``infeasible`` (no placement exists; see ``explanation`` and ``binding``) or
            ``time_limit`` (the time limit stopped the search before any placement was found).
        assignments: the placement, ordered by pool, site, zone and preference.
        cost_per_hour: USD per hour of the placement (GPU-hours plus carbon), or None without one.
        carbon_tonnes_per_hour: tonnes CO2e per hour, for sites with a carbon intensity.
        site_power_mw: power drawn at the meter (IT × PUE) per site, in MW, every site listed.
        explanation: why nothing fits, and notes (such as sites without a price table).
        binding: the smallest relaxation of power or quota limits that makes the problem feasible,
            or the structural reason it cannot be (kinds ``regions``, ``zones``, ``instance_type``).
        alternatives: other relaxations that would work instead of ``binding``.
        mip_gap: relative gap HiGHS reported for the returned placement (None when none).
        solve_seconds: wall-clock time of the solve, in seconds.
    """

    status: Status
    assignments: list[Assignment]
    cost_per_hour: float | None
    site_power_mw: dict[str, float]
    explanation: str = ""
    binding: list[BindingConstraint] = field(default_factory=list)
    alternatives: list[list[BindingConstraint]] = field(default_factory=list)
    mip_gap: float | None = None
    solve_seconds: float = 0.0
    carbon_tonnes_per_hour: float | None = None

    @property
    def ok(self) -> bool:
        """True when the result carries a placement (``optimal`` or ``feasible``)."""
        return self.status in ("optimal", "feasible")

    def to_json(self, *, include_timing: bool = False) -> dict[str, Any]:
        """The result as the documented JSON object.

        Args:
            include_timing: add ``solve_seconds``. Off by default so the same input always gives
                byte-identical JSON.

        Returns:
            A JSON-serialisable dict with keys ``status``, ``assignments``, ``cost_per_hour``,
            ``site_power_mw``, ``mip_gap``, ``carbon_tonnes_per_hour``, ``binding`` and
            ``alternatives``, plus ``explanation`` when there is one.
        """
        out: dict[str, Any] = {
            "status": self.status,
            "assignments": [a.to_json() for a in self.assignments],
            "cost_per_hour": self.cost_per_hour,
            "carbon_tonnes_per_hour": self.carbon_tonnes_per_hour,
            "site_power_mw": dict(self.site_power_mw),
            "mip_gap": self.mip_gap,
            "binding": [_binding_json(b) for b in self.binding],
            "alternatives": [[_binding_json(b) for b in alt] for alt in self.alternatives],
        }
        if self.explanation:
            out["explanation"] = self.explanation
        if include_timing:
            out["solve_seconds"] = self.solve_seconds
        return out

    def raise_if_infeasible(self) -> None:
        """Raise InfeasiblePlanError unless the result carries a placement.

        Raises:
            InfeasiblePlanError: with ``explanation`` and ``binding`` of this result.
        """
        if not self.ok:
            raise InfeasiblePlanError(self.explanation, self.binding)


def _binding_json(b: BindingConstraint) -> dict[str, Any]:
    return {"kind": b.kind, "where": b.where, "shortfall": b.shortfall, "unit": b.unit, "detail": b.detail}


# --------------------------------------------------------------------------------------------------
# Pass 1: pydantic, with field paths
# --------------------------------------------------------------------------------------------------


def parse_problem(data: object, source: str = "") -> PlacementProblem:
    """Validate JSON-like data into a PlacementProblem, reporting every field error at once.

    Args:
        data: the decoded JSON document.
        source: where the data came from (a file name), for messages.

    Returns:
        The validated problem (not yet checked against instance facts; see ``check_problem``).

    Raises:
        SpecError: with one Issue per bad field, each naming the field path, the bad value and what
            is allowed.
    """
    try:
        return PlacementProblem.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, PlacementProblem, name_unknown=False), source=source) from None


# --------------------------------------------------------------------------------------------------
# Pass 2: cross-field checks and instance facts
# --------------------------------------------------------------------------------------------------


def check_problem(
    problem: PlacementProblem,
    facts: Mapping[str, InstanceFacts],
    *,
    source: str = "",
    unknown_type_hint: str = "",
    missing_power: Iterable[str] = (),
) -> None:
    """Check what single fields cannot: names, instance types, regions, sites, zones, role-only fields.

    Args:
        problem: a problem that passed ``parse_problem``.
        facts: the instance types the solver knows.
        source: file name for messages.
        unknown_type_hint: what to suggest for an unknown instance type.
        missing_power: instance types known to the catalog but without a node power figure.

    Raises:
        SpecError: every issue found, at once.
    """
    issues = Issues(source=source)
    no_power = set(missing_power)
    type_hint = unknown_type_hint or ", ".join(sorted(facts))
    gpu_models = sorted({f.gpu for f in facts.values()})

    def check_type(loc: str, name: str) -> InstanceFacts | None:
        if name in facts:
            return facts[name]
        if name in no_power:
            issues.add(loc, f"instance type {name!r} has no node_power_kw in the catalog", "a type with a node power figure")
        else:
            issues.add(loc, f"unknown instance type {name!r}{did_you_mean(name, facts)}", type_hint)
        return None

    site_names = [s.name for s in problem.sites]
    for i, first in repeated(site_names):
        issues.add(f"sites[{i}].name", f"duplicate site name {site_names[i]!r} (also sites[{first}])", "unique names")
    pool_names = [p.name for p in problem.pools]
    for i, first in repeated(pool_names):
        issues.add(f"pools[{i}].name", f"duplicate pool name {pool_names[i]!r} (also pools[{first}])", "unique names")
    for i, site in enumerate(problem.sites):
        loc = f"sites[{i}]"
        if len(set(site.zones)) != len(site.zones):
            issues.add(f"{loc}.zones", f"duplicate zones in {site.zones!r}", "distinct zone names")
        for quotas in ("quota_gpus", "spot_quota_gpus"):
            for gpu in getattr(site, quotas):
                if gpu not in gpu_models:
                    issues.add(format_loc((gpu,), f"{loc}.{quotas}"), f"unknown GPU model {gpu!r}{did_you_mean(gpu, gpu_models)}", ", ".join(gpu_models))
        for table in ("price_per_gpu_hour", "spot_price_per_gpu_hour", "node_power_kw"):
            for itype in getattr(site, table):
                ploc = format_loc((itype,), f"{loc}.{table}")
                fact = check_type(ploc, itype)
                if fact is not None and fact.cloud != site.cloud:
                    issues.add(ploc, f"{itype!r} runs on {fact.cloud}, but site {site.name!r} is on {site.cloud}", f"{site.cloud} instance types")

    regions = {s.region for s in problem.sites}
    all_zones = {z for s in problem.sites for z in s.zones}
    for i, pool in enumerate(problem.pools):
        loc = f"pools[{i}]"
        if len(set(pool.instance_types)) != len(pool.instance_types):
            issues.add(f"{loc}.instance_types", f"duplicate instance types in {pool.instance_types!r}", "each type once")
        for t, itype in enumerate(pool.instance_types):
            check_type(f"{loc}.instance_types[{t}]", itype)
        for r, region in enumerate(pool.regions or []):
            if region not in regions:
                issues.add(f"{loc}.regions[{r}]", f"no site is in region {region!r}{did_you_mean(region, regions)}", ", ".join(sorted(regions)))
        for r, name in enumerate(pool.sites or []):
            if name not in site_names:
                issues.add(f"{loc}.sites[{r}]", f"no site is named {name!r}{did_you_mean(name, site_names)}", "names of sites[]")
        if pool.role == "training" and pool.survive_site_losses is not None:
            issues.add(f"{loc}.survive_site_losses", f"applies to inference pools only, got {pool.survive_site_losses} on a training pool", "omit it for training pools")
        for field_name in ("spot", "peak_nodes"):
            if pool.role == "training" and getattr(pool, field_name) is not None:
                issues.add(f"{loc}.{field_name}", "applies to inference pools only", "omit it for training pools")
        if pool.zone is not None:
            if pool.role != "training":
                issues.add(f"{loc}.zone", f"applies to training pools only, got {pool.zone!r} on an inference pool", "omit it for inference pools")
            elif pool.zone not in all_zones:
                issues.add(f"{loc}.zone", f"no site has zone {pool.zone!r}{did_you_mean(pool.zone, all_zones)}", "a zone listed by a site")
    issues.raise_if_any()

