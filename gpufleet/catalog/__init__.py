"""The instance catalog: sourced facts about accelerator instance types and accelerators, shipped with the package.

Pure: reads three CSV files inside the package (``data/instances.csv``, ``data/gpus.csv``,
``data/tpu_topologies.csv``) through ``importlib.resources``; no network. Rows load into frozen
dataclasses with plain Python numbers.

An accelerator is a GPU, a TPU chip or a Trainium chip (``GpuModel.kind``); every count the catalog
gives (``gpus``, ``gpus_per_node``) counts GPUs or chips alike.

Every number carries its provenance: ``source`` is the URL (or API) the row's specs were read from;
``*_status`` columns say whether a figure was read in a primary source (``verified``), only in a
secondary one (``secondary``), derived by arithmetic (``derived``), not verified (``unverified``), or
read differently in two sources (``conflict``, with the choice explained in ``notes``).
A figure nobody publishes is left empty and the loader returns ``None`` for it: never a guess.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from collections.abc import Mapping
from typing import Literal, TypeVar

from gpufleet import clouds
from gpufleet.errors import CatalogError
from gpufleet.validation import did_you_mean

CATALOG_SCHEMA_VERSION = 1

CLOUDS: tuple[str, ...] = clouds.names()
"""The clouds a catalog row may name: the ones :mod:`gpufleet.clouds` knows."""

Fabric = Literal["efa", "infiniband", "gpudirect-tcpx", "gpudirect-tcpxo", "rdma", "ici", "none"]
FABRICS: tuple[str, ...] = ("efa", "infiniband", "gpudirect-tcpx", "gpudirect-tcpxo", "rdma", "ici", "none")
"""``ici``: a TPU slice's inter-chip interconnect (the chips' own links, not host NICs)."""
KINDS: tuple[str, ...] = ("gpu", "tpu", "trainium")
"""What an accelerator row is: an NVIDIA GPU, a Cloud TPU chip or an AWS Trainium chip."""
STATUSES: tuple[str, ...] = ("verified", "secondary", "derived", "unverified", "conflict")

GIB_PER_GB = 1e9 / 2**30


@dataclass(frozen=True)
class GpuModel:
    """Per-GPU facts, independent of the instance that carries the GPU."""

    name: str  # as NVIDIA names it: A100, H100, H200, B200, L40S, L4, A10G, ...
    memory_gib: float
    tdp_w: float | None
    bf16_dense_tflops: float | None
    fp8_dense_tflops: float | None
    tdp_status: str
    tflops_status: str
    source: str
    notes: str = ""
    memory_vendor_gb: float | None = None  # the vendor's nominal per-GPU (per-chip) figure
    kind: str = "gpu"  # one of KINDS
    int8_dense_tops: float | None = None  # peak INT8 TOPS per chip, where published
    ici_gbps: float | None = None  # inter-chip interconnect per chip (TPU ICI), where published

    @property
    def bf16_dense_flops(self) -> float | None:
        """Peak dense BF16 FLOP/s per GPU, or None where unpublished."""
        return None if self.bf16_dense_tflops is None else self.bf16_dense_tflops * 1e12


@dataclass(frozen=True)
class InstanceType:
    """One row of the instance catalog."""

    instance_type: str
    cloud: str
    gpu: str  # key into the GPU table
    gpus: int
    gpu_memory_gib: float  # per GPU, as the provider reports it, converted to GiB
    gpu_memory_vendor: str  # the provider's own figure and unit, e.g. "80 GB" or "81920 MiB"
    vcpus: int
    host_memory_gib: float
    fabric: str  # one of FABRICS
    fabric_interfaces: int  # EFA interfaces / IB HCAs / GPU NICs; 0 when fabric is "none"
    fabric_gbps: float  # total GPU-to-GPU network bandwidth per node
    network_cards: int  # AWS network cards (one EFA each); other clouds: NIC count used for the fabric
    node_power_kw: float | None  # whole-node draw used for power envelopes
    node_power_basis: str  # how node_power_kw was obtained (clouds do not publish it)
    fabric_status: str
    source: str
    fabric_source: str
    retrieved_on: str
    notes: str = ""
    spec_status: str = ""  # GPUs, memory, vCPUs, host memory
    power_status: str = ""  # node_power_kw

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpus * self.gpu_memory_gib

    @property
    def has_fabric(self) -> bool:
        return self.fabric != "none" and self.fabric_interfaces > 0


def _opt_float(value: str) -> float | None:
    value = value.strip()
    return float(value) if value else None


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("gpufleet.catalog").joinpath("data", name).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    return [{k: (v or "").strip() for k, v in row.items()} for row in rows]


@dataclass(frozen=True)
class Catalog:
    """The loaded catalog: instance types and GPUs, looked up by name with helpful errors."""

    instances: dict[str, InstanceType]
    gpus: dict[str, GpuModel]
    topologies: dict[str, tuple[Topology, ...]] = field(default_factory=dict)
    """TPU slice shapes per TPU generation, smallest first."""

    def slice_shape(self, generation: str | None, topology: str | None) -> Topology | None:
        """The shape of a TPU ``generation``'s slice of ``topology`` (``v5p``, ``4x4x4``), or None when that
        generation tables no such topology (or either is not given)."""
        return next((s for s in self.topologies.get(generation or "", ()) if s.topology == topology), None)

    def instance(self, instance_type: str, loc: str = "instance_type") -> InstanceType:
        return _lookup(self.instances, instance_type, "instance type", loc, "run `gpufleet catalog` for the list")

    def gpu(self, name: str, loc: str = "gpu") -> GpuModel:
        return _lookup(self.gpus, name, "GPU model", loc, ", ".join(sorted(self.gpus)))

    def for_cloud(self, cloud: str | None = None) -> list[InstanceType]:
        rows = self.instances.values()
        return sorted(
            (r for r in rows if cloud is None or r.cloud == cloud),
            key=lambda r: (r.cloud, r.instance_type),
        )

    def instances_with_gpu(self, gpu: str, cloud: str | None = None) -> list[InstanceType]:
        return [r for r in self.for_cloud(cloud) if r.gpu == gpu]

    def kind(self, gpu: str) -> str:
        """``gpu``, ``tpu`` or ``trainium`` for an accelerator in the GPU table (``gpu`` if unknown)."""
        row = self.gpus.get(gpu)
        return row.kind if row is not None else "gpu"

    def training_instance(self, gpu: str, cloud: str | None = None) -> InstanceType | None:
        """The 8-GPU (largest) fabric-equipped instance for a GPU model, preferring more fabric.

        For a TPU: the VM type its multi-host slices run on (the largest slice's ``host_type``), since a
        training slice grows by whole VMs of that type.
        """
        shapes = self.topologies.get(gpu, ())
        if shapes and (host := self.instances.get(shapes[-1].host_type)) and cloud in (None, host.cloud):
            return host
        rows = [r for r in self.instances_with_gpu(gpu, cloud) if r.has_fabric]
        if not rows:
            rows = self.instances_with_gpu(gpu, cloud)
        if not rows:
            return None
        return max(rows, key=lambda r: (r.gpus, r.fabric_gbps, r.instance_type))


@dataclass(frozen=True)
class Topology:
    """One Cloud TPU slice shape (``tpu_topologies.csv``): its chips and the TPU VMs it runs on."""

    accelerator: str  # key into the GPU table: v5e, v5p, v6e
    topology: str  # e.g. "4x4x4"
    chips: int
    vms: int  # TPU VMs (hosts as the TPU API creates them) in one slice
    host_type: str  # the VM's machine type, a row of instances.csv
    accelerator_type: str  # the TPU API's name for the slice, e.g. "v5p-128"
    scope: str  # "single-host" | "multi-host"
    source: str

    @property
    def single_host(self) -> bool:
        return self.scope == "single-host"


_Row = TypeVar("_Row")


def _lookup(table: Mapping[str, _Row], key: str, what: str, loc: str, hint: str) -> _Row:
    """``table[key]``, or a CatalogError naming ``what``, the closest names and where to look."""
    try:
        return table[key]
    except KeyError:
        raise CatalogError(f"unknown {what} {key!r}{did_you_mean(key, table)}", loc=loc, hint=hint) from None


def _check_source(row: dict[str, str], where: str) -> None:
    for column in ("source", "fabric_source"):
        if column in row and not row[column].startswith("https://"):
            raise CatalogError(f"{column} must be an https URL, got {row[column]!r}", loc=where)


def _check_statuses(row: dict[str, str], columns: tuple[str, ...], where: str) -> None:
    for column in columns:
        value = row.get(column, "")
        if value and value not in STATUSES:
            raise CatalogError(f"{column} {value!r} is not a status", loc=where, hint=", ".join(STATUSES))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load and check the shipped catalog (cached: the files never change at run time)."""
    gpus: dict[str, GpuModel] = {}
    for n, row in enumerate(_read("gpus.csv"), start=2):
        where = f"catalog gpus.csv row {n}"
        if row["gpu"] in gpus:
            raise CatalogError(f"duplicate GPU model {row['gpu']!r}", loc=where)
        _check_statuses(row, ("tdp_status", "tflops_status"), where)
        _check_source(row, where)
        gpus[row["gpu"]] = GpuModel(
            name=row["gpu"],
            memory_gib=float(row["memory_gib"]),
            tdp_w=_opt_float(row["tdp_w"]),
            bf16_dense_tflops=_opt_float(row["bf16_dense_tflops"]),
            fp8_dense_tflops=_opt_float(row["fp8_dense_tflops"]),
            tdp_status=row["tdp_status"],
            tflops_status=row["tflops_status"],
            source=row["source"],
            notes=row.get("notes", ""),
            memory_vendor_gb=_opt_float(row.get("memory_vendor_gb", "")),
            kind=_kind(row.get("kind", ""), where),
            int8_dense_tops=_opt_float(row.get("int8_dense_tops", "")),
            ici_gbps=_opt_float(row.get("ici_gbps", "")),
        )
    instances: dict[str, InstanceType] = {}
    for n, row in enumerate(_read("instances.csv"), start=2):
        where = f"catalog instances.csv row {n}"
        if row["instance_type"] in instances:
            raise CatalogError(f"duplicate instance type {row['instance_type']!r}", loc=where)
        if row["cloud"] not in CLOUDS:
            raise CatalogError(f"unknown cloud {row['cloud']!r}", loc=where, hint=", ".join(CLOUDS))
        if row["fabric"] not in FABRICS:
            raise CatalogError(f"unknown fabric {row['fabric']!r}", loc=where, hint=", ".join(FABRICS))
        if row["gpu"] not in gpus:
            raise CatalogError(f"GPU {row['gpu']!r} is not in gpus.csv", loc=where)
        _check_source(row, where)
        _check_statuses(row, ("fabric_status", "spec_status", "power_status"), where)
        instances[row["instance_type"]] = InstanceType(
            instance_type=row["instance_type"],
            cloud=row["cloud"],
            gpu=row["gpu"],
            gpus=int(row["gpus"]),
            gpu_memory_gib=float(row["gpu_memory_gib"]),
            gpu_memory_vendor=row["gpu_memory_vendor"],
            vcpus=int(row["vcpus"]),
            host_memory_gib=float(row["host_memory_gib"]),
            fabric=row["fabric"],
            fabric_interfaces=int(row["fabric_interfaces"] or 0),
            fabric_gbps=float(row["fabric_gbps"] or 0),
            network_cards=int(row["network_cards"] or 1),
            node_power_kw=_opt_float(row["node_power_kw"]),
            node_power_basis=row["node_power_basis"],
            fabric_status=row["fabric_status"],
            source=row["source"],
            fabric_source=row["fabric_source"],
            retrieved_on=row["retrieved_on"],
            notes=row.get("notes", ""),
            spec_status=row.get("spec_status", ""),
            power_status=row.get("power_status", ""),
        )
    return Catalog(instances=instances, gpus=gpus, topologies=_topologies(gpus, instances))


def _kind(value: str, where: str) -> str:
    kind = value or "gpu"
    if kind not in KINDS:
        raise CatalogError(f"unknown accelerator kind {kind!r}", loc=where, hint=", ".join(KINDS))
    return kind


def _topologies(gpus: dict[str, GpuModel], instances: dict[str, InstanceType]) -> dict[str, tuple[Topology, ...]]:
    """The TPU slice shapes, checked against the GPU and instance tables, smallest first per generation."""
    shapes: dict[str, list[Topology]] = {}
    for n, row in enumerate(_read("tpu_topologies.csv"), start=2):
        where = f"catalog tpu_topologies.csv row {n}"
        gen, host = row["accelerator"], row["host_type"]
        if gpus.get(gen) is None or gpus[gen].kind != "tpu":
            raise CatalogError(f"{gen!r} is not a TPU in gpus.csv", loc=where)
        if host not in instances or instances[host].gpu != gen:
            raise CatalogError(f"host type {host!r} is not a {gen} row of instances.csv", loc=where)
        _check_source(row, where)
        shape = Topology(accelerator=gen, topology=row["topology"], chips=int(row["chips"]), vms=int(row["vms"]),
                         host_type=host, accelerator_type=row["accelerator_type"], scope=row["scope"],
                         source=row["source"])
        dims = [int(d) for d in shape.topology.split("x")]
        if math.prod(dims) != shape.chips or shape.vms * instances[host].gpus != shape.chips:
            raise CatalogError(f"topology {shape.topology} does not hold {shape.chips} chips on {shape.vms} x {host}",
                               loc=where)
        shapes.setdefault(gen, []).append(shape)
    return {gen: tuple(sorted(rows, key=lambda t: t.chips)) for gen, rows in shapes.items()}


__all__ = [
    "CATALOG_SCHEMA_VERSION",
    "CLOUDS",
    "FABRICS",
    "KINDS",
    "STATUSES",
    "Catalog",
    "GpuModel",
    "InstanceType",
    "Topology",
    "load_catalog",
]
