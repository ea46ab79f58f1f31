"""TPU slices on GKE, before anything is built: the plan of ``stacks/Pulumi.gke-tpu.yaml`` (a multi-host
v5p slice, single-host v6e serving with autoscaled bounds), TPUs on EKS and Trainium on GKE refused with
the cloud that builds them named, and GKE's TPU rules (one zone per slice node pool, multi-slice only over
multi-host slices, serving only on single-host slices, the shape's machine type), each refused with its
field. The same refusals reach ``gpufleet plan`` (exit 2, nothing printed on stdout)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gpufleet import clouds
from gpufleet.catalog import load_catalog
from gpufleet.errors import SpecError
from gpufleet.plan import FleetPlan, PoolPlan, build_plan
from gpufleet.platforms import check_pool_platform
from gpufleet.spec import parse_fleet
from gpufleet.stackfile import read_config

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "stacks" / "Pulumi.gke-tpu.yaml"
TRAIN, SERVE = "pretrain-tpu-gke-use5", "chat-tpu-gke-use5"


def gke_tpu_fleet() -> dict[str, Any]:
    fleet: dict[str, Any] = copy.deepcopy(read_config(STACK)["gpufleet:fleet"])
    return fleet


@pytest.fixture(scope="module")
def plan() -> FleetPlan:
    return build_plan(parse_fleet(gke_tpu_fleet()), "gke-tpu")


def refused(fleet: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as exc:
        build_plan(parse_fleet(fleet), "t")
    return {i.loc: f"{i.message} | {i.hint}" for i in exc.value.issues}


def pool_issues(pool: PoolPlan) -> dict[str, str]:
    row = load_catalog().instance(pool.instance_type)
    return {i.loc: i.message for i in clouds.profile("gcp").check_pool(pool, row, "pool")}


def test_a_multi_host_slice_and_autoscaled_single_host_serving_plan_on_gke(plan: FleetPlan) -> None:
    train, serve = plan.pool(TRAIN), plan.pool(SERVE)
    assert (train.platform, train.accelerator_kind, train.topology, train.slices) == ("kubernetes", "tpu", "4x4x4", 1)
    assert (train.instance_type, train.nodes, train.gpus, train.zones) == ("ct5p-hightpu-4t", 16, 64, ("us-east5-a",))
    assert (serve.instance_type, serve.topology) == ("ct6e-standard-8t", "2x4")
    # GKE autoscales single-host TPU node pools: the bounds are the plan's, not a fixed size as on TPU VMs
    assert 0 < serve.min_nodes < serve.nodes
    per_replica = serve.sizing["memory"]["gpus_per_replica"]
    assert serve.max_replicas == serve.nodes * (serve.gpus_per_node // per_replica)
    assert not any("fixed size" in note for note in serve.notes)
    assert pool_issues(train) == {} and pool_issues(serve) == {}


def test_tpus_on_an_eks_site_are_refused_naming_the_field() -> None:
    fleet = gke_tpu_fleet()
    fleet["sites"][0].update(cloud="aws", region="us-east-2", zones=["us-east-2a", "us-east-2b", "us-east-2c"],
                             price_per_gpu_hour={})
    fleet["sites"][0].pop("project")
    fleet["sites"][0]["platform"]["kubernetes"]["system_pool"]["instance_type"] = "m6i.xlarge"
    fleet["training"][0].pop("zone")
    issues = refused(fleet)
    assert issues["fleet.training[0].gpu"].startswith("no instance type with v5p on aws"), issues
    assert issues["fleet.inference[0].gpu"].startswith("no instance type with v6e on aws"), issues


def test_a_tpu_pool_on_a_cloud_without_tpu_node_pools_names_gke(plan: FleetPlan) -> None:
    (issue,) = check_pool_platform(dataclasses.replace(plan.pool(TRAIN), cloud="azure"), "pool")
    assert "v5p (tpu) on Kubernetes (Azure)" in issue.message and "a Kubernetes site on GCP" in issue.hint
    assert check_pool_platform(plan.pool(TRAIN), "pool") == []


def test_trainium_stays_refused_on_kubernetes_with_no_cloud_to_name() -> None:
    fleet = gke_tpu_fleet()
    fleet["sites"][0].update(cloud="aws", region="us-east-2", zones=["us-east-2a", "us-east-2b", "us-east-2c"],
                             quota_gpus={}, price_per_gpu_hour={})
    fleet["sites"][0].pop("project")
    fleet["sites"][0]["platform"]["kubernetes"]["system_pool"]["instance_type"] = "m6i.xlarge"
    fleet["training"][0].update(accelerator="trainium2", instance_types=["trn2.48xlarge"])
    fleet["training"][0].pop("zone")
    del fleet["inference"]
    (message,) = [m for m in refused(fleet).values() if "(trainium) on Kubernetes" in m]
    assert "NVIDIA GPUs only" in message and "a Kubernetes site on" not in message


def test_a_slice_node_pool_spanning_zones_is_refused(plan: FleetPlan) -> None:
    pool = dataclasses.replace(plan.pool(TRAIN), zones=("us-east5-a", "us-east5-b"),
                               nodes_by_zone={"us-east5-a": 8, "us-east5-b": 8})
    assert "single zone" in pool_issues(pool)["pool.zone"]


def test_multi_slice_needs_multi_host_slices(plan: FleetPlan) -> None:
    ok = dataclasses.replace(plan.pool(TRAIN), slices=2, nodes=32, gpus=128, nodes_by_zone={"us-east5-a": 32})
    assert pool_issues(ok) == {}
    single = dataclasses.replace(plan.pool(TRAIN), topology="2x2x1", slices=2, nodes=2, gpus=8,
                                 nodes_by_zone={"us-east5-a": 2})
    assert "only over multi-host TPU slice node pools" in pool_issues(single)["pool.slices"]


def test_serving_on_a_multi_host_slice_is_refused(plan: FleetPlan) -> None:
    pool = dataclasses.replace(plan.pool(SERVE), instance_type="ct6e-standard-4t", gpus_per_node=4, topology="4x4")
    assert "scales only whole" in pool_issues(pool)["pool.model"]


def test_a_machine_type_that_is_not_the_shapes_host_is_refused(plan: FleetPlan) -> None:
    pool = dataclasses.replace(plan.pool(SERVE), instance_type="ct6e-standard-4t", gpus_per_node=4)  # 2x4 is an 8t
    assert "runs on 1 ct6e-standard-8t node(s)" in pool_issues(pool)["pool.instance_types"]
    cut = dataclasses.replace(plan.pool(TRAIN), nodes=12, gpus=48, nodes_by_zone={"us-east5-a": 12})
    assert "runs on 16 ct5p-hightpu-4t node(s) per slice, not 12" in pool_issues(cut)["pool.instance_types"]


def test_gke_tpu_refusals_reach_gpufleet_plan(run_cli: Any, tmp_path: Path) -> None:
    text = STACK.read_text().replace("        zone: us-east5-a\n", "        zone: us-east5-a\n        slices: 2\n", 1)
    text = text.replace("tokens: 5.0e11", "tokens: 2.0e10")  # 2 slices of the smallest shape: single-host 2x2x1
    path = tmp_path / "Pulumi.gke-tpu-small.yaml"
    path.write_text(text)
    code, out, err = run_cli("plan", "--stack", str(path))
    assert code == 2 and out == "", err
    assert "fleet.training[0].slices" in err and "multi-host TPU slice node pools" in err
