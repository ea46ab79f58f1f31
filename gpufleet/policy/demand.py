"""What each workload needs: demand from the policy config's floors and the stack's declarations,
sized with :mod:`gpufleet.sizing` (the one place the formulas live; nothing is recomputed here).

Two sources of demand, both keyed by workload and named as the fleet spec names its fields:

* the stack's own declaration: the ``demand`` object an ``InferencePool`` / ``TrainingCluster``
  component carries in its props;
* a *floor* in the pack's policy config, owned by the capacity team. A floor's fields replace the
  declared ones (the fields it leaves out, such as the model shape, come from the declaration).

Which fields a demand has, which are required and their defaults all come from the spec's demand
models (:mod:`gpufleet.spec`); the pack's floor schema is their JSON schema.

A floor can only raise the bar: a workload must carry the larger of what its declaration and its
floor need. So a stack that lowers its own declared demand is still held to the floor, and a floor
that is out of date never excuses a stack from what it declares itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpufleet.accelerators import replica_sizes
from gpufleet.catalog import GpuModel, InstanceType, load_catalog
from gpufleet.errors import GpufleetError
from gpufleet.sizing import (
    InferenceSizing,
    MemoryFit,
    TrainingSizing,
    fit_memory,
    size_inference,
    size_training,
    training_flops,
)
from gpufleet.spec import (
    InferenceDemand,
    InferenceLoad,
    InferencePoolDemand,
    ModelShape,
    TrainingClusterDemand,
    TrainingDemand,
    TrainingTarget,
)
from gpufleet.validation import StrictModel

from gpufleet.policy.resources import is_unknown, pick

NOT_IN_FLOORS = ("workload", "gpu")
"""Fields of a declared demand that say whose it is and on what GPU, not how much: no floor sets them."""
FLOOR_MODELS: tuple[type[StrictModel], ...] = (InferencePoolDemand, TrainingClusterDemand, TrainingDemand)
"""What a floor's fields are: what the components declare, plus the spec's names for training compute."""


def _fields(*models: type[StrictModel], required: bool | None = None) -> tuple[str, ...]:
    """The models' field names, in order, once each (``required``: only required or optional ones)."""
    names = (name for m in models for name, f in m.model_fields.items()
             if name not in NOT_IN_FLOORS and (required is None or f.is_required() == required))
    return tuple(dict.fromkeys(names))


INFERENCE_FIELDS = _fields(InferencePoolDemand)
TRAINING_FIELDS = _fields(TrainingClusterDemand, TrainingDemand)
THROUGHPUT_REQUIRED = tuple(n for n in _fields(InferenceLoad)  # growth: optional in a spec, sized with here
                            if InferenceLoad.model_fields[n].is_required() or n == "growth_per_month")
MEMORY_REQUIRED = tuple(n for n in _fields(InferenceDemand, required=True)
                        if n not in InferenceLoad.model_fields and n != "model")  # the model: MODEL_REQUIRED
MODEL_REQUIRED = _fields(ModelShape, required=True)
TARGET_REQUIRED = _fields(TrainingTarget, required=True)

INFERENCE_DEFAULTS: dict[str, Any] = {
    name: InferenceDemand.model_fields[name].default for name in _fields(InferenceDemand, required=False)
}
"""Defaults of the optional demand fields: the fleet spec's own (one source of truth)."""
DEFAULT_DTYPE: str = ModelShape.model_fields["dtype"].default


class DemandError(GpufleetError):
    """A workload's demand cannot be sized (fields missing or inconsistent): the rules report it."""


@dataclass(frozen=True)
class Demand:
    """One source of a workload's demand, with the fields merged as the rules use them."""

    workload: str
    role: str
    values: Mapping[str, Any]
    source: str  # "declared by the stack (<pool>)" or "policy config floor"

    def get(self, name: str, default: Any = None) -> Any:
        value = pick(self.values, name)
        if value is None or is_unknown(value):
            return default if default is not None else INFERENCE_DEFAULTS.get(name)
        return value


def floor_role(floor: Mapping[str, Any]) -> str | None:
    """``training`` or ``inference`` when a floor's fields say which, else None."""
    training = any(k in floor for k in TRAINING_FIELDS)
    inference = any(k in floor for k in INFERENCE_FIELDS)
    if training and not inference:
        return "training"
    if inference and not training:
        return "inference"
    return None


def demand_sources(workload: str, role: str, declared: Sequence[tuple[str, Mapping[str, Any]]],
                   floor: Mapping[str, Any] | None) -> list[Demand]:
    """Every demand a workload must carry: each distinct declaration, and the floor over the first.

    Args:
        declared: ``(pool name, demand props)`` for each pool component that declares a demand.
        floor: the policy config's floor for the workload, or None.

    Raises:
        DemandError: the floor names fields of the other role (a training floor for a service).
    """
    out: list[Demand] = []
    seen: list[Mapping[str, Any]] = []
    for pool, values in declared:
        clean = {k: v for k, v in values.items() if k != "workload"}
        if clean and clean not in seen:
            seen.append(clean)
            out.append(Demand(workload, role, clean, f"declared by the stack ({pool})"))
    if floor:
        wrong = [k for k in floor if k in (TRAINING_FIELDS if role == "inference" else INFERENCE_FIELDS)]
        if wrong:
            raise DemandError(f"{workload}: the policy config floor gives {', '.join(sorted(wrong))}, "
                              f"which a {role} workload does not have")
        base = dict(seen[0]) if seen else {}
        merged = {**base, **floor}
        if isinstance(base.get("model"), Mapping) and isinstance(floor.get("model"), Mapping):
            merged["model"] = {**base["model"], **floor["model"]}
        out.append(Demand(workload, role, merged, "policy config floor"))
    return out


# --- catalog lookups -------------------------------------------------------------------------------


def instance_row(instance_type: str | None) -> InstanceType | None:
    """The catalog row of an instance type (GCP machine-type links reduced to their name)."""
    if not instance_type:
        return None
    return load_catalog().instances.get(instance_type.rsplit("/", 1)[-1])


def gpu_model(name: str | None) -> GpuModel | None:
    """A GPU model by name, ignoring case (labels are lowercase: ``h100`` is H100)."""
    if not name:
        return None
    gpus = load_catalog().gpus
    return gpus.get(name) or next((g for k, g in gpus.items() if k.lower() == name.lower()), None)


# --- sizing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceNeed:
    """What an inference demand needs on one instance type."""

    demand: Demand
    row: InstanceType
    memory: MemoryFit  # at the GPUs per replica the service runs
    fit: MemoryFit  # the smallest replica that holds it
    sizing: InferenceSizing
    zone_losses: int
    site_losses: int
    boot_minutes: float

    @property
    def nodes(self) -> int:
        return self.sizing.nodes


def _missing(values: Mapping[str, Any], names: Sequence[str], prefix: str = "") -> list[str]:
    return [prefix + n for n in names if pick(values, n) is None or is_unknown(pick(values, n))]


def memory_fit(demand: Demand, row: InstanceType) -> tuple[MemoryFit, MemoryFit]:
    """The memory fit of a demand's model on ``row``: (at the declared GPUs per replica, smallest fit).

    Raises:
        DemandError: the model shape, context or concurrency is missing.
    """
    model = demand.get("model", {})
    model = model if isinstance(model, Mapping) else {}
    missing = _missing(demand.values, MEMORY_REQUIRED) + _missing(model, MODEL_REQUIRED, "model.")
    if missing:
        raise DemandError(f"{demand.workload}: demand ({demand.source}) lacks {', '.join(missing)}; "
                          "declare them in the pool's demand or in the policy config floor")
    dtype = pick(model, "dtype") or DEFAULT_DTYPE
    fit = fit_memory(
        params=float(pick(model, "params")), layers=int(pick(model, "layers")),
        kv_heads=int(pick(model, "kv_heads")), head_dim=int(pick(model, "head_dim")),
        dtype=dtype, kv_dtype=pick(model, "kv_dtype") or None,
        context_tokens=int(demand.get("context_tokens")), concurrency=int(demand.get("concurrency")),
        gpu_memory_gib=row.gpu_memory_gib, gpus_per_node=row.gpus,
        reserved_fraction=float(demand.get("memory_reserved_fraction")),
        sizes=replica_sizes(load_catalog(), row.gpu, row),
    )
    declared = demand.get("gpus_per_replica")
    used = dataclasses.replace(fit, gpus_per_replica=int(declared)) if declared else fit
    return used, fit


def inference_need(demand: Demand, row: InstanceType, *, boot_minutes: float | None = None) -> InferenceNeed:
    """Size an inference demand on ``row`` with :func:`gpufleet.sizing.size_inference`.

    Raises:
        DemandError: a required field is missing.
    """
    missing = _missing(demand.values, THROUGHPUT_REQUIRED)
    if missing:
        raise DemandError(f"{demand.workload}: demand ({demand.source}) lacks {', '.join(missing)}; "
                          "declare them in the pool's demand or in the policy config floor")
    memory, fit = memory_fit(demand, row)
    boot = float(demand.get("boot_minutes", boot_minutes))
    sizing = size_inference(
        memory=memory, gpus_per_node=row.gpus,
        tokens_per_s_per_replica=float(demand.get("tokens_per_s_per_replica")),
        peak_tokens_per_s=float(demand.get("peak_tokens_per_s")),
        growth_per_month=float(demand.get("growth_per_month")),
        lead_time_days=float(demand.get("lead_time_days")),
        horizon_days=float(demand.get("horizon_days")),
        headroom=float(demand.get("headroom")),
        boot_minutes=boot,
        demand_ramp_per_minute=float(demand.get("demand_ramp_per_minute")),
        instance_type=row.instance_type,
    )
    return InferenceNeed(demand=demand, row=row, memory=memory, fit=fit, sizing=sizing,
                         zone_losses=int(demand.get("survive_zone_losses")),
                         site_losses=int(demand.get("survive_site_losses")), boot_minutes=boot)


def training_need(demand: Demand, row: InstanceType, gpu: GpuModel | None = None) -> TrainingSizing:
    """Size a training demand on ``row`` with :func:`gpufleet.sizing.size_training`.

    Raises:
        DemandError: the compute, deadline or MFU is missing, or the GPU has no published peak.
    """
    flops = demand.get("flops") or demand.get("total_flops")
    if flops is None and demand.get("params") is not None and demand.get("tokens") is not None:
        active = demand.get("active_params")
        flops = training_flops(float(demand.get("params")), float(demand.get("tokens")),
                               float(active) if active is not None else None)
    missing = (["flops (or params and tokens)"] if flops is None else []) + _missing(demand.values, TARGET_REQUIRED)
    if missing:
        raise DemandError(f"{demand.workload}: demand ({demand.source}) lacks {', '.join(missing)}; "
                          "declare them in the cluster's demand or in the policy config floor")
    model = gpu or gpu_model(row.gpu)
    if model is None:
        raise DemandError(f"{demand.workload}: GPU {row.gpu!r} is not in the catalog")
    try:
        need = size_training(flops=float(flops), gpu=model, gpus_per_node=row.gpus,
                             deadline_days=float(demand.get("deadline_days")), mfu=float(demand.get("mfu")),
                             instance_type=row.instance_type)
        shapes = load_catalog().topologies.get(row.gpu, ())
        if shapes and row.instance_type == shapes[-1].host_type:  # a TPU: whole slices, as many as it takes
            need = size_training(flops=float(flops), gpu=model, gpus_per_node=row.gpus,
                                 deadline_days=float(demand.get("deadline_days")), mfu=float(demand.get("mfu")),
                                 instance_type=row.instance_type, shapes=shapes,
                                 slices=max(1, math.ceil(round(need.gpus_exact / shapes[-1].chips, 9))))
        return need
    except GpufleetError as exc:
        raise DemandError(f"{demand.workload}: {exc}") from None


__all__ = [
    "INFERENCE_DEFAULTS",
    "INFERENCE_FIELDS",
    "TRAINING_FIELDS",
    "Demand",
    "DemandError",
    "InferenceNeed",
    "demand_sources",
    "floor_role",
    "gpu_model",
    "inference_need",
    "instance_row",
    "memory_fit",
    "training_need",
]
