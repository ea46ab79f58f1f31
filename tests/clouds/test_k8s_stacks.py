"""The GKE and AKS stacks as the program builds them: every resource sits in a component with the site's
explicit provider (in-cluster objects: the cluster's Kubernetes provider), every node pool carries its
pool's labels or tags, every rule passes on what was built, and a node pool maximum cut by hand in the
built resources blocks capacity (the pack reads the node pools' own inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpufleet.offline import OfflineRun, run_program
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import check_capacity_covers_demand, check_survives_zone_loss, check_training_fabric
from tests.program.test_stacks import check_parents_and_providers

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def _run(stack: str) -> OfflineRun:
    run = run_program(STACKS / f"Pulumi.{stack}.yaml")
    assert run.error is None
    return run


def _resources(run: OfflineRun) -> list[Resource]:
    return [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]


@pytest.fixture(scope="module")
def runs() -> dict[str, OfflineRun]:
    return {name: _run(name) for name in ("gke-a3ultra", "aks-inference")}


@pytest.fixture(scope="module")
def gke(runs: dict[str, OfflineRun]) -> list[Resource]:
    return _resources(runs["gke-a3ultra"])


@pytest.fixture(scope="module")
def aks(runs: dict[str, OfflineRun]) -> list[Resource]:
    return _resources(runs["aks-inference"])


@pytest.mark.parametrize("name", ["gke-a3ultra", "aks-inference"])
def test_every_resource_sits_in_a_component_with_an_explicit_provider(name: str,
                                                                       runs: dict[str, OfflineRun]) -> None:
    run = runs[name]
    check_parents_and_providers(run)
    for r in run.resources:
        if r.type.startswith("kubernetes:") and not r.is_provider:
            assert "$pulumi:providers:kubernetes::" in str(r.provider), f"{r.name}: provider {r.provider}"


@pytest.mark.parametrize(("name", "token", "field"), [
    ("gke-a3ultra", "gcp:container/nodePool:NodePool", "nodeConfig.resourceLabels"),
    ("aks-inference", "azure-native:containerservice:AgentPool", "tags"),
])
def test_every_gpu_node_pool_carries_its_pools_tags(name: str, token: str, field: str,
                                                    runs: dict[str, OfflineRun]) -> None:
    pools = [r for r in runs[name].resources if r.type == token and r.name.split("-")[-1] != "system"]
    assert pools
    for r in pools:
        value: Any = r.inputs
        for part in field.split("."):
            value = value[part]
        assert value["gpufleet-pool"] in r.name and value["gpufleet-role"] in {"training", "inference"}


def _cut(resources: list[Resource], name: str, **props: Any) -> list[Resource]:
    return [Resource(type=r.type, name=r.name, urn=r.urn, props={**r.props, **props}, parent=r.parent)
            if r.name == name else r for r in resources]


def test_the_built_gke_training_pool_is_complete_and_a_cut_node_count_blocks(gke: list[Resource]) -> None:
    inv = build_inventory(gke)
    assert check_training_fabric(inv, {}).findings == []
    assert check_capacity_covers_demand(inv, {}).findings == []
    (finding,) = check_capacity_covers_demand(build_inventory(_cut(gke, "pretrain-moe-gke-usc1-nodes",
                                                                   nodeCount=60)), {}).findings
    assert finding.message.startswith("pretrain-moe: 60 nodes provisioned, the 45-day deadline needs 93")


def test_the_built_aks_pools_carry_their_services_and_a_cut_maximum_blocks(aks: list[Resource]) -> None:
    inv = build_inventory(aks)
    assert check_capacity_covers_demand(inv, {}).findings == []
    assert check_survives_zone_loss(inv, {}).findings == []
    (finding,) = check_capacity_covers_demand(build_inventory(_cut(aks, "embed-8b-aks-eastus2-nodes",
                                                                   maxCount=10)), {}).findings
    assert finding.message.startswith("embed-8b: ")
