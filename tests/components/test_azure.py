"""Azure backend: one single-placement-group scale set per InfiniBand island, SSH-only, autoscale settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpufleet.offline import OfflineRun

VMSS = "azure-native:compute:VirtualMachineScaleSet"


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
    group_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/capacityReservationGroups/nd"
    pool = pool_of("azure", "training", capacity_type="reservation", reservation_id=group_id)
    run = build(site_of("azure"), [pool])
    profile = run.of_type(VMSS)[0].inputs["virtualMachineProfile"]
    assert profile["capacityReservation"] == {"capacityReservationGroup": {"id": group_id}}


def test_inference_scale_set_and_autoscale_setting(site_of: Callable[..., Any], pool_of: Callable[..., Any],
                                                   build: Callable[..., OfflineRun]) -> None:
    pool = pool_of("azure", "inference", nodes=30, min_nodes=6)
    run = build(site_of("azure"), [pool])
    (vmss,) = run.of_type(VMSS)
    assert vmss.inputs["sku"]["capacity"] == 6
    assert vmss.ignore_changes == ("sku.capacity",)
    assert vmss.inputs["zones"] == ["1", "2", "3"] and vmss.inputs["singlePlacementGroup"] is False
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
    run = build(site, [pool_of("azure", "inference")])
    (group,) = run.of_type("azure-native:resources:ResourceGroup")
    assert group.inputs["resourceGroupName"] == "rg-gpus"
    (vnet,) = run.of_type("azure-native:network:VirtualNetwork")
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.20.0.0/16"]}
    (subnet,) = run.of_type("azure-native:network:Subnet")
    assert subnet.inputs["addressPrefix"] == "10.20.0.0/17"
