"""Azure backend: resource group + VNet per site, InfiniBand scale sets, autoscaled inference scale sets.

What Azure offers and refuses (InfiniBand islands and the RDMA address range, capacity types, the
SSH-key requirement, image forms, the default image and resource group) is in
:mod:`gpufleet.clouds.azure.profile`; this module builds it: one single-placement-group scale set
per InfiniBand island of the plan.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pulumi
import pulumi_azure_native as azure

from components.base import (
    CloudBackend,
    ClusterBuild,
    InferencePoolArgs,
    NetworkBuild,
    PoolBuild,
    SiteNetworkArgs,
    TrainingClusterArgs,
    carve,
    child,
    register,
)
from gpufleet.catalog import load_catalog
from gpufleet.clouds.azure.profile import HPC_IMAGE, is_image_id, resource_group
from gpufleet.names import TAG_SITE
from gpufleet.spec import SiteSpec

ADMIN_USER = "azureuser"
OS_DISK_GIB = 256


def _image_reference(override: str | None) -> azure.compute.ImageReferenceArgs:
    if override and is_image_id(override):
        return azure.compute.ImageReferenceArgs(id=override)
    publisher, offer, sku, version = override.split(":") if override else HPC_IMAGE
    return azure.compute.ImageReferenceArgs(publisher=publisher, offer=offer, sku=sku, version=version)


def _computer_name_prefix(name: str) -> str:
    """Host name prefix: letters, digits and '-', at most 50 characters (Azure appends 6)."""
    return name[:50].rstrip("-")


def _vm_profile(name: str, subnet_id: pulumi.Input[str], image: str | None, ssh_public_key: str,
                capacity_reservation_group: str | None = None) -> azure.compute.VirtualMachineScaleSetVMProfileArgs:
    return azure.compute.VirtualMachineScaleSetVMProfileArgs(
        os_profile=azure.compute.VirtualMachineScaleSetOSProfileArgs(
            computer_name_prefix=_computer_name_prefix(name),
            admin_username=ADMIN_USER,
            linux_configuration=azure.compute.LinuxConfigurationArgs(
                disable_password_authentication=True,
                ssh=azure.compute.SshConfigurationArgs(public_keys=[azure.compute.SshPublicKeyArgs(
                    path=f"/home/{ADMIN_USER}/.ssh/authorized_keys", key_data=ssh_public_key)]),
            ),
        ),
        storage_profile=azure.compute.VirtualMachineScaleSetStorageProfileArgs(
            image_reference=_image_reference(image),
            os_disk=azure.compute.VirtualMachineScaleSetOSDiskArgs(
                create_option="FromImage", caching=azure.compute.CachingTypes.READ_WRITE, disk_size_gb=OS_DISK_GIB,
                managed_disk=azure.compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                    storage_account_type="Premium_LRS")),
        ),
        # One private NIC, no public IP configuration: nodes are reachable only inside the VNet.
        network_profile=azure.compute.VirtualMachineScaleSetNetworkProfileArgs(
            network_interface_configurations=[azure.compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                name="primary", primary=True, enable_accelerated_networking=True,
                ip_configurations=[azure.compute.VirtualMachineScaleSetIPConfigurationArgs(
                    name="primary", primary=True, subnet=azure.compute.ApiEntityReferenceArgs(id=subnet_id))],
            )],
        ),
        capacity_reservation=None if capacity_reservation_group is None else azure.compute.CapacityReservationProfileArgs(
            capacity_reservation_group=azure.compute.SubResourceArgs(id=capacity_reservation_group)),
    )


@register("azure")
class AzureBackend(CloudBackend):
    """Azure: resource group, VNet, proximity placement groups, VM scale sets, autoscale settings."""

    def provider(self, site: SiteSpec) -> pulumi.ProviderResource:
        extra: dict[str, Any] = {}
        if site.subscription_id:
            extra["subscription_id"] = site.subscription_id
        return azure.Provider(f"{site.name}-provider", location=site.region, **extra)

    def build_network(self, owner: Any, args: SiteNetworkArgs) -> NetworkBuild:
        site = args.site
        name = owner.pulumi_resource_name
        tags = {TAG_SITE: site.name}
        group = azure.resources.ResourceGroup(
            f"{name}-rg", resource_group_name=resource_group(site),
            location=site.region, tags=tags, opts=child(owner))
        vnet = azure.network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=group.name, location=site.region,
            address_space=azure.network.AddressSpaceArgs(address_prefixes=[site.network_cidr]),
            tags=tags, opts=child(owner))
        prefix = ipaddress.ip_network(site.network_cidr).prefixlen + 1
        subnet = azure.network.Subnet(
            f"{name}-nodes", resource_group_name=group.name, virtual_network_name=vnet.name,
            address_prefix=carve(site.network_cidr, prefix, 0), opts=child(owner))
        return NetworkBuild(network_id=vnet.id, subnet_ids={zone: subnet.id for zone in site.zones},
                            handles={"resource_group": group, "vnet": vnet, "subnet": subnet})

    def build_training(self, owner: Any, args: TrainingClusterArgs) -> ClusterBuild:
        pool = args.pool
        row = load_catalog().instance(pool.instance_type)
        name = owner.pulumi_resource_name
        group = args.network.handles["resource_group"]
        zone = pool.zones[0]
        placement_ids: list[pulumi.Input[str]] = []
        ppg = None
        if pool.placement_group:
            ppg = azure.compute.ProximityPlacementGroup(
                f"{name}-ppg", resource_group_name=group.name, location=pool.region,
                proximity_placement_group_type="Standard",
                intent=azure.compute.ProximityPlacementGroupPropertiesIntentArgs(vm_sizes=[row.instance_type]),
                zones=[zone], tags=pool.tags, opts=child(owner))
            placement_ids.append(ppg.id)
        reservation = pool.reservation_id if pool.capacity_type == "reservation" else None
        if reservation:
            placement_ids.append(reservation)
        scale_sets: list[pulumi.Input[str]] = []
        for index, vms in enumerate(pool.islands):
            island = f"{name}-ib{index}"
            # One scale set per InfiniBand island: IB links only VMs of one single placement group.
            vmss = azure.compute.VirtualMachineScaleSet(
                island,
                resource_group_name=group.name,
                location=pool.region,
                orchestration_mode=azure.compute.OrchestrationMode.UNIFORM,
                sku=azure.compute.SkuArgs(name=row.instance_type, tier="Standard", capacity=vms),
                single_placement_group=True,
                overprovision=False,
                platform_fault_domain_count=1,
                zones=[zone],
                proximity_placement_group=None if ppg is None else azure.compute.SubResourceArgs(id=ppg.id),
                upgrade_policy=azure.compute.UpgradePolicyArgs(mode=azure.compute.UpgradeMode.MANUAL),
                virtual_machine_profile=_vm_profile(island, args.network.subnet_ids[zone], args.image,
                                                    args.ssh_public_key or "", reservation),
                tags=pool.tags,
                opts=child(owner),
            )
            scale_sets.append(vmss.id)
        # InfiniBand comes up on every HCA of the size inside a single placement group.
        return ClusterBuild(node_group_ids=scale_sets, placement_ids=placement_ids,
                            fabric_interfaces_attached=self.profile.fabric_interfaces(row))

    def build_inference(self, owner: Any, args: InferencePoolArgs) -> PoolBuild:
        pool = args.pool
        name = owner.pulumi_resource_name
        group = args.network.handles["resource_group"]
        zones = list(pool.zones)
        vmss = azure.compute.VirtualMachineScaleSet(
            f"{name}-vmss",
            resource_group_name=group.name,
            location=pool.region,
            orchestration_mode=azure.compute.OrchestrationMode.UNIFORM,
            sku=azure.compute.SkuArgs(name=pool.instance_type, tier="Standard", capacity=pool.min_nodes),
            # Serving needs no InfiniBand; several placement groups let the set grow past 100 VMs.
            single_placement_group=False,
            overprovision=False,
            zones=zones,
            zone_balance=True if len(zones) > 1 else None,
            upgrade_policy=azure.compute.UpgradePolicyArgs(mode=azure.compute.UpgradeMode.MANUAL),
            virtual_machine_profile=_vm_profile(name, args.network.subnet_ids[zones[0]], args.image,
                                                args.ssh_public_key or ""),
            tags=pool.tags,
            opts=child(owner, ignore_changes=["sku.capacity"]),
        )
        target = pool.scaling_target_per_node

        def trigger(operator: azure.monitor.ComparisonOperationType, threshold: float) -> azure.monitor.MetricTriggerArgs:
            return azure.monitor.MetricTriggerArgs(
                metric_name=pool.scaling_metric_name, metric_namespace=pool.scaling_metric_namespace,
                metric_resource_uri=vmss.id, operator=operator, threshold=threshold,
                statistic=azure.monitor.MetricStatisticType.AVERAGE,
                time_aggregation=azure.monitor.TimeAggregationType.AVERAGE, time_grain="PT1M", time_window="PT5M")

        setting = azure.monitor.AutoscaleSetting(
            f"{name}-autoscale",
            resource_group_name=group.name,
            location=pool.region,
            target_resource_uri=vmss.id,
            enabled=True,
            profiles=[azure.monitor.AutoscaleProfileArgs(
                name="tokens-per-node",
                capacity=azure.monitor.ScaleCapacityArgs(
                    minimum=str(pool.min_nodes), maximum=str(pool.nodes), default=str(pool.min_nodes)),
                rules=[
                    azure.monitor.ScaleRuleArgs(
                        metric_trigger=trigger(azure.monitor.ComparisonOperationType.GREATER_THAN, target),
                        scale_action=azure.monitor.ScaleActionArgs(
                            direction=azure.monitor.ScaleDirection.INCREASE,
                            type=azure.monitor.ScaleType.PERCENT_CHANGE_COUNT, value="20", cooldown="PT5M")),
                    azure.monitor.ScaleRuleArgs(
                        metric_trigger=trigger(azure.monitor.ComparisonOperationType.LESS_THAN, round(target * 0.6, 6)),
                        scale_action=azure.monitor.ScaleActionArgs(
                            direction=azure.monitor.ScaleDirection.DECREASE,
                            type=azure.monitor.ScaleType.CHANGE_COUNT, value="1", cooldown="PT10M")),
                ],
            )],
            tags=pool.tags,
            opts=child(owner),
        )
        notes = ["no standby pool: Azure keeps warm capacity as the scale set's minimum (min_nodes running)"]
        return PoolBuild(node_group_id=vmss.id, autoscaler_id=setting.id, warm_nodes=0, notes=notes)
