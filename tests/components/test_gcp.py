"""GCP backend: NIC layouts by machine family, workload policies, reservations, regional autoscaling and
its metric path."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from gpufleet.catalog import load_catalog
from gpufleet.clouds.gcp.profile import LAYOUTS, image_family, layout_for, machine_family
from gpufleet.offline import OfflineRun

TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
NETWORK = "gcp:compute/network:Network"
POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
ZONE_MIG = "gcp:compute/instanceGroupManager:InstanceGroupManager"
REGION_MIG = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"


def _networks(run: OfflineRun) -> dict[str, dict[str, Any]]:
    return {r.id: r.inputs for r in run.of_type(NETWORK)}


def test_machine_families_and_layouts() -> None:
    assert machine_family("a3-ultragpu-8g") == "a3-ultragpu"
    assert layout_for("g2-standard-48") is None
    for machine, (fabric, nics, nic_type) in {
        "a3-megagpu-8g": ("gpudirect-tcpxo", 8, "GVNIC"),
        "a3-highgpu-8g": ("gpudirect-tcpx", 4, "GVNIC"),
        "a3-ultragpu-8g": ("rdma", 8, "MRDMA"),
        "a4-highgpu-8g": ("rdma", 8, "MRDMA"),
    }.items():
        layout = layout_for(machine)
        assert layout is not None and (layout.fabric, layout.gpu_nics, layout.gpu_nic_type) == (fabric, nics, nic_type)
        assert load_catalog().instance(machine).fabric == fabric
    assert LAYOUTS["a4x-highgpu"].gpu_nics == 4


def test_a3_ultra_template_has_8_mrdma_nics_on_the_zone_roce_network(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "training", nodes=16)
    run = build(site_of("gcp"), [pool])
    (template,) = run.of_type(TEMPLATE)
    nics = template.inputs["networkInterfaces"]
    networks = _networks(run)
    gvnic = [n for n in nics if n["nicType"] == "GVNIC"]
    mrdma = [n for n in nics if n["nicType"] == "MRDMA"]
    assert len(gvnic) == 2 and len({n["network"] for n in gvnic}) == 2
    assert len(mrdma) == 8 and len({n["subnetwork"] for n in mrdma}) == 8
    (roce,) = {n["network"] for n in mrdma}
    zone = pool.zones[0]
    assert networks[roce]["networkProfile"] == f"projects/unit-project/global/networkProfiles/{zone}-vpc-roce"
    # No firewall rules on the RoCE VPC.
    assert all(fw.inputs["network"] != roce for fw in run.of_type("gcp:compute/firewall:Firewall"))

    assert template.inputs["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert template.inputs["labels"] == pool.tags

    (group,) = run.of_type(ZONE_MIG)
    assert group.inputs["zone"] == zone and group.inputs["targetSize"] == 16
    assert group.inputs["versions"][0]["instanceTemplate"].startswith(template.id)


@pytest.mark.parametrize("machine", ["a3-ultragpu-8g", "a4-highgpu-8g", "a3-megagpu-8g", "a3-highgpu-8g"])
def test_training_migs_are_placed_by_a_high_throughput_workload_policy_not_a_collocated_vm_count(
        machine: str, site_of: Callable[..., Any], pool_of: Callable[..., Any],
        build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "training", instance_type=machine, nodes=16, fabric_setup_by_workload=True)
    run = build(site_of("gcp"), [pool])
    (policy,) = run.of_type(POLICY)
    assert policy.inputs["workloadPolicy"] == {"type": "HIGH_THROUGHPUT"}
    assert "groupPlacementPolicy" not in policy.inputs and policy.inputs["region"] == pool.region
    (group,) = run.of_type(ZONE_MIG)
    assert group.inputs["resourcePolicies"] == {"workloadPolicy": policy.id}
    assert "resourcePolicies" not in run.of_type(TEMPLATE)[0].inputs
    assert run.named(pool.name).inputs["pool"]["placement_group"] is True


def test_a_training_mig_waits_for_its_vms_so_a_deploy_without_capacity_fails(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    run = build(site_of("gcp"), [pool_of("gcp", "training"), pool_of("gcp", "inference")])
    for group in (*run.of_type(ZONE_MIG), *run.of_type(REGION_MIG)):
        assert group.inputs["waitForInstances"] is True and group.inputs["waitForInstancesStatus"] == "STABLE"


def test_no_placement_policy_without_placement_group(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                     build: Callable[..., OfflineRun]) -> None:
    run = build(site_of("gcp"), [pool_of("gcp", "training", placement_group=False)])
    assert run.of_type(POLICY) == []
    assert "resourcePolicies" not in run.of_type(ZONE_MIG)[0].inputs


def test_fabric_subnets_never_overlap_the_site_or_each_other(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    site = site_of("gcp")
    pools = [pool_of("gcp", "training", workload="ultra-b", zones=("us-central1-b",)),
             pool_of("gcp", "training", workload="ultra-c", zones=("us-central1-c",)),
             pool_of("gcp", "training", instance_type="a3-megagpu-8g", workload="mega"),
             pool_of("gcp", "training", instance_type="a3-highgpu-8g", workload="high")]
    run = build(site, pools)
    ranges = [ipaddress.ip_network(s.inputs["ipCidrRange"]) for s in run.of_type("gcp:compute/subnetwork:Subnetwork")]
    # system + gvnic2 + 2 zones x 8 RoCE + 8 TCPXO + 4 TCPX
    assert len(ranges) == 1 + 1 + 16 + 8 + 4
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            assert not a.overlaps(b), (a, b)
    roce = [n for n in run.of_type(NETWORK) if "networkProfile" in n.inputs]
    assert sorted(n.inputs["networkProfile"].split("/")[-1] for n in roce) == \
        ["us-central1-b-vpc-roce", "us-central1-c-vpc-roce"]


@pytest.mark.parametrize(("machine", "gpu_nics"), [("a3-megagpu-8g", 8), ("a3-highgpu-8g", 4)])
def test_tcpx_families_put_each_gpu_nic_in_its_own_vpc(
        machine: str, gpu_nics: int, site_of: Callable[..., Any], pool_of: Callable[..., Any],
        build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "training", instance_type=machine)
    run = build(site_of("gcp"), [pool])
    (template,) = run.of_type(TEMPLATE)
    nics = template.inputs["networkInterfaces"]
    assert len(nics) == 1 + gpu_nics
    assert len({n["network"] for n in nics}) == 1 + gpu_nics
    assert all(n["nicType"] == "GVNIC" for n in nics)
    component = run.named(pool.name)
    assert component.inputs["fabric_interfaces"] == gpu_nics


@pytest.mark.parametrize(("machine", "bound", "model"), [
    ("a3-ultragpu-8g", None, "RESERVATION_BOUND"),  # A3 Ultra / A4 reservations come from future reservations
    ("a4-highgpu-8g", None, "RESERVATION_BOUND"),
    ("a3-ultragpu-8g", False, None),
    ("a3-megagpu-8g", None, None),
    ("a3-megagpu-8g", True, "RESERVATION_BOUND"),
])
def test_a_specific_reservation_brings_its_own_placement_and_provisioning_model(
        machine: str, bound: bool | None, model: str | None, site_of: Callable[..., Any],
        pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "training", instance_type=machine, capacity_type="reservation", reservation_id="a3u-res",
                   reservation_bound=bound, fabric_setup_by_workload=True)
    run = build(site_of("gcp"), [pool])
    (template,) = run.of_type(TEMPLATE)
    assert template.inputs["reservationAffinity"] == {"type": "SPECIFIC_RESERVATION", "specificReservation": {
        "key": "compute.googleapis.com/reservation-name", "values": ["a3u-res"]}}
    assert template.inputs["scheduling"].get("provisioningModel") == model
    # The reservation places its VMs: gpufleet adds no compact or workload policy of its own.
    assert run.of_type(POLICY) == []
    assert "resourcePolicies" not in template.inputs and "resourcePolicies" not in run.of_type(ZONE_MIG)[0].inputs


def test_inference_is_a_regional_mig_with_a_custom_metric_autoscaler_and_standby_capacity(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "inference", nodes=12, min_nodes=3)
    run = build(site_of("gcp"), [pool])
    (group,) = run.of_type(REGION_MIG)
    assert group.inputs["distributionPolicyZones"] == list(pool.zones)
    # BALANCED creates GPU VMs where the zones have them; it does not support proactive redistribution.
    assert group.inputs["distributionPolicyTargetShape"] == "BALANCED"
    assert group.inputs["updatePolicy"]["instanceRedistributionType"] == "NONE"
    assert group.inputs["targetSize"] == 3 and group.ignore_changes == ("targetSize",)
    assert group.inputs["standbyPolicy"]["mode"] == "SCALE_OUT_POOL" and group.inputs["targetStoppedSize"] == 3
    (scaler,) = run.of_type("gcp:compute/regionAutoscaler:RegionAutoscaler")
    policy = scaler.inputs["autoscalingPolicy"]
    assert (policy["minReplicas"], policy["maxReplicas"]) == (3, 12)
    assert policy["metrics"] == [{"name": "custom.googleapis.com/gpufleet/tokens_per_s",
                                  "target": pool.scaling_target_per_node, "type": "GAUGE"}]
    assert scaler.inputs["target"] == group.id
    (template,) = run.of_type(TEMPLATE)
    assert len(template.inputs["networkInterfaces"]) == 1
    assert "accessConfigs" not in template.inputs["networkInterfaces"][0]  # no external IP


def test_images_come_from_an_image_family(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                          build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "training")
    run = build(site_of("gcp"), [pool])
    (call,) = run.calls
    project, family = image_family(load_catalog().instance("a3-ultragpu-8g"))
    assert call.token == "gcp:compute/getImage:getImage"
    assert call.args == {"family": family, "project": project}
    disk = run.of_type(TEMPLATE)[0].inputs["disks"][0]
    assert disk["sourceImage"] == call.result["selfLink"] and disk["diskType"] == "hyperdisk-balanced"


def test_inference_nodes_run_as_a_service_account_that_may_only_write_metrics(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "inference", nodes=12, min_nodes=3)
    run = build(site_of("gcp"), [pool])
    (account,) = run.of_type("gcp:serviceaccount/account:Account")
    assert account.inputs["accountId"] == "gpufleet-serve-gcp-test" and account.inputs["project"] == "unit-project"
    email = "gpufleet-serve-gcp-test@unit-project.iam.gserviceaccount.com"
    (member,) = run.of_type("gcp:projects/iAMMember:IAMMember")
    assert member.inputs == {"project": "unit-project", "role": "roles/monitoring.metricWriter",
                             "member": f"serviceAccount:{email}"}
    assert account.urn in member.dependencies
    (template,) = run.of_type(TEMPLATE)
    assert template.inputs["serviceAccount"] == {"email": email,
                                                 "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    # No external IP: the metric reaches monitoring.googleapis.com through Private Google Access.
    (subnet,) = [s for s in run.of_type("gcp:compute/subnetwork:Subnetwork")
                 if s.inputs["network"] == template.inputs["networkInterfaces"][0]["network"]]
    assert subnet.inputs["privateIpGoogleAccess"] is True


def test_training_nodes_run_as_their_own_service_account_that_may_only_write_logs_and_metrics(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("gcp", "training")
    run = build(site_of("gcp"), [pool])
    (account,) = run.of_type("gcp:serviceaccount/account:Account")
    assert account.inputs["accountId"] == "gpufleet-train-gcp-test" and account.inputs["project"] == "unit-project"
    email = "gpufleet-train-gcp-test@unit-project.iam.gserviceaccount.com"
    grants = run.of_type("gcp:projects/iAMMember:IAMMember")
    assert sorted(m.inputs["role"] for m in grants) == ["roles/logging.logWriter", "roles/monitoring.metricWriter"]
    assert all(m.inputs["member"] == f"serviceAccount:{email}" and account.urn in m.dependencies for m in grants)
    (template,) = run.of_type(TEMPLATE)  # not the Compute Engine default account, not none
    assert template.inputs["serviceAccount"] == {"email": email,
                                                 "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
