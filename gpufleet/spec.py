"""The fleet spec: the validated model of what a stack declares under ``gpufleet:fleet``.

Pure: no I/O, no Pulumi (:mod:`gpufleet.stackfile` reads stack files).

A spec has three lists:

* ``sites``: cloud regions or contracted data halls, each with a power envelope, PUE, GPU quotas and
  prices;
* ``training``: training runs (model size, tokens, deadline, MFU), sized with scaling-law compute;
* ``inference``: services (model shape, measured tokens/s per replica, current peak, growth, lead
  time, horizon), sized from throughput and memory fit.

Validation is strict and collected: unknown keys, wrong types, negative, NaN or infinite numbers,
unknown GPU models or instance types, and broken cross-references are all reported at once, each
with its field path (``fleet.inference[1].growth_per_month``), the bad value and what is allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from gpufleet.accelerators import accelerator_alias
from gpufleet.capacity import CapacitySpec, SpotSpec
from gpufleet.catalog import load_catalog
from gpufleet.clouds import CloudName
from gpufleet.errors import CatalogError, Issue, Issues, SpecError
from gpufleet.forecast import FleetForecast, ForecastRange, ForecastSource, GrowthPerMonth, growth_at, resolve_forecasts
from gpufleet.platforms import PlatformSpec, ServingSpec, check_platforms
from gpufleet.sizing import site_domain, training_flops
from gpufleet.validation import StrictModel, issues_from_validation, repeated, show

SLUG_PATTERN = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
Slug = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        description="lowercase letters, digits and '-', 2-40 characters, starting with a letter "
        "(valid as a GCP label value and in every cloud's resource names)",
    ),
]
Fraction = Annotated[float, Field(ge=0, le=1)]
SiteLosses = Annotated[int, Field(ge=0, le=100)]

# --- bounds: every quantity within a physically meaningful range --------------------------------------
# A value past these is a typo or an attack, never a plan: refusing it here (the error states the
# bound) keeps every later computation finite, so whatever validates also plans, previews and prints
# as valid JSON. Ranges are generous: 10x beyond the largest real system of 2026.
MegaWatts = Annotated[float, Field(ge=0, le=10_000)]
"""A site's envelope: up to 10 GW."""
KiloWatts = Annotated[float, Field(gt=0, le=1_000)]
"""One node's draw: up to 1 MW."""
UsdPerGpuHour = Annotated[float, Field(ge=0, le=10_000)]
GramsPerKwh = Annotated[float, Field(ge=0, le=5_000)]
UsdPerTonne = Annotated[float, Field(ge=0, le=1_000_000)]
GpuCount = Annotated[int, Field(ge=0, le=100_000_000)]
Parameters = Annotated[float, Field(gt=0, le=1e15)]
"""Model parameters: up to a quadrillion."""
Tokens = Annotated[float, Field(gt=0, le=1e17)]
Flops = Annotated[float, Field(gt=0, le=1e33)]
Days = Annotated[float, Field(gt=0, le=3_650)]
"""Up to ten years."""
DaysOrNone = Annotated[float, Field(ge=0, le=3_650)]
Mfu = Annotated[float, Field(gt=0, le=1)]
TokensPerS = Annotated[float, Field(gt=0, le=1e12)]
Headroom = Annotated[float, Field(ge=0, le=10)]
Minutes = Annotated[float, Field(gt=0, le=1_440)]
Layers = Annotated[int, Field(gt=0, le=100_000)]
Heads = Annotated[int, Field(gt=0, le=100_000)]
HeadDim = Annotated[int, Field(gt=0, le=100_000)]
ContextTokens = Annotated[int, Field(gt=0, le=1_000_000_000)]
Concurrency = Annotated[int, Field(gt=0, le=10_000_000)]
NodeCount = Annotated[int, Field(gt=0, le=1_000_000)]
ZoneLosses = Annotated[int, Field(ge=0, le=100)]
"""Failure domains (sites sharing a ``failure_domain``, else single sites) a service must survive
losing: the fleet spec's ``survive_site_losses`` and ``gpufleet place``'s pool field."""
Dtype = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4"]

class Site(StrictModel):
    """A place GPUs can go, as the placement solver sees it (``gpufleet place`` reads these objects).

    :class:`SiteSpec` is the same site in a fleet spec: it adds what the program builds there (the
    network, the provider's project or subscription), checks names, GPU models and instance types
    against the catalog, and needs a slug ``name``, since that name becomes part of cloud resource
    names.
    """

    name: str = Field(min_length=1)
    """Unique site name, e.g. ``us-east-1`` or ``dc1-hall-b``."""
    cloud: CloudName
    """The provider whose instance types run here."""
    region: str = Field(min_length=1)
    """The provider region; pools may restrict themselves to regions."""
    zones: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """Availability zones (or data halls); a training pool uses exactly one."""
    power_mw: MegaWatts
    """Contracted power envelope of the site, facility side (IT load × PUE), in MW."""
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = 1.2
    """Power usage effectiveness: facility draw over IT draw."""
    quota_gpus: dict[str, GpuCount] = Field(default_factory=dict)
    """GPUs of each model this site may hold (cloud quota, or what the hall is contracted for); a
    model left out is unlimited, 0 means none."""
    price_per_gpu_hour: dict[str, UsdPerGpuHour] = Field(default_factory=dict)
    """USD per GPU-hour, by instance type. With a table, a type missing from it is not offered here;
    with none at all, every type of the site's cloud is, at an unknown price (counted as 0)."""
    spot_price_per_gpu_hour: dict[str, UsdPerGpuHour] = Field(default_factory=dict)
    """USD per spot GPU-hour, by instance type: the types this site offers as spot (absent: none)."""
    spot_quota_gpus: dict[str, GpuCount] = Field(default_factory=dict)
    """Spot GPUs of each model this site may hold (the providers' separate spot / preemptible quota);
    a model left out is unlimited."""
    node_power_kw: dict[str, KiloWatts] = Field(default_factory=dict)
    """Measured whole-node draw (kW) by instance type; overrides the catalog's estimate."""
    carbon_g_per_kwh: GramsPerKwh | None = None
    """Grid carbon intensity in gCO2e/kWh, if known."""
    failure_domain: str | None = Field(default=None, min_length=1)
    """Sites sharing a failure domain fail together; default: the site alone."""

    @property
    def envelope_kw(self) -> float:
        return self.power_mw * 1000.0


class SiteSpec(Site):
    """A site of the fleet spec: a cloud region (with zones) or a contracted data hall."""

    name: Slug
    network_cidr: str = "10.0.0.0/16"
    """Address space of the site's VPC / VNet."""
    project: str | None = None
    """GCP project of the site's provider (GCP only)."""
    subscription_id: str | None = None
    """Azure subscription of the site's provider (Azure only)."""
    resource_group: str | None = None
    """Azure resource group to create (Azure only; default ``gpufleet-<site>``)."""
    platform: PlatformSpec = Field(default_factory=PlatformSpec)
    """Where its pools run: VM groups (``kind: vm``) or node pools of a Kubernetes cluster (:mod:`gpufleet.platforms`)."""

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, zones: list[str]) -> list[str]:
        dupes = sorted({z for z in zones if zones.count(z) > 1})
        if dupes:
            raise ValueError(f"zones must be unique, {', '.join(dupes)} repeated")
        return zones

    @field_validator("network_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 network in CIDR form ({exc})") from None
        if net.version != 4 or not net.is_private:
            raise ValueError("must be a private IPv4 range such as 10.0.0.0/16")
        if net.prefixlen > 20:
            raise ValueError("must be /20 or larger (pools need room for their subnets)")
        return value

    @field_validator("quota_gpus", "spot_quota_gpus")
    @classmethod
    def _known_gpus(cls, quotas: dict[str, int]) -> dict[str, int]:
        catalog = load_catalog()
        unknown = sorted(set(quotas) - set(catalog.gpus))
        if unknown:
            raise ValueError(
                f"unknown GPU model {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(catalog.gpus))}"
            )
        return quotas

    @field_validator("price_per_gpu_hour", "spot_price_per_gpu_hour", "node_power_kw")
    @classmethod
    def _known_instances(cls, table: dict[str, float]) -> dict[str, float]:
        _check_instance_types(list(table))
        return table


# --- demand: one definition for the spec, the components' props and the pack's floors -------------
#
# A training run's and an inference service's demand fields are defined here once. The spec's
# workloads extend them with where and on what they run; the components carry them in their props
# (``TrainingClusterDemand`` / ``InferencePoolDemand``, through ``model_dump()``); the pack's demand
# floors are their JSON schema (``gpufleet.policy.config``); the rules read them by these names.


class TrainingTarget(StrictModel):
    """When a training run must finish, and the utilisation it is planned at."""

    deadline_days: Days
    """Wall-clock days the run may take."""
    mfu: Mfu
    """Assumed model FLOPs utilisation, in (0, 1]."""


class TrainingDemand(TrainingTarget):
    """A training run's demand, from scaling-law compute: C = 6 · N_active · D FLOPs."""

    params: Parameters
    """Total model parameters (dense models: all of them)."""
    active_params: Parameters | None = None
    """Parameters active per token (mixture-of-experts); defaults to ``params``."""
    tokens: Tokens
    """Training tokens D."""
    total_flops: Flops | None = None
    """Total training compute in FLOPs, when known; replaces 6 · N_active · D."""

    @model_validator(mode="after")
    def _active_within_total(self) -> TrainingDemand:
        if self.active_params is not None and self.active_params > self.params:
            raise ValueError(
                f"active_params ({self.active_params:g}) cannot exceed params ({self.params:g})"
            )
        return self

    @property
    def flops(self) -> float:
        if self.total_flops is not None:
            return self.total_flops
        return training_flops(self.params, self.tokens, self.active_params)


class TrainingClusterDemand(TrainingTarget):
    """The demand a ``TrainingCluster`` component carries: the run's compute, deadline and GPU."""

    workload: Slug
    """The training run."""
    flops: Flops
    """Total training compute, FLOPs."""
    gpu: str
    """GPU model the run is planned on."""


class ModelShape(StrictModel):
    """What the memory-fit computation needs to know about a served model."""

    params: Parameters
    """Model parameters."""
    layers: Layers
    """Transformer layers."""
    kv_heads: Heads
    """Key/value heads (GQA groups)."""
    head_dim: HeadDim
    """Dimension of one attention head."""
    dtype: Dtype = "bf16"
    """Dtype of the weights."""
    kv_dtype: Dtype | None = None
    """Dtype of the KV cache; defaults to ``dtype``."""


class InferenceLoad(ForecastRange):
    """The load an inference service must carry: forecast, headroom, losses it survives, boot time."""

    peak_tokens_per_s: TokensPerS
    """Today's peak demand, tokens/s."""
    growth_per_month: GrowthPerMonth | None = None
    """Compound monthly growth (0.08 = 8 %/month); in demand props: the growth at ``plan_confidence``."""
    lead_time_days: DaysOrNone
    """Procurement lead time: days from today until new capacity is serving."""
    horizon_days: Days
    """How long after landing this capacity must carry the growing demand."""
    headroom: Headroom = 0.2
    """Extra capacity above the forecast peak, as a fraction."""
    tokens_per_s_per_replica: TokensPerS
    """The owner's own benchmark of one replica at its concurrency (gpufleet never invents it)."""
    survive_zone_losses: ZoneLosses = 1
    """Zones whose loss the service must survive."""
    survive_site_losses: SiteLosses = 0
    """Sites (failure domains) whose loss the service must survive."""
    boot_minutes: Minutes = 10.0
    """Time from a scale-out decision until a new node serves (boot + model load)."""
    demand_ramp_per_minute: Fraction = 0.02
    """Fastest rise of demand, as a fraction of peak per minute; warm capacity absorbs it while
    new nodes boot."""


class InferenceDemand(InferenceLoad):
    """An inference service's demand: its load, and the model whose weights and KV cache must fit."""

    model: ModelShape
    """The served model's shape."""
    context_tokens: ContextTokens
    """Context length each sequence holds in KV cache."""
    concurrency: Concurrency
    """Concurrent sequences per replica, each holding a full context of KV cache."""
    memory_reserved_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Share of each GPU's memory unavailable for weights and KV cache (runtime, activations)."""
    spot: SpotSpec | None = None
    """The share that may run on spot, above an on-demand floor that carries the peak after reclaim."""


class InferencePoolDemand(InferenceDemand):
    """The demand an ``InferencePool`` component carries: the service's demand (``model.kv_dtype``
    resolved), its GPU and the plan's GPUs per replica."""

    workload: Slug
    """The inference service."""
    gpu: str
    """GPU model the service is planned on."""
    gpus_per_replica: Annotated[int, Field(gt=0, le=1_000_000)]
    """GPUs one replica runs on."""


# --- workloads ------------------------------------------------------------------------------------


class _Workload(StrictModel):
    """What training runs and inference services share: a name, a known GPU and instance types, sites."""

    name: Slug
    """Workload name, unique across training and inference."""
    gpu: str
    """GPU model as NVIDIA names it, or a TPU / Trainium chip (``v5p``, ``trainium2``); the key may be
    written ``accelerator:`` instead (``gpufleet catalog`` lists them)."""
    instance_types: list[str] | None = None
    """Allowed instance types, in preference order (inference: the first is the primary, the rest
    fallbacks); default: per allowed site's cloud, the catalog's type for ``gpu`` (training: the
    fabric-equipped one; inference: the largest)."""
    sites: list[str] | None = None
    """Sites the workload may go to (default: any on a cloud offering its instance types)."""

    _accelerator_is_gpu = model_validator(mode="before")(accelerator_alias)

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, gpu: str) -> str:
        return _check_gpu(gpu)

    @field_validator("instance_types")
    @classmethod
    def _known_types(cls, types: list[str] | None) -> list[str] | None:
        if types is not None:
            if not types:
                raise ValueError("must list at least one instance type, or be omitted")
            _check_instance_types(types)
        return types

    @model_validator(mode="after")
    def _types_carry_the_gpu(self) -> _Workload:
        _check_types_match_gpu(self.instance_types, self.gpu)
        return self


class TrainingSpec(TrainingDemand, _Workload):
    """A training run, sized from scaling-law compute: C = 6 · N_active · D FLOPs."""

    nodes: NodeCount | None = None
    """A node count the owner insists on; the plan keeps it and reports the resulting days."""
    zone: str | None = None
    """Pin the cluster to this zone (it must belong to the chosen site)."""
    capacity: CapacitySpec = Field(default_factory=CapacitySpec)
    max_nodes_per_island: Annotated[int, Field(gt=0, le=300)] = 100
    """Azure: VMs per InfiniBand island (single placement group): 100 by default, up to 300 after
    a quota raise."""
    allow_multiple_islands: bool = False
    """Azure: the run may span several InfiniBand islands (traffic between islands is Ethernet, not
    InfiniBand). Without it, a run needing more nodes than one island holds is refused."""
    fabric_setup_by_workload: bool = False
    """The run starts the fabric software gpufleet does not install (GCP GPUDirect-TCPX(O): RxDM, NCCL plugin)."""
    slices: Annotated[int, Field(ge=1, le=64)] = 1
    """TPU: slices of one shape joined over the data-centre network (multi-slice); more than 1 only when declared."""

    def demand(self) -> TrainingClusterDemand:
        """The demand its ``TrainingCluster`` carries."""
        return TrainingClusterDemand.model_validate({
            "workload": self.name, "flops": self.flops, "gpu": self.gpu,
            **self.model_dump(include=set(TrainingTarget.model_fields)),
        })


class ScalingSpec(StrictModel):
    """The metric the autoscaler tracks, which the service publishes per instance."""

    metric_name: str = "tokens_per_s"
    metric_namespace: str = "gpufleet"
    target_utilization: Annotated[float, Field(gt=0, le=1)] = 0.7
    """Fraction of a node's measured tokens/s the autoscaler aims for."""


class InferenceSpec(InferenceDemand, _Workload, ForecastSource):
    """An inference service, sized from its forecast peak and the model's memory fit."""

    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    serving: ServingSpec | None = None
    """On Kubernetes sites: how the Deployment scales (KEDA on a Prometheus query; :mod:`gpufleet.platforms`)."""

    def demand(self, gpus_per_replica: int, confidence: str) -> InferencePoolDemand:
        """Its ``InferencePool``'s demand: the plan's GPUs per replica, the growth at ``confidence``."""
        fields = self.model_dump(include=set(InferenceDemand.model_fields))
        fields["model"]["kv_dtype"] = self.model.kv_dtype or self.model.dtype
        fields["growth_per_month"] = growth_at(self, confidence)
        return InferencePoolDemand.model_validate({
            **fields, "workload": self.name, "gpu": self.gpu, "gpus_per_replica": gpus_per_replica})


class FleetSpec(FleetForecast):
    """The whole declaration: sites, training runs and inference services."""

    sites: list[SiteSpec] = Field(min_length=1)
    training: list[TrainingSpec] = Field(default_factory=list)
    inference: list[InferenceSpec] = Field(default_factory=list)
    carbon_price_per_tonne: UsdPerTonne = 0.0
    """USD per tonne CO2e added to the placement objective (0: cost only)."""

    def site(self, name: str) -> SiteSpec:
        return next(s for s in self.sites if s.name == name)

    @property
    def workloads(self) -> list[TrainingSpec | InferenceSpec]:
        return [*self.training, *self.inference]


# --- checks shared by several models --------------------------------------------------------------


def _check_gpu(gpu: str) -> str:
    try:
        load_catalog().gpu(gpu)
    except CatalogError as exc:
        raise ValueError(str(exc).removeprefix("gpu: ")) from None
    return gpu


def _check_instance_types(types: list[str]) -> None:
    catalog = load_catalog()
    for name in types:
        if name not in catalog.instances:
            raise ValueError(str(catalog_error(name)))


def catalog_error(instance_type: str) -> CatalogError:
    try:
        load_catalog().instance(instance_type)
    except CatalogError as exc:
        return CatalogError(str(exc).removeprefix("instance_type: "))
    raise AssertionError("unreachable")  # pragma: no cover


def _check_types_match_gpu(types: list[str] | None, gpu: str) -> None:
    if not types:
        return
    catalog = load_catalog()
    wrong = [t for t in types if catalog.instances[t].gpu != gpu]
    if wrong:
        carriers = ", ".join(r.instance_type for r in catalog.instances_with_gpu(gpu)) or "none"
        raise ValueError(
            f"instance type {', '.join(map(repr, wrong))} does not carry {gpu} GPUs; "
            f"types with {gpu}: {carriers}"
        )


def _cross_check(spec: FleetSpec, issues: Issues, root: str) -> None:
    """Checks that need the whole spec: unique names and references between lists."""
    catalog = load_catalog()
    site_names = [s.name for s in spec.sites]
    for i, _first in repeated(site_names):
        issues.add(f"{root}.sites[{i}].name", f"duplicate site name {site_names[i]!r}", "unique names")
    for i, site in enumerate(spec.sites):
        for table in ("price_per_gpu_hour", "spot_price_per_gpu_hour"):
            foreign = [t for t in getattr(site, table) if catalog.instances[t].cloud != site.cloud]
            if foreign:
                issues.add(
                    f"{root}.sites[{i}].{table}",
                    f"{', '.join(foreign)} is not a {site.cloud} instance type",
                    f"{site.cloud} instance types (run `gpufleet catalog --cloud {site.cloud}`)",
                )
    seen: dict[str, str] = {}
    groups: tuple[tuple[str, Sequence[TrainingSpec | InferenceSpec]], ...] = (
        ("training", spec.training), ("inference", spec.inference))
    for kind, workloads in groups:
        for i, w in enumerate(workloads):
            loc = f"{root}.{kind}[{i}]"
            if w.name in seen:
                issues.add(f"{loc}.name", f"duplicate workload name {w.name!r} (also {seen[w.name]})",
                           "workload names unique across training and inference")
            seen.setdefault(w.name, loc)
            for j, s in enumerate(w.sites or []):
                if s not in site_names:
                    issues.add(f"{loc}.sites[{j}]", f"unknown site {s!r}", ", ".join(site_names))
            allowed = [spec.site(s) for s in (w.sites or site_names) if s in site_names]
            clouds = {s.cloud for s in allowed}
            if w.instance_types:
                usable = [t for t in w.instance_types if catalog.instances[t].cloud in clouds]
                if not usable:
                    issues.add(
                        f"{loc}.instance_types",
                        f"none of {w.instance_types} runs on the clouds of its sites ({', '.join(sorted(clouds))})",
                        "instance types of those clouds, or add a site on their cloud",
                    )
            elif not any(catalog.instances_with_gpu(w.gpu, c) for c in clouds):
                issues.add(
                    f"{loc}.gpu",
                    f"no instance type with {w.gpu} on {', '.join(sorted(clouds))}",
                    ", ".join(sorted({r.gpu for c in clouds for r in catalog.for_cloud(c)})),
                )
            if isinstance(w, TrainingSpec) and w.zone is not None:
                if not any(w.zone in s.zones for s in allowed):
                    issues.add(f"{loc}.zone", f"zone {w.zone!r} is not a zone of its sites",
                               ", ".join(z for s in allowed for z in s.zones))
            if isinstance(w, InferenceSpec) and allowed:
                most_zones = max(len(s.zones) for s in allowed)
                if w.survive_site_losses == 0 and w.survive_zone_losses >= most_zones:
                    issues.add(
                        f"{loc}.survive_zone_losses",
                        f"{w.survive_zone_losses} zone losses cannot be survived with at most "
                        f"{most_zones} zones per site",
                        f"at most {most_zones - 1}, or add zones, or use survive_site_losses",
                    )
                domains = {site_domain(s.name, s.failure_domain) for s in allowed}
                if w.survive_site_losses >= len(domains):
                    issues.add(
                        f"{loc}.survive_site_losses",
                        f"{w.survive_site_losses} site losses cannot be survived with "
                        f"{len(domains)} failure domain(s) allowed",
                        f"at most {len(domains) - 1}, or allow more sites",
                    )


# --- loading --------------------------------------------------------------------------------------


def parse_fleet(data: Any, *, root: str = "fleet", source: str = "", base_dir: str | Path | None = None) -> FleetSpec:
    """Validate a fleet object (parsed YAML or JSON) into a :class:`FleetSpec`, histories fitted.

    Raises:
        SpecError: with every issue found, each naming its field path.
    """
    if not isinstance(data, dict):
        raise SpecError(Issue(root, f"must be a mapping with sites, training and inference, got {show(data)}"),
                        source=source)
    try:
        spec = FleetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, FleetSpec, root=root), source=source) from None
    issues = Issues(source=source)
    _cross_check(spec, issues, root)
    issues.items += check_platforms(spec, root)
    issues.raise_if_any()
    return resolve_forecasts(spec, root=root, base_dir=base_dir, source=source)
