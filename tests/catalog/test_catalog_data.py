"""Checks on the shipped catalog data (``gpufleet/catalog/data/*.csv``).

These tests pin what a user of the catalog relies on: the required instance types exist, every
row names a source, figures are in range, the GPU table and the instance table agree, and a few
facts a user would notice (p5.48xlarge has 32 EFA interfaces, ND H100 v5 has InfiniBand) hold.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from importlib import resources

import pytest

from gpufleet.catalog import FABRICS, load_catalog

GIB_PER_GB = 1e9 / 2**30
STATUSES = {"verified", "secondary", "derived", "unverified", "conflict"}

REQUIRED = {
    "aws": [
        "p4d.24xlarge",
        "p4de.24xlarge",
        "p5.48xlarge",
        "p5e.48xlarge",
        "p5en.48xlarge",
        "p6-b200.48xlarge",
        *(
            f"{family}.{size}"
            for family in ("g5", "g6", "g6e")
            for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
        ),
    ],
    "azure": [
        "Standard_ND96asr_v4",
        "Standard_ND96amsr_A100_v4",
        "Standard_ND96isr_H100_v5",
        "Standard_ND96isr_H200_v5",
        "Standard_NC24ads_A100_v4",
        "Standard_NC48ads_A100_v4",
        "Standard_NC96ads_A100_v4",
        "Standard_NC40ads_H100_v5",
        "Standard_NC80adis_H100_v5",
    ],
    "gcp": [
        "a2-highgpu-8g",
        "a2-ultragpu-8g",
        "a3-highgpu-8g",
        "a3-megagpu-8g",
        "a3-ultragpu-8g",
        "a4-highgpu-8g",
        *(f"g2-standard-{n}" for n in (4, 8, 12, 16, 24, 32, 48, 96)),
    ],
}

# Multi-node training types: each must come with a GPU fabric.
TRAINING_TYPES = [
    "p4d.24xlarge",
    "p4de.24xlarge",
    "p5.48xlarge",
    "p5e.48xlarge",
    "p5en.48xlarge",
    "p6-b200.48xlarge",
    "Standard_ND96asr_v4",
    "Standard_ND96amsr_A100_v4",
    "Standard_ND96isr_H100_v5",
    "Standard_ND96isr_H200_v5",
    "a3-highgpu-8g",
    "a3-megagpu-8g",
    "a3-ultragpu-8g",
    "a4-highgpu-8g",
]

# Short names that stack files refer to.
SHORT_GPU_NAMES = ["H100", "H200", "B200", "A100", "L40S", "L4", "A10G"]


def _raw_rows(name: str) -> list[dict[str, str]]:
    """The CSV rows as text, including the optional columns the loader ignores."""
    text = resources.files("gpufleet.catalog").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))


def _vendor_amount(vendor: str) -> tuple[float, str]:
    """Split a provider memory figure such as ``"81920 MiB"``, ``"80 GB"`` or ``"96 GiB"`` into (amount, unit)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?) (MiB|GiB|GB)", vendor)
    assert match, f"unparseable gpu_memory_vendor {vendor!r}"
    return float(match.group(1)), match.group(2)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("cloud", sorted(REQUIRED))
def test_required_rows_present(catalog, cloud: str) -> None:
    """Every instance type the planner is expected to know is in the catalog, under the right cloud."""
    missing = [name for name in REQUIRED[cloud] if name not in catalog.instances]
    assert not missing, f"missing {cloud} rows: {missing}"
    assert all(catalog.instance(name).cloud == cloud for name in REQUIRED[cloud])


@pytest.mark.parametrize(("name", "key"), [("instances.csv", "instance_type"), ("gpus.csv", "gpu")])
def test_keys_are_unique(name: str, key: str) -> None:
    """No key appears twice (the loader would silently keep the last GPU row)."""
    keys = [row[key] for row in _raw_rows(name)]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_every_row_has_https_sources(catalog) -> None:
    """Each instance row and each GPU row names the https page its figures were read from."""
    for row in catalog.instances.values():
        assert row.source.startswith("https://"), row.instance_type
        assert row.fabric_source.startswith("https://"), row.instance_type
    for gpu in catalog.gpus.values():
        assert gpu.source.startswith("https://"), gpu.name


def test_aws_rows_say_they_come_from_the_api(catalog) -> None:
    """AWS figures are DescribeInstanceTypes output; the row says so and which snapshot."""
    for row in catalog.for_cloud("aws"):
        assert "DescribeInstanceTypes" in row.source, row.instance_type
        assert "moto" in row.notes and "DescribeInstanceTypes" in row.notes, row.instance_type


def test_status_columns_use_the_vocabulary() -> None:
    """Status columns only use verified | secondary | derived | unverified | conflict."""
    for row in _raw_rows("instances.csv"):
        for column in ("fabric_status", "spec_status", "power_status"):
            assert row[column] in STATUSES, (row["instance_type"], column, row[column])
    for row in _raw_rows("gpus.csv"):
        for column in ("tdp_status", "tflops_status"):
            assert row[column] in STATUSES, (row["gpu"], column, row[column])


def test_retrieved_on_is_a_date(catalog) -> None:
    for row in catalog.instances.values():
        dt.date.fromisoformat(row.retrieved_on)


def test_gpu_memory_is_positive(catalog) -> None:
    for row in catalog.instances.values():
        assert row.gpus > 0 and row.gpu_memory_gib > 0, row.instance_type
    for gpu in catalog.gpus.values():
        assert gpu.memory_gib > 0, gpu.name


def test_every_instance_gpu_is_in_the_gpu_table(catalog) -> None:
    for row in catalog.instances.values():
        assert row.gpu in catalog.gpus, (row.instance_type, row.gpu)


def test_short_gpu_names_present(catalog) -> None:
    """Stack files refer to GPUs by these names."""
    assert set(SHORT_GPU_NAMES) <= set(catalog.gpus)


def test_gpu_variants_are_distinct_rows(catalog) -> None:
    """Variants that differ in memory or power are separate rows, not one row with a guess."""
    assert catalog.gpu("A100").memory_gib < catalog.gpu("A100-80GB").memory_gib
    assert catalog.gpu("A100-PCIE-80GB").tdp_w < catalog.gpu("A100-80GB").tdp_w
    assert catalog.gpu("H100-NVL").tdp_w < catalog.gpu("H100").tdp_w
    assert catalog.instance("p4d.24xlarge").gpu == "A100"
    assert catalog.instance("p4de.24xlarge").gpu == "A100-80GB"
    assert catalog.instance("Standard_NC40ads_H100_v5").gpu == "H100-NVL"


@pytest.mark.parametrize("name", TRAINING_TYPES)
def test_training_types_have_a_fabric(catalog, name: str) -> None:
    row = catalog.instance(name)
    assert row.fabric != "none" and row.fabric_interfaces > 0 and row.fabric_gbps > 0, name
    assert row.has_fabric


def test_fabric_fields_are_consistent(catalog) -> None:
    """``none`` means no interfaces and no bandwidth; any other fabric has both."""
    for row in catalog.instances.values():
        assert row.fabric in FABRICS
        if row.fabric == "none":
            assert row.fabric_interfaces == 0 and row.fabric_gbps == 0, row.instance_type
        else:
            assert row.fabric_interfaces > 0 and row.fabric_gbps > 0, row.instance_type
        assert row.network_cards >= 1, row.instance_type


def test_conflicts_are_explained(catalog) -> None:
    """A ``conflict`` fabric status comes with notes naming the competing figures."""
    for row in catalog.instances.values():
        if row.fabric_status == "conflict":
            assert len(row.notes) > 60, row.instance_type
    assert catalog.instance("p6-b200.48xlarge").fabric_status == "conflict"
    assert "1,600" in catalog.instance("p6-b200.48xlarge").notes
    assert catalog.instance("a3-megagpu-8g").fabric_status == "conflict"
    assert "1,800" in catalog.instance("a3-megagpu-8g").notes


def test_instance_memory_agrees_with_gpu_table(catalog) -> None:
    """Per-GPU memory in both tables agrees within rounding for the same part.

    Providers state the same part in two ways: the EC2 API in MiB (compared with the GPU table's
    ``memory_gib``, which is the API figure where AWS carries the part) and Azure/GCP in vendor GB
    (compared with the GPU table's nominal ``memory_vendor_gb``, then converted as decimal GB).
    """
    nominal = {row["gpu"]: float(row["memory_vendor_gb"]) for row in _raw_rows("gpus.csv")}
    for row in catalog.instances.values():
        amount, unit = _vendor_amount(row.gpu_memory_vendor)
        gpu = catalog.gpu(row.gpu)
        if unit in ("MiB", "GiB"):
            gib = amount / 1024 if unit == "MiB" else amount
            assert row.gpu_memory_gib == pytest.approx(gib, abs=0.01), row.instance_type
            assert row.gpu_memory_gib == pytest.approx(gpu.memory_gib, abs=0.01), row.instance_type
        else:
            assert amount == nominal[row.gpu], (row.instance_type, amount, nominal[row.gpu])
            assert row.gpu_memory_gib == pytest.approx(amount * GIB_PER_GB, abs=0.01), row.instance_type


def test_gpu_table_memory_is_plausible() -> None:
    """A part's GiB figure lies between its nominal GB read as decimal and read as binary."""
    for row in _raw_rows("gpus.csv"):
        nominal, gib = float(row["memory_vendor_gb"]), float(row["memory_gib"])
        assert nominal * GIB_PER_GB - 0.01 <= gib <= nominal + 0.01, row["gpu"]


def test_node_power_is_present_and_explained(catalog) -> None:
    """Every row has a node power figure at least the GPUs' TDP, with a stated basis.

    TPU and Trainium vendors publish no chip power: those rows leave the chip's TDP empty and mark
    the node figure an unverified estimate.
    """
    for row in catalog.instances.values():
        gpu = catalog.gpu(row.gpu)
        assert row.node_power_kw is not None and row.node_power_kw > 0, row.instance_type
        if gpu.kind != "gpu":
            assert gpu.tdp_w is None and gpu.tdp_status == "unverified", gpu.name
            assert row.node_power_basis.startswith("estimate:"), row.instance_type
            assert "unverified" in row.node_power_basis and row.power_status == "unverified", row.instance_type
            continue
        assert gpu.tdp_w is not None
        assert row.node_power_kw >= row.gpus * gpu.tdp_w / 1000, row.instance_type
        assert row.node_power_basis.startswith("derived:"), row.instance_type
        assert "unverified" in row.node_power_basis, row.instance_type


def test_gpu_figures_a_user_would_notice(catalog) -> None:
    h100, b200 = catalog.gpu("H100"), catalog.gpu("B200")
    assert h100.tdp_w == 700 and b200.tdp_w == 1000
    assert h100.bf16_dense_tflops == pytest.approx(989, abs=1)
    assert b200.bf16_dense_tflops == pytest.approx(2250)
    assert catalog.gpu("L4").tdp_w == 72 and catalog.gpu("L40S").tdp_w == 350
    assert catalog.gpu("A10G").tdp_status == "conflict"
    assert catalog.gpu("A100").fp8_dense_tflops is None  # Ampere has no FP8 tensor cores


def test_instance_figures_a_user_would_notice(catalog) -> None:
    p5 = catalog.instance("p5.48xlarge")
    assert (p5.gpu, p5.gpus, p5.fabric, p5.fabric_interfaces, p5.fabric_gbps) == ("H100", 8, "efa", 32, 3200)
    assert p5.total_gpu_memory_gib == 640
    assert catalog.instance("p5en.48xlarge").fabric_interfaces == 16
    assert catalog.instance("p6-b200.48xlarge").fabric_interfaces == 8

    nd = catalog.instance("Standard_ND96isr_H100_v5")
    assert (nd.fabric, nd.fabric_interfaces, nd.fabric_gbps) == ("infiniband", 8, 3200)
    assert catalog.instance("Standard_ND96asr_v4").fabric == "infiniband"
    assert catalog.instance("Standard_NC80adis_H100_v5").fabric == "none"

    assert catalog.instance("a3-highgpu-8g").fabric == "gpudirect-tcpx"
    assert catalog.instance("a3-megagpu-8g").fabric == "gpudirect-tcpxo"
    ultra = catalog.instance("a3-ultragpu-8g")
    assert (ultra.gpu, ultra.fabric, ultra.fabric_interfaces) == ("H200", "rdma", 8)
    assert catalog.instance("a4-highgpu-8g").gpu == "B200"
    assert catalog.instance("g2-standard-24").gpus == 2
    assert catalog.instance("g2-standard-96").gpus == 8

    g6e = catalog.instance("g6e.xlarge")
    assert (g6e.fabric, g6e.fabric_interfaces) == ("none", 0)
    assert not g6e.has_fabric


def test_training_instance_lookup(catalog) -> None:
    """The loader's training-instance choice lands on the fabric-equipped 8-GPU types."""
    assert catalog.training_instance("H100", "aws").instance_type == "p5.48xlarge"
    assert catalog.training_instance("H100", "azure").instance_type == "Standard_ND96isr_H100_v5"
    assert catalog.training_instance("H100", "gcp").instance_type == "a3-megagpu-8g"
    assert catalog.training_instance("B200", "gcp").instance_type == "a4-highgpu-8g"


ACCELERATOR_ROWS = {  # chip, kind, chips per host, fabric, interfaces
    "ct5p-hightpu-4t": ("v5p", "tpu", 4, "ici", 4),
    "ct5lp-hightpu-4t": ("v5e", "tpu", 4, "ici", 4),
    "ct5lp-hightpu-8t": ("v5e", "tpu", 8, "ici", 8),
    "ct6e-standard-4t": ("v6e", "tpu", 4, "ici", 4),
    "ct6e-standard-8t": ("v6e", "tpu", 8, "ici", 8),
    "trn1.32xlarge": ("trainium1", "trainium", 16, "efa", 8),
    "trn2.48xlarge": ("trainium2", "trainium", 16, "efa", 16),
}


@pytest.mark.parametrize("name", sorted(ACCELERATOR_ROWS))
def test_tpu_and_trainium_hosts(catalog, name: str) -> None:
    """The TPU and Trainium host types carry their chip, its kind, chips per host and fabric."""
    row = catalog.instance(name)
    chip, kind, chips, fabric, interfaces = ACCELERATOR_ROWS[name]
    assert (row.gpu, catalog.kind(row.gpu), row.gpus, row.fabric, row.fabric_interfaces) == (
        chip, kind, chips, fabric, interfaces)


def test_existing_rows_are_gpus(catalog) -> None:
    assert {catalog.kind(g) for g in SHORT_GPU_NAMES} == {"gpu"}
    assert [g for g in catalog.gpus.values() if g.kind != "gpu"] == [
        catalog.gpu(n) for n in ("v5e", "v5p", "v6e", "trainium1", "trainium2")]


def test_chip_figures_a_user_would_notice(catalog) -> None:
    """Google's and AWS's published per-chip figures, as the docs state them."""
    figures = {n: (g.bf16_dense_tflops, g.int8_dense_tops, g.ici_gbps) for n, g in catalog.gpus.items()}
    assert figures["v5e"] == (197, 393, 1600)
    assert figures["v5p"] == (459, None, 4800)  # INT8 not on Google's v5p page: left empty
    assert figures["v6e"] == (918, 1836, 3584)
    assert figures["trainium1"] == (190, 380, None)
    assert figures["trainium2"] == (667, None, None)
    assert catalog.gpu("trainium2").fp8_dense_tflops == 1299
    assert catalog.gpu("trainium2").memory_gib == 96 and catalog.gpu("trainium1").memory_gib == 32
    assert catalog.gpu("v5p").memory_vendor_gb == 95


def test_tpu_topologies(catalog) -> None:
    """Every shape's chips are the product of its dimensions and fill its VMs; smallest first."""
    assert set(catalog.topologies) == {"v5e", "v5p", "v6e"}
    for gen, shapes in catalog.topologies.items():
        assert [s.chips for s in shapes] == sorted(s.chips for s in shapes)
        for s in shapes:
            assert s.vms * catalog.instance(s.host_type).gpus == s.chips, (gen, s.topology)
            assert s.source == f"https://cloud.google.com/tpu/docs/{gen}"
    v5p = {s.topology: s for s in catalog.topologies["v5p"]}
    assert (v5p["4x4x4"].chips, v5p["4x4x4"].vms, v5p["4x4x4"].accelerator_type) == (64, 16, "v5p-128")
    assert catalog.topologies["v5p"][-1].chips == 6144  # the largest single v5p slice, 16x16x24
    assert [s.topology for s in catalog.topologies["v6e"] if s.single_host] == ["2x2", "2x4"]
    assert catalog.training_instance("v6e", "gcp").instance_type == "ct6e-standard-4t"
    assert catalog.training_instance("trainium2", "aws").instance_type == "trn2.48xlarge"


def test_slice_shape_is_the_generations_tabled_topology(catalog) -> None:
    """One TPU generation's slice of one topology; the same topology of another generation is its own shape."""
    assert catalog.slice_shape("v5p", "4x4x4").accelerator_type == "v5p-128"
    assert catalog.slice_shape("v5e", "2x4").accelerator_type == "v5litepod-8"
    assert catalog.slice_shape("v6e", "2x4").accelerator_type == "v6e-8"
    assert catalog.slice_shape("v5p", "2x4") is None  # a v5e / v6e topology, not a v5p one
    assert catalog.slice_shape("v5p", "4x4x5") is None  # not tabled
    assert catalog.slice_shape("H100", "2x2") is None  # not a TPU
    assert catalog.slice_shape(None, "2x2") is None and catalog.slice_shape("v5e", None) is None
