"""The GKE and AKS named checks: each returns nothing for pools on VMs, and refuses with the field and a
hint what GKE or AKS cannot build or run (unknown accelerator type, too many nodes per zone or cluster,
queued provisioning with COMPACT placement, InfiniBand software nobody installs, a malformed or
foreign existing cluster id, overlapping AKS pod / service ranges)."""

from __future__ import annotations

from typing import Any

import pytest

from gpufleet import clouds
from gpufleet.catalog import load_catalog
from gpufleet.clouds.azure import aks
from gpufleet.clouds.gcp import gke
from gpufleet.errors import Issue
from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec
from tests.clouds.builders import make_pool, make_site

def _k8s_pool(cloud: str, role: str = "training", **overrides: Any) -> PoolPlan:
    return make_pool(cloud, role, platform="kubernetes", cluster=f"gpufleet-{cloud}-test", **overrides)


def _pool_issues(pool: PoolPlan) -> list[Issue]:
    return clouds.profile(pool.cloud).check_pool(pool, load_catalog().instance(pool.instance_type), "w")


def _site_issues(site: SiteSpec, pools: list[PoolPlan]) -> list[Issue]:
    return clouds.profile(site.cloud).check_site(site, pools, "s")


def _attached(cloud: str, cluster_id: str, **site: Any) -> SiteSpec:
    return make_site(cloud, platform={"kind": "kubernetes", "kubernetes": {"create": False, "cluster_id": cluster_id}},
                     **site)


def test_vm_pools_meet_none_of_the_kubernetes_checks() -> None:
    for cloud in ("gcp", "azure"):
        for role in ("training", "inference"):
            pool = make_pool(cloud, role)
            for check in (*gke.POOL_CHECKS, *aks.POOL_CHECKS):
                assert check(pool, load_catalog().instance(pool.instance_type), "w") == []


def test_the_node_pools_of_the_valid_pools_pass() -> None:
    assert _pool_issues(_k8s_pool("gcp")) == []
    assert _pool_issues(_k8s_pool("gcp", "inference")) == []
    assert _pool_issues(_k8s_pool("azure", nodes=2, fabric_setup_by_workload=True)) == []
    assert _pool_issues(_k8s_pool("azure", "inference")) == []


def test_gke_knows_the_accelerator_type_of_each_gpu_family() -> None:
    assert gke.accelerator_type("a3-ultragpu-8g") == "nvidia-h200-141gb"
    assert gke.accelerator_type("a3-megagpu-8g") == "nvidia-h100-mega-80gb"
    assert gke.accelerator_type("g2-standard-48") == "nvidia-l4"
    assert gke.accelerator_type("n2-standard-8") is None
    catalog = load_catalog()
    gcp_gpu_types = [r.instance_type for r in catalog.instances.values()
                     if r.cloud == "gcp" and catalog.kind(r.gpu) == "gpu"]  # TPU VM types have no GPU accelerator
    assert all(gke.accelerator_type(t) for t in gcp_gpu_types)


def test_gke_additional_networks_per_machine_family() -> None:
    wanted = {t: gke.wanted_networks(load_catalog().instance(t))
              for t in ("a3-highgpu-8g", "a3-megagpu-8g", "a3-ultragpu-8g", "a4-highgpu-8g", "g2-standard-48")}
    assert wanted == {"a3-highgpu-8g": 4, "a3-megagpu-8g": 8, "a3-ultragpu-8g": 9, "a4-highgpu-8g": 9,
                      "g2-standard-48": 0}


def test_gke_installs_the_gib_plugin_of_a3_ultra_and_a4_node_pools() -> None:
    needs = {t: gke.needs_gib(load_catalog().instance(t))
             for t in ("a3-ultragpu-8g", "a4-highgpu-8g", "a3-megagpu-8g", "g2-standard-48")}
    assert needs == {"a3-ultragpu-8g": True, "a4-highgpu-8g": True, "a3-megagpu-8g": False, "g2-standard-48": False}
    assert _pool_issues(_k8s_pool("gcp", nodes=8)) == []  # nothing for the run to set up
    assert gke.gib_installer_name("train-gcp-test") == "nccl-rdma-installer-train-gcp-test"
    assert len(gke.gib_installer_name("x" * 80)) <= 63


def test_multi_node_tcpxo_on_gke_needs_the_runs_software_as_on_vms() -> None:
    (issue,) = _pool_issues(_k8s_pool("gcp", instance_type="a3-megagpu-8g", nodes=8))
    assert issue.loc == "w.fabric_setup_by_workload" and "GPUDirect-TCPXO" in issue.message


def test_queued_provisioning_takes_no_compact_placement_on_gke() -> None:
    pool = _k8s_pool("gcp", capacity_type="flex_start", fabric_setup_by_workload=True)
    (issue,) = gke.check_pool_gke_queued_provisioning(pool, load_catalog().instance(pool.instance_type), "w")
    assert issue.loc == "w.capacity.placement_group"
    assert "placement_group: false" in (issue.hint or "")
    unplaced = _k8s_pool("gcp", capacity_type="flex_start", placement_group=False)
    assert gke.check_pool_gke_queued_provisioning(unplaced, load_catalog().instance(unplaced.instance_type), "w") == []


def test_a_gke_node_pool_holds_at_most_1000_nodes_per_zone() -> None:
    zones = ("us-central1-a", "us-central1-b")
    big = _k8s_pool("gcp", "inference", nodes=2002, zones=zones, nodes_by_zone=dict.fromkeys(zones, 1001))
    (issue,) = [i for i in _pool_issues(big) if "per zone" in i.message]
    assert "would hold 1001 nodes in one zone" in issue.message


def test_an_existing_gke_cluster_is_named_by_an_id_in_the_sites_project_and_region() -> None:
    good = _attached("gcp", "projects/unit-project/locations/us-central1/clusters/train")
    assert gke.check_site_gke_cluster_id(good, [], "s") == []
    zonal = _attached("gcp", "projects/unit-project/locations/us-central1-b/clusters/train")
    assert gke.check_site_gke_cluster_id(zonal, [], "s") == []
    (bad,) = gke.check_site_gke_cluster_id(_attached("gcp", "train"), [], "s")
    assert bad.loc == "s.platform.kubernetes.cluster_id" and "is not a GKE cluster id" in bad.message
    elsewhere = _attached("gcp", "projects/other-project/locations/europe-west4/clusters/train")
    assert [i.message.split(",")[0] for i in gke.check_site_gke_cluster_id(elsewhere, [], "s")] == [
        "cluster train is in project other-project", "cluster train is in europe-west4"]


@pytest.mark.parametrize(("name", "expected"), [
    ("train-gke-usc1", "train-gke-usc1"),
    ("a-very-long-workload-name-for-a-training-run-gke-usc1", None),
])
def test_gke_node_pool_names_fit(name: str, expected: str | None) -> None:
    got = gke.node_pool_name(name)
    assert gke.NODE_POOL_NAME.fullmatch(got)
    assert got == expected if expected else len(got) <= 40 and got != gke.node_pool_name(name + "x")


def test_aks_agent_pool_names_are_12_lowercase_letters_and_digits() -> None:
    assert aks.agent_pool_name("serve-aks") == "serveaks"
    names = {aks.agent_pool_name("pretrain-70b-aks-eastus2", i, 3) for i in range(3)}
    assert len(names) == 3 and all(aks.AGENT_POOL_NAME.fullmatch(n) for n in names)
    assert aks.AGENT_POOL_NAME.fullmatch(aks.agent_pool_name("70b-serve"))


def test_multi_node_infiniband_on_aks_needs_the_runs_network_operator() -> None:
    (issue,) = _pool_issues(_k8s_pool("azure", nodes=4))
    assert issue.loc == "w.fabric_setup_by_workload"
    assert "NVIDIA Network Operator" in issue.message and aks.INFINIBAND_FEATURE in (issue.hint or "")
    assert _pool_issues(make_pool("azure", nodes=4)) == []


def test_an_aks_cluster_holds_100_node_pools_and_5000_nodes() -> None:
    site = make_site("azure", platform={"kind": "kubernetes", "kubernetes": {
        "create": True, "system_pool": {"instance_type": "Standard_D8s_v5", "nodes": 3}}})
    pools = [_k8s_pool("azure", "inference", workload=f"svc{i}", nodes=60) for i in range(99)]
    (issue,) = aks.check_site_aks_cluster_limits(site, pools, "s")  # 99 + the system pool: 100 pools, fine
    assert issue.message == "the site's AKS cluster would run 5943 nodes at full size; AKS allows 5000"
    assert aks.check_site_aks_cluster_limits(site, pools[:10], "s") == []
    many = [_k8s_pool("azure", "inference", workload=f"svc{i}", nodes=3) for i in range(100)]
    (issue,) = aks.check_site_aks_cluster_limits(site, many, "s")
    assert issue.message == "the site's AKS cluster would hold 101 node pools; AKS allows 100"


def test_a_created_aks_clusters_ranges_stay_off_the_vnet() -> None:
    created = {"kind": "kubernetes", "kubernetes": {"create": True, "system_pool": {"instance_type": "Standard_D8s_v5"}}}
    assert aks.check_site_aks_cluster_ranges(make_site("azure", platform=created), [], "s") == []
    (issue,) = aks.check_site_aks_cluster_ranges(make_site("azure", platform=created, network_cidr="172.20.0.0/16"),
                                                 [], "s")
    assert issue.loc == "s.network_cidr" and "overlaps 172.20.0.0/16" in issue.message


def test_an_existing_aks_cluster_is_named_by_its_resource_id() -> None:
    rid = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml/providers/"
           "Microsoft.ContainerService/managedClusters/serve")
    assert aks.cluster_parts(rid) == ("ml", "serve")
    assert aks.check_site_aks_cluster_id(_attached("azure", rid), [], "s") == []
    (bad,) = aks.check_site_aks_cluster_id(_attached("azure", "serve"), [], "s")
    assert "is not an AKS cluster resource id" in bad.message
    (other,) = aks.check_site_aks_cluster_id(
        _attached("azure", rid, subscription_id="00000000-0000-0000-0000-000000000002"), [], "s")
    assert "is in subscription 00000000-0000-0000-0000-000000000001" in other.message


def test_a_created_clusters_name_fits_gke_and_aks() -> None:
    long_site = "a-site-name-long-enough-to-overflow-x"
    created = {"kind": "kubernetes", "kubernetes": {"create": True, "system_pool": {"instance_type": "e2-standard-8"}}}
    assert gke.check_site_gke_cluster_name(make_site("gcp", platform=created), [], "s") == []
    (issue,) = gke.check_site_gke_cluster_name(make_site("gcp", name=long_site, platform=created), [], "s")
    assert issue.loc == "s.platform.kubernetes.cluster_name" and f"'gpufleet-{long_site}'" in issue.message
    named = {"kind": "kubernetes", "kubernetes": {**created["kubernetes"], "cluster_name": "train"}}
    assert gke.check_site_gke_cluster_name(make_site("gcp", name=long_site, platform=named), [], "s") == []
    underscore = {"kind": "kubernetes", "kubernetes": {**created["kubernetes"], "cluster_name": "ml_serve"}}
    (issue,) = aks.check_site_aks_cluster_name(make_site("azure", platform=underscore), [], "s")
    assert "cannot name an AKS cluster and its DNS prefix" in issue.message
    assert aks.check_site_aks_cluster_name(make_site("azure", platform=created), [], "s") == []
