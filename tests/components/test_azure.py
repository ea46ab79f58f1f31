"""Azure backend: one single-placement-group scale set per InfiniBand island, SSH-only, autoscale settings."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from gpufleet.offline import OfflineRun

VMSS = "azure-native:compute:VirtualMachineScaleSet"
NC_A100 = "Standard_NC24ads_A100_v4"


def test_one_scale_set_per_island_each_a_single_placement_group(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "training", nodes=250, islands=(84, 83, 83))
    run = build(site_of("azure"), [pool])
    sets = run.of_type(VMSS)
    assert [s.name for s in sets] == [f"{pool.name}-ib{i}" for i in range(3)]
    assert [s.inputs["sku"]["capacity"] for s in sets] == [84, 83, 83]
    (ppg,) = run.of_type("azure-native:compute:ProximityPlacementGroup")
    for s in sets:
        assert s.inputs["singlePlacementGroup"] is True
        assert s.inputs["overprovision"] is False
        assert s.inputs["orchestrationMode"] == "Uniform"
        assert s.inputs["sku"]["capacity"] <= 100
        assert s.inputs["zones"] == [pool.zones[0]]
        assert s.inputs["proximityPlacementGroup"] == {"id": ppg.id}
        assert s.ignore_changes == ()  # a training cluster is static
    assert ppg.inputs["intent"] == {"vmSizes": [pool.instance_type]}


def test_nodes_get_the_hpc_image_ssh_keys_only_and_no_public_ip(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "training")
    run = build(site_of("azure"), [pool], ssh_public_key="ssh-ed25519 AAAATEST op@host")
    profile = run.of_type(VMSS)[0].inputs["virtualMachineProfile"]
    image = profile["storageProfile"]["imageReference"]
    assert (image["publisher"], image["offer"]) == ("microsoft-dsvm", "ubuntu-hpc")
    assert "customData" not in profile["osProfile"]  # the HPC image brings its drivers
    linux = profile["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"][0]["keyData"] == "ssh-ed25519 AAAATEST op@host"
    assert "adminPassword" not in profile["osProfile"]
    for nic in profile["networkProfile"]["networkInterfaceConfigurations"]:
        for ip in nic["ipConfigurations"]:
            assert "publicIPAddressConfiguration" not in ip and "publicIpAddressConfiguration" not in ip


def test_image_override_by_urn(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                               build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "training")
    run = build(site_of("azure"), [pool], images={pool.name: "almalinux:almalinux-hpc:8_10-hpc-gen2:latest"})
    image = run.of_type(VMSS)[0].inputs["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert image == {"publisher": "almalinux", "offer": "almalinux-hpc", "sku": "8_10-hpc-gen2", "version": "latest"}


def test_capacity_reservation_group_is_consumed(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                build: Callable[..., OfflineRun]) -> None:
    # Only what Azure can reserve gets here (the profile refuses ND sizes, single placement groups and
    # proximity placement groups): a single NC A100 v4 node outside any placement group.
    group_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/capacityReservationGroups/nc"
    pool = pool_of("azure", "training", NC_A100, nodes=1, capacity_type="reservation", reservation_id=group_id,
                   placement_group=False)
    run = build(site_of("azure"), [pool])
    (vmss,) = run.of_type(VMSS)
    assert vmss.inputs["virtualMachineProfile"]["capacityReservation"] == {"capacityReservationGroup": {"id": group_id}}
    assert vmss.inputs["singlePlacementGroup"] is False
    assert "proximityPlacementGroup" not in vmss.inputs
    assert run.of_type("azure-native:compute:ProximityPlacementGroup") == []


def test_nc_nodes_boot_ubuntu_and_install_the_nvidia_driver(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                            build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "inference")  # Standard_NC40ads_H100_v5: the HPC images do not list NC sizes
    os_profile = build(site_of("azure"), [pool]).of_type(VMSS)[0].inputs["virtualMachineProfile"]
    image = os_profile["storageProfile"]["imageReference"]
    assert image == {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
    cloud_init = base64.b64decode(os_profile["osProfile"]["customData"]).decode()
    assert cloud_init.startswith("#cloud-config\n") and "- [ubuntu-drivers, install]" in cloud_init
    assert "mode: reboot" in cloud_init
    override = build(site_of("azure"), [pool], images={pool.name: "Canonical:ubuntu-24_04-lts:server:latest"})
    assert "customData" not in override.of_type(VMSS)[0].inputs["virtualMachineProfile"]["osProfile"]


def test_inference_scale_sets_may_publish_their_scaling_metric(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "inference")
    run = build(site_of("azure"), [pool])
    sets = run.of_type(VMSS)
    grants = {g.inputs["scope"]: g for g in run.of_type("azure-native:authorization:RoleAssignment")}
    settings = {s.inputs["targetResourceUri"]: s for s in run.of_type("azure-native:monitor:AutoscaleSetting")}
    assert len(sets) == len(grants) == len(settings) == 3  # one per zone
    for vmss in sets:
        assert vmss.inputs["identity"] == {"type": "SystemAssigned"}
        grant = grants[vmss.id]  # the subject the VMs post the metric about, and only it
        assert grant.inputs["roleDefinitionId"] == ("/subscriptions/00000000-0000-0000-0000-000000000000/providers/"
                                                    "Microsoft.Authorization/roleDefinitions/"
                                                    "3913510d-42f4-4e42-8a64-420c390055eb")
        assert grant.inputs["principalType"] == "ServicePrincipal"
        assert vmss.urn in grant.dependencies  # the principal is the scale set's own identity
        setting = settings[vmss.id]
        assert grant.urn in setting.dependencies
        for rule in setting.inputs["profiles"][0]["rules"]:
            trigger = rule["metricTrigger"]
            assert (trigger["metricResourceUri"], trigger["metricNamespace"], trigger["metricName"]) == (
                vmss.id, pool.scaling_metric_namespace, pool.scaling_metric_name)
            assert trigger["dividePerInstance"] is False and trigger["statistic"] == "Average"


def test_a_site_serving_inference_gets_a_zonal_stack_per_zone(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    # One NAT gateway for VMs of three zones loses every VM's outbound path with its own zone: each zone
    # gets its NAT gateway, its zonal IP, and a subnet holding only its own VMs.
    pool = pool_of("azure", "inference", nodes=30, min_nodes=6)
    run = build(site_of("azure"), [pool])
    ips = {ip.id: ip for ip in run.of_type("azure-native:network:PublicIPAddress")}
    nats = {nat.id: nat for nat in run.of_type("azure-native:network:NatGateway")}
    subnets = {s.id: s for s in run.of_type("azure-native:network:Subnet")}
    assert len(ips) == len(nats) == len(subnets) == 3
    zone_of_subnet = {}
    for subnet in subnets.values():
        assert subnet.inputs["defaultOutboundAccess"] is False
        nat = nats[subnet.inputs["natGateway"]["id"]]
        assert nat.inputs["sku"] == {"name": "Standard"}
        (ip_ref,) = nat.inputs["publicIpAddresses"]
        ip = ips[ip_ref["id"]]
        assert ip.inputs["sku"] == {"name": "Standard", "tier": "Regional"}
        assert ip.inputs["publicIPAllocationMethod"] == "Static"
        assert ip.inputs["zones"] == nat.inputs["zones"] and len(nat.inputs["zones"]) == 1
        zone_of_subnet[subnet.id] = nat.inputs["zones"][0]
    assert sorted(zone_of_subnet.values()) == ["1", "2", "3"]
    assert sorted(s.inputs["addressPrefix"] for s in subnets.values()) == [
        "10.20.0.0/18", "10.20.128.0/18", "10.20.64.0/18"]
    # Each zone's scale set sits in its own zone's subnet, bounded by its zone's share of the plan.
    settings = {s.inputs["targetResourceUri"]: s for s in run.of_type("azure-native:monitor:AutoscaleSetting")}
    for vmss in run.of_type(VMSS):
        (zone,) = vmss.inputs["zones"]
        (nic,) = vmss.inputs["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"]
        assert zone_of_subnet[nic["ipConfigurations"][0]["subnet"]["id"]] == zone
        (profile,) = settings[vmss.id].inputs["profiles"]
        assert profile["capacity"] == {"minimum": "2", "maximum": "10", "default": "2"}
    notes = run.named(pool.name).outputs["notes"]
    assert any("one scale set per zone" in n and "own NAT gateway" in n for n in notes)


def test_spot_above_the_floor_is_split_over_the_zones_too(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "inference", nodes=12, min_nodes=3, spot_nodes=6)
    run = build(site_of("azure"), [pool])
    bounds = {r.name: r.inputs["profiles"][0]["capacity"] for r in run.of_type("azure-native:monitor:AutoscaleSetting")}
    for zone in ("1", "2", "3"):
        assert bounds[f"{pool.name}-z{zone}-autoscale"] == {"minimum": "1", "maximum": "2", "default": "1"}
        assert bounds[f"{pool.name}-z{zone}-spot-autoscale"] == {"minimum": "0", "maximum": "2", "default": "0"}


def test_an_infiniband_training_site_gets_no_outbound_path(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                           build: Callable[..., OfflineRun]) -> None:
    run = build(site_of("azure"), [pool_of("azure", "training")])
    assert run.of_type("azure-native:network:NatGateway") == []
    assert run.of_type("azure-native:network:PublicIPAddress") == []
    (subnet,) = run.of_type("azure-native:network:Subnet")
    assert subnet.inputs["defaultOutboundAccess"] is False and "natGateway" not in subnet.inputs


def test_inference_scale_set_and_autoscale_setting(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                   build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "inference", nodes=30, min_nodes=6, zones=("2",), nodes_by_zone={"2": 30})
    run = build(site_of("azure"), [pool])
    (vmss,) = run.of_type(VMSS)
    assert vmss.inputs["sku"]["capacity"] == 6
    assert vmss.ignore_changes == ("sku.capacity",)
    assert vmss.inputs["zones"] == ["2"] and vmss.inputs["singlePlacementGroup"] is False
    (setting,) = run.of_type("azure-native:monitor:AutoscaleSetting")
    assert setting.inputs["targetResourceUri"] == vmss.id
    (profile,) = setting.inputs["profiles"]
    assert profile["capacity"] == {"minimum": "6", "maximum": "30", "default": "6"}
    out, scale_in = profile["rules"]
    for rule in (out, scale_in):
        trigger = rule["metricTrigger"]
        assert trigger["metricName"] == pool.scaling_metric_name
        assert trigger["metricNamespace"] == pool.scaling_metric_namespace
        assert trigger["metricResourceUri"] == vmss.id
    assert out["metricTrigger"]["threshold"] == pool.scaling_target_per_node
    assert out["scaleAction"]["direction"] == "Increase" and scale_in["scaleAction"]["direction"] == "Decrease"
    assert all(isinstance(rule["scaleAction"]["value"], str) for rule in (out, scale_in))
    assert setting.inputs["tags"] == pool.tags


def test_network_is_one_resource_group_vnet_and_subnet(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                       build: Callable[..., OfflineRun]) -> None:
    site = site_of("azure", resource_group="rg-gpus")
    run = build(site, [pool_of("azure", "training")])  # no outbound path: one regional subnet
    (group,) = run.of_type("azure-native:resources:ResourceGroup")
    assert group.inputs["resourceGroupName"] == "rg-gpus"
    (vnet,) = run.of_type("azure-native:network:VirtualNetwork")
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.20.0.0/16"]}
    (subnet,) = run.of_type("azure-native:network:Subnet")
    assert subnet.inputs["addressPrefix"] == "10.20.0.0/17"


def test_a_zone_set_with_no_share_of_the_minimum_scales_on_a_set_that_posts_the_metric(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    # A minimum of 2 over three zones leaves one zone's set at 0 VMs: no VM there posts the tokens/s it
    # would scale on. It reads a running zone's set instead, and steps out by a count (a percentage of
    # 0 VMs is 0); the sets that always run VMs read themselves and step by 20 %, as before.
    pool = pool_of("azure", "inference", nodes=30, min_nodes=2, spot_nodes=6)
    run = build(site_of("azure"), [pool])
    sets = {s.name: s for s in run.of_type(VMSS)}
    settings = {s.name: s for s in run.of_type("azure-native:monitor:AutoscaleSetting")}
    mins = {n: s.inputs["profiles"][0]["capacity"]["minimum"] for n, s in settings.items()}
    (idle,) = [n for n, m in mins.items() if m == "0" and "-spot-" not in n]
    running = {n for n, m in mins.items() if m != "0" and "-spot-" not in n}
    assert len(running) == 2
    anchors = {sets[n.removesuffix("-autoscale") + "-vmss"].id for n in running}
    for name, setting in settings.items():
        rules = setting.inputs["profiles"][0]["rules"]
        sources = {r["metricTrigger"]["metricResourceUri"] for r in rules}
        (grow,) = [r["scaleAction"] for r in rules if r["scaleAction"]["direction"] == "Increase"]
        if name in running:
            assert sources == {setting.inputs["targetResourceUri"]}
            assert (grow["type"], grow["value"]) == ("PercentChangeCount", "20")
        else:  # the idle zone's set and every spot set: a source that posts, a step of VMs
            assert len(sources) == 1 and sources <= anchors
            assert grow["type"] == "ChangeCount" and int(grow["value"]) >= 1
    assert settings[idle].inputs["targetResourceUri"] not in anchors


def test_each_zone_builds_the_plans_own_split_of_spot_and_on_demand(
        site_of: Callable[..., Any], pool_of: Callable[..., Any], build: Callable[..., OfflineRun]) -> None:
    # The plan's loss figures count its spot nodes zone by zone; the sets must hold those, not an even
    # split of the totals (which would be 2 on-demand and 2 spot in every zone here).
    pool = pool_of("azure", "inference", nodes=12, min_nodes=3, spot_nodes=6,
                   nodes_by_zone={"1": 4, "2": 4, "3": 4}, spot_nodes_by_zone={"2": 2, "3": 4})
    run = build(site_of("azure"), [pool])
    maxima = {r.name.removesuffix("-autoscale"): int(r.inputs["profiles"][0]["capacity"]["maximum"])
              for r in run.of_type("azure-native:monitor:AutoscaleSetting")}
    assert maxima == {f"{pool.name}-z1": 4, f"{pool.name}-z2": 2, f"{pool.name}-z2-spot": 2, f"{pool.name}-z3-spot": 4}
