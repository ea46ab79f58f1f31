"""Trainium training clusters on AWS are built like p5: every EFA interface and a cluster placement group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.catalog import load_catalog
from gpufleet.clouds.aws.profile import dlami_parameter
from gpufleet.offline import OfflineRun


@pytest.mark.parametrize(("instance_type", "efa"), [("trn1.32xlarge", 8), ("trn2.48xlarge", 16)])
def test_trainium_cluster_attaches_every_efa_in_a_cluster_placement_group(
        instance_type: str, efa: int, site_of: Callable[..., Any], pool_of: Callable[..., Any],
        build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("aws", "training", instance_type=instance_type, nodes=8, accelerator_kind="trainium")
    run = build(site_of("aws"), [pool])
    (template,) = [r.inputs for r in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")]
    nics = template["networkInterfaces"]
    interfaces = [(n["networkCardIndex"], n["deviceIndex"]) for n in nics if n["interfaceType"] == "efa-only"]
    # One EFA per network card; card 0's EFA sits at device 1 behind the primary ENA interface.
    assert len(interfaces) == efa and sorted(c for c, _ in interfaces) == list(range(efa))
    assert (0, 1) in interfaces and all(d == 0 for c, d in interfaces if c)
    (group,) = [r.inputs for r in run.of_type("aws:ec2/placementGroup:PlacementGroup")]
    assert group["strategy"] == "cluster" and template["placement"]["groupName"] == f"{pool.name}-pg"
    component = run.named(pool.name).inputs
    assert component["pool"]["accelerator_kind"] == "trainium" and component["gpus_per_node"] == 16


def test_trainium_boots_the_neuron_dlami() -> None:
    row = load_catalog().instance("trn2.48xlarge")
    assert dlami_parameter(row) == "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
