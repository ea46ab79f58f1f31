"""The GKE and AKS stacks as the program builds them: every rule passes on what was built, and a node pool
maximum cut by hand in the built resources blocks capacity (the pack reads the node pools' own inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpufleet.offline import run_program
from gpufleet.policy.resources import Resource, build_inventory
from gpufleet.policy.rules import check_capacity_covers_demand, check_survives_zone_loss, check_training_fabric

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def _resources(stack: str) -> list[Resource]:
    run = run_program(STACKS / f"Pulumi.{stack}.yaml")
    assert run.error is None
    return [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, parent=r.parent) for r in run.resources]


@pytest.fixture(scope="module")
def gke() -> list[Resource]:
    return _resources("gke-a3ultra")


@pytest.fixture(scope="module")
def aks() -> list[Resource]:
    return _resources("aks-inference")


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
