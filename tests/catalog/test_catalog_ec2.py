"""Check every AWS row of the catalog against EC2's own instance-type data.

The figures come from ``ec2.describe_instance_types`` served by moto, which ships a snapshot of
the real DescribeInstanceTypes output. When ``GPUFLEET_MOTO_URL`` is set (CI starts a moto server
on 127.0.0.1) the test talks to that server; otherwise it uses moto's in-process ``mock_aws``.
Both serve the same data and neither reaches the network.

Checked per row: GPU model and count, per-GPU memory (MiB -> GiB), EFA support and
``MaximumEfaInterfaces`` (0 when EFA is unsupported), ``MaximumNetworkCards``, vCPUs and host memory.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from moto import mock_aws

from gpufleet.catalog import InstanceType, load_catalog

MOTO_URL_ENV = "GPUFLEET_MOTO_URL"
REGION = "us-east-1"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
GIB_TOLERANCE = 0.01  # the CSV rounds GiB to two decimals

AWS_ROWS = load_catalog().for_cloud("aws")


def _client(endpoint_url: str | None) -> Any:
    """An EC2 client with dummy credentials, pointed at moto."""
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )


def _describe(client: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """DescribeInstanceTypes for ``names`` (in batches of 100), keyed by instance type."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), 100):
        batch = names[start : start + 100]
        for item in client.describe_instance_types(InstanceTypes=batch)["InstanceTypes"]:
            found[item["InstanceType"]] = item
    return found


@pytest.fixture(scope="module")
def ec2_types() -> dict[str, dict[str, Any]]:
    """EC2's description of every AWS instance type in the catalog."""
    names = [row.instance_type for row in AWS_ROWS]
    url = os.environ.get(MOTO_URL_ENV)
    if url:
        host = urlparse(url).hostname
        if host not in LOCAL_HOSTS:
            pytest.fail(f"{MOTO_URL_ENV}={url!r} must point at a local moto server (127.0.0.1)")
        return _describe(_client(url), names)
    with mock_aws():
        return _describe(_client(None), names)


def mismatches(row: InstanceType, api: dict[str, Any]) -> list[str]:
    """Every field where ``row`` disagrees with the DescribeInstanceTypes entry ``api``."""
    problems: list[str] = []

    def check(field: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            problems.append(f"{field}: catalog {ours!r} != EC2 {theirs!r}")

    neuron = api.get("NeuronInfo", {}).get("NeuronDevices", [])
    if neuron:  # Trainium: chips are Neuron devices
        check("chips", row.gpus, sum(d["Count"] for d in neuron))
        # EC2 names the first generation "Trainium"; the catalog numbers it (trainium1).
        check("chip model", row.gpu, {"Trainium": "trainium1"}.get(neuron[0]["Name"], neuron[0]["Name"].lower()))
        mib = neuron[0]["MemoryInfo"]["SizeInMiB"]
        if row.gpu_memory_vendor.endswith("MiB"):
            check("gpu_memory_vendor", row.gpu_memory_vendor, f"{mib} MiB")
        elif not (row.spec_status == "conflict" and str(mib) in row.notes):
            problems.append(f"chip memory {row.gpu_memory_vendor} differs from EC2's {mib} MiB without a noted conflict")
    gpus = api.get("GpuInfo", {}).get("Gpus", [])
    if not neuron:
        check("gpus", row.gpus, sum(g["Count"] for g in gpus))
    if gpus:
        # Catalog names add a variant suffix (A100-80GB); EC2 gives the base model (A100).
        check("gpu model", row.gpu.split("-")[0], gpus[0]["Name"])
        mib = gpus[0]["MemoryInfo"]["SizeInMiB"]
        if abs(row.gpu_memory_gib - mib / 1024) > GIB_TOLERANCE:
            problems.append(f"gpu_memory_gib: catalog {row.gpu_memory_gib} != EC2 {mib} MiB = {mib / 1024:.3f} GiB")
        check("gpu_memory_vendor", row.gpu_memory_vendor, f"{mib} MiB")

    net = api["NetworkInfo"]
    efa_supported = bool(net.get("EfaSupported"))
    max_efa = net.get("EfaInfo", {}).get("MaximumEfaInterfaces", 0) if efa_supported else 0
    check("fabric", row.fabric, "efa" if efa_supported else "none")
    check("fabric_interfaces (MaximumEfaInterfaces)", row.fabric_interfaces, max_efa)
    check("network_cards (MaximumNetworkCards)", row.network_cards, net.get("MaximumNetworkCards", 1))

    check("vcpus", row.vcpus, api["VCpuInfo"]["DefaultVCpus"])
    host_gib = api["MemoryInfo"]["SizeInMiB"] / 1024
    if abs(row.host_memory_gib - host_gib) > GIB_TOLERANCE:
        problems.append(f"host_memory_gib: catalog {row.host_memory_gib} != EC2 {host_gib}")
    return problems


def test_trainium_conflict_needs_its_note(ec2_types: dict[str, dict[str, Any]]) -> None:
    """A Trainium row whose chip memory differs from EC2's passes only with the conflict noted."""
    row = load_catalog().instance("trn2.48xlarge")
    assert not mismatches(row, ec2_types["trn2.48xlarge"])
    assert mismatches(replace(row, notes="", spec_status="verified"), ec2_types["trn2.48xlarge"])
    assert mismatches(replace(row, gpus=8), ec2_types["trn2.48xlarge"])


def test_catalog_has_aws_rows() -> None:
    """Guard against the parametrised test silently running over nothing."""
    assert len(AWS_ROWS) >= 30


@pytest.mark.parametrize("row", AWS_ROWS, ids=[r.instance_type for r in AWS_ROWS])
def test_aws_row_matches_ec2(row: InstanceType, ec2_types: dict[str, dict[str, Any]]) -> None:
    """Each AWS row says what DescribeInstanceTypes says about the instance type."""
    assert row.instance_type in ec2_types, f"EC2 does not know {row.instance_type!r}"
    problems = mismatches(row, ec2_types[row.instance_type])
    assert not problems, f"{row.instance_type} disagrees with EC2:\n  " + "\n  ".join(problems)


def test_check_catches_a_wrong_row(ec2_types: dict[str, dict[str, Any]]) -> None:
    """The comparison is not vacuous: a row with wrong figures is reported field by field."""
    row = load_catalog().instance("p5.48xlarge")
    wrong = replace(row, gpus=4, gpu_memory_gib=74.51, fabric_interfaces=4, network_cards=1)
    problems = "\n".join(mismatches(wrong, ec2_types["p5.48xlarge"]))
    for field in ("gpus", "gpu_memory_gib", "MaximumEfaInterfaces", "MaximumNetworkCards"):
        assert field in problems
    inference = replace(load_catalog().instance("g6e.xlarge"), fabric="efa", fabric_interfaces=1)
    assert mismatches(inference, ec2_types["g6e.xlarge"])
