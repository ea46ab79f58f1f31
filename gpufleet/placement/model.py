"""Input and output types of the placement solver, and the checks that turn bad input into SpecError.

Pure: no I/O, no solver. ``PlacementProblem`` mirrors the JSON that ``gpufleet place --input`` reads;
``PlacementResult`` is what the solver returns and ``to_json()`` the JSON it prints.

Validation happens in two passes, each of which collects every issue before raising once:

1. ``parse_problem`` runs the pydantic models (``extra="forbid"``, strict types, finite numbers) and
   turns each pydantic error into an :class:`~gpufleet.errors.Issue` whose ``loc`` is a field path
   such as ``pools[2].nodes``.
2. ``check_problem`` checks what one field cannot see alone: unique names, instance types known to the
   catalog (or to the caller's ``instance_facts``), prices keyed by a type of the site's cloud, quota
   keyed by a known GPU model, regions and zones that name a site, and fields that only apply to one
   pool role.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, ValidationError

from gpufleet.errors import BindingConstraint, InfeasiblePlanError, Issue, Issues, SpecError

Role = Literal["training", "inference"]
Status = Literal["optimal", "feasible", "infeasible", "time_limit"]

_MODEL_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
Name = Annotated[str, Field(min_length=1)]


class SiteSpec(BaseModel):
    """A place GPUs can run: a cloud region or zone set, or a data hall.

    Attributes:
        name: unique site name, e.g. ``us-east-1`` or ``dc1-hall-b``.
        cloud: the provider whose instance types run here (``aws``, ``azure``, ``gcp``).
        region: the provider region; pools may restrict themselves to regions.
        zones: availability zones (or halls) of the site; a training pool uses exactly one.
        power_mw: power envelope at the meter, in MW (IT load × PUE must stay under it).
        pue: power usage effectiveness, >= 1.
        quota_gpus: GPU quota per GPU model; a missing model is unlimited, 0 means none.
        price_per_gpu_hour: USD per GPU-hour per instance type. A type without a price is not offered
            here; a site with no price table at all offers every type of its cloud at an unknown
            price (counted as 0 and noted in the result).
        carbon_g_per_kwh: grid carbon intensity in gCO2e/kWh, if known.
        failure_domain: sites sharing a failure domain fail together; defaults to the site itself.
        node_power_kw: measured whole-node draw (kW) by instance type at this site; overrides the
            instance facts (the catalog's estimate).
    """

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1)
    cloud: str = Field(min_length=1)
    region: str = Field(min_length=1)
    zones: list[Name] = Field(min_length=1)
    power_mw: float = Field(ge=0)
    pue: float = Field(ge=1.0)
    quota_gpus: dict[str, NonNegativeInt] = Field(default_factory=dict)
    price_per_gpu_hour: dict[str, NonNegativeFloat] | None = None
    carbon_g_per_kwh: float | None = Field(default=None, ge=0)
    failure_domain: str | None = Field(default=None, min_length=1)
    node_power_kw: dict[str, PositiveFloat] = Field(default_factory=dict)


class PoolSpec(BaseModel):
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
            (default 1).
        zone: training only; pin the pool to this zone (default: the site's first zone).
    """

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1)
    role: Role
    nodes: int = Field(ge=0)
    instance_types: list[Name] = Field(min_length=1)
    regions: list[Name] | None = None
    sites: list[Name] | None = None
    survive_site_losses: int | None = Field(default=None, ge=0)
    zone: str | None = Field(default=None, min_length=1)

    @property
    def losses(self) -> int:
        """Failure domains an inference pool must survive losing (0 for training)."""
        if self.role == "training":
            return 0
        return 1 if self.survive_site_losses is None else self.survive_site_losses


class PlacementProblem(BaseModel):
    """Sites, pools and the carbon price: everything the solver needs besides instance facts.

    Attributes:
        sites: candidate sites, in a fixed order (ties are broken towards earlier sites).
        pools: pools to place.
        carbon_price_per_tonne: USD per tonne CO2e added to the hourly cost (0 or absent: ignore).
    """

    model_config = _MODEL_CONFIG

    sites: list[SiteSpec] = Field(min_length=1)
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
    """Nodes of one pool on one instance type in one zone of one site."""

    pool: str
    site: str
    zone: str
    instance_type: str
    nodes: int

    def to_json(self) -> dict[str, Any]:
        """The assignment as a JSON object with the documented keys."""
        return {
            "pool": self.pool,
            "site": self.site,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "nodes": self.nodes,
        }


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

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_loc(loc: Iterable[int | str]) -> str:
    """Render a pydantic location as a field path: ``pools[2].nodes``, ``sites[0].price_per_gpu_hour["p5.48xlarge"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "(top level)"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that owns the field at ``loc`` (for listing allowed keys)."""
    if len(loc) == 1:
        return PlacementProblem
    if len(loc) == 3 and loc[0] == "sites":
        return SiteSpec
    if len(loc) == 3 and loc[0] == "pools":
        return PoolSpec
    return None


def _hint(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc)
        return "fields " + ", ".join(model.model_fields) if model else ""
    if kind == "missing":
        return "a required field"
    if kind == "literal_error":
        return str(ctx.get("expected", ""))
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
        bound = next(iter(ctx.values()), "")
        return f"a number {op[kind]} {bound}"
    if kind == "finite_number":
        return "a finite number"
    if kind.startswith("int"):
        return "an integer"
    if kind.startswith("float"):
        return "a number"
    if kind.startswith("string") or kind == "str_type":
        return "a non-empty string" if kind == "string_too_short" else "a string"
    if kind in ("too_short", "list_type"):
        return "a non-empty list" if kind == "too_short" else "a list"
    if kind in ("dict_type", "model_type"):
        return "a JSON object"
    return ""


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
        issues = []
        for err in exc.errors():
            loc = format_loc(err["loc"])
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown field"
            elif err["type"] != "missing":
                message = f"{message}, got {_show(err.get('input'))}"
            issues.append(Issue(loc, message, _hint(err)))
        raise SpecError(issues, source=source) from None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------------
# Pass 2: cross-field checks and instance facts
# --------------------------------------------------------------------------------------------------


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


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
            issues.add(loc, f"unknown instance type {name!r}{_did_you_mean(name, facts)}", type_hint)
        return None

    seen_sites: dict[str, int] = {}
    for i, site in enumerate(problem.sites):
        loc = f"sites[{i}]"
        if site.name in seen_sites:
            issues.add(f"{loc}.name", f"duplicate site name {site.name!r} (also sites[{seen_sites[site.name]}])", "unique names")
        seen_sites.setdefault(site.name, i)
        if len(set(site.zones)) != len(site.zones):
            issues.add(f"{loc}.zones", f"duplicate zones in {site.zones!r}", "distinct zone names")
        for gpu in site.quota_gpus:
            if gpu not in gpu_models:
                issues.add(f"{loc}.quota_gpus{_key(gpu)}", f"unknown GPU model {gpu!r}{_did_you_mean(gpu, gpu_models)}", ", ".join(gpu_models))
        for table in ("price_per_gpu_hour", "node_power_kw"):
            for itype in getattr(site, table) or {}:
                ploc = f"{loc}.{table}{_key(itype)}"
                fact = check_type(ploc, itype)
                if fact is not None and fact.cloud != site.cloud:
                    issues.add(ploc, f"{itype!r} runs on {fact.cloud}, but site {site.name!r} is on {site.cloud}", f"{site.cloud} instance types")

    regions = {s.region for s in problem.sites}
    all_zones = {z for s in problem.sites for z in s.zones}
    seen_pools: dict[str, int] = {}
    for i, pool in enumerate(problem.pools):
        loc = f"pools[{i}]"
        if pool.name in seen_pools:
            issues.add(f"{loc}.name", f"duplicate pool name {pool.name!r} (also pools[{seen_pools[pool.name]}])", "unique names")
        seen_pools.setdefault(pool.name, i)
        if len(set(pool.instance_types)) != len(pool.instance_types):
            issues.add(f"{loc}.instance_types", f"duplicate instance types in {pool.instance_types!r}", "each type once")
        for t, itype in enumerate(pool.instance_types):
            check_type(f"{loc}.instance_types[{t}]", itype)
        for r, region in enumerate(pool.regions or []):
            if region not in regions:
                issues.add(f"{loc}.regions[{r}]", f"no site is in region {region!r}{_did_you_mean(region, regions)}", ", ".join(sorted(regions)))
        for r, name in enumerate(pool.sites or []):
            if name not in seen_sites:
                issues.add(f"{loc}.sites[{r}]", f"no site is named {name!r}{_did_you_mean(name, seen_sites)}", "names of sites[]")
        if pool.role == "training" and pool.survive_site_losses is not None:
            issues.add(f"{loc}.survive_site_losses", f"applies to inference pools only, got {pool.survive_site_losses} on a training pool", "omit it for training pools")
        if pool.zone is not None:
            if pool.role != "training":
                issues.add(f"{loc}.zone", f"applies to training pools only, got {pool.zone!r} on an inference pool", "omit it for inference pools")
            elif pool.zone not in all_zones:
                issues.add(f"{loc}.zone", f"no site has zone {pool.zone!r}{_did_you_mean(pool.zone, all_zones)}", "a zone listed by a site")
    issues.raise_if_any()


def _key(name: str) -> str:
    return f".{name}" if _IDENT.match(name) else f'["{name}"]'
