"""GKE: the site's cluster (created with multi-networking where GPU NICs need it, or attached by id) and one
node pool per pool, as :mod:`gpufleet.clouds.gcp.gke` describes them.

A created cluster is VPC-native on the site's system subnet (GKE picks and creates its pod and service
ranges), on GKE Dataplane V2, with private nodes (Cloud NAT on the node subnet for images from outside
Google), Workload Identity and Managed Service for Prometheus;
its default node pool is replaced by the spec's system pool. Where a training pool's machine type has GPU
NICs, multi-networking is on and every additional network gets its ``GKENetworkParamSet`` and ``Network``
objects in the cluster (:meth:`GkeBackend.addons`), named as Google's GPUDirect guides name them
(``vpc1``… for TCPX(O), ``gvnic-1`` and ``rdma-0``… for RDMA), so pods can ask for them by annotation.

A node pool carries its GPUs with the driver installed by GKE, the GPU taint, the pool's labels as
resource labels (on its VMs) and Kubernetes labels, and:

* training: ``node_count`` nodes in its one zone, the fabric's additional node networks (the same GPU /
  RoCE VPCs the site network built for VM clusters), COMPACT placement with a HIGH_THROUGHPUT workload
  policy or the specific reservation's own placement; on A3 Ultra / A4, the DaemonSet that puts the NCCL
  gIB plugin on its nodes (:func:`gib_installer`); with ``capacity.type: flex_start``, queued
  provisioning (flex-start) from 0 up to ``nodes``, the run's ProvisioningRequest admitting all at once;
* inference: autoscaling ``min_nodes``..``nodes`` in total over its zones (location policy BALANCED),
  the current size left to the cluster autoscaler.
"""

from __future__ import annotations

import math
from typing import Any

import pulumi
import pulumi_gcp as gcp

from components.base import InferencePoolArgs, TrainingClusterArgs, child, invoke_opts
from components.k8s.base import KubeCluster, KubeClusterArgs, KubernetesBackend, NodePoolBuild, register_k8s
from gpufleet.catalog import InstanceType, load_catalog
from gpufleet.clouds.gcp import gke
from gpufleet.clouds.gcp.profile import (
    HYPERDISK_ONLY,
    NODE_SCOPES,
    TRAINING_WAIT_MINUTES,
    WORKLOAD_POLICY_TYPE,
    NicLayout,
    layout_for,
    machine_family,
    placement_for,
    reservation_affinity_value,
)
from gpufleet.plan import PoolPlan

BOOT_DISK_GIB = 200
SYSTEM_MACHINE_DISK_GIB = 100
NETWORKING_API = "networking.gke.io/v1"
PAUSE_IMAGE = "gke.gcr.io/pause:3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830"
"""The container that keeps an installer pod running once its init container has copied the plugin."""
GKE_AUTH_PLUGIN = "gke-gcloud-auth-plugin"
"""How kubectl and the Kubernetes provider authenticate to GKE
(https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin)."""

_DRIVER = gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs
Network = tuple[Any, Any]
"""A (network, subnetwork) pair of the site network's handles."""


def kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for a GKE cluster's endpoint, authenticating with :data:`GKE_AUTH_PLUGIN`."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: https://{endpoint}
    certificate-authority-data: {ca_certificate}
contexts:
- name: {name}
  context: {{cluster: {name}, user: {name}}}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {GKE_AUTH_PLUGIN}
      provideClusterInfo: true
      installHint: Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)
"""


def _ca(master_auth: Any) -> str:
    """The cluster CA of a ``masterAuth`` value (an output object, or a plain dict in either spelling)."""
    if isinstance(master_auth, dict):
        return str(master_auth.get("cluster_ca_certificate") or master_auth.get("clusterCaCertificate"))
    return str(master_auth.cluster_ca_certificate)


def _fabric_layouts(pools: tuple[PoolPlan, ...]) -> list[tuple[PoolPlan, NicLayout]]:
    """The training pools whose machine type attaches GPU NICs, with their layouts."""
    return [(p, lay) for p in pools if p.role == "training" and p.fabric != "none"
            and (lay := layout_for(p.instance_type)) is not None]


def additional_networks(handles: dict[str, Any], layout: NicLayout, zone: str) -> list[tuple[str, Network]]:
    """The site network's VPCs a node of ``layout`` in ``zone`` attaches beyond its first gVNIC, each with
    the name its in-cluster ``Network`` object takes."""
    if layout.roce:
        roce, subnets = handles["roce"][zone]
        zones = sorted(handles["roce"])
        tag = "" if len(zones) == 1 else f"{zone.rsplit('-', 1)[-1]}-"
        nets = [("gvnic-1", handles["gvnic2"])] if layout.host_nics > 1 else []
        return nets + [(f"rdma-{tag}{j}", (roce, subnets[j])) for j in range(layout.gpu_nics)]
    kind = layout.fabric.removeprefix("gpudirect-")
    return [(f"vpc{k + 1}", net) for k, net in enumerate(handles[kind][: layout.gpu_nics])]


@register_k8s("gcp")
class GkeBackend(KubernetesBackend):
    """GKE Standard: a regional cluster, GPU node pools, multi-networking objects."""

    def cluster(self, owner: Any, args: KubeClusterArgs) -> KubeCluster:
        site, spec = args.site, args.kubernetes
        if not spec.create:
            match = gke.CLUSTER_ID.fullmatch(str(spec.cluster_id))
            if match is None:  # the profile's check refuses this before anything is built
                raise ValueError(f"site {site.name}: {spec.cluster_id!r} is not a GKE cluster id")
            found = gcp.container.get_cluster_output(name=match["name"], location=match["location"],
                                                     project=match["project"], opts=invoke_opts(owner))
            config = pulumi.Output.all(found.endpoint, found.master_auths).apply(
                lambda v: kubeconfig(match["name"], v[0], _ca(v[1][0])))
            return KubeCluster(name=match["name"], id=str(spec.cluster_id), kubeconfig=pulumi.Output.secret(config),
                               created=False, handles={"location": match["location"], "project": match["project"]})
        name = owner.pulumi_resource_name
        system, subnet = args.network.handles["system"]
        multi = bool(_fabric_layouts(args.pools))
        cluster = gcp.container.Cluster(
            f"{name}-gke",
            name=args.name,
            project=site.project,
            location=site.region,
            node_locations=list(site.zones),
            network=system.id,
            subnetwork=subnet.id,
            min_master_version=spec.version,
            remove_default_node_pool=True,  # the system pool below replaces it
            initial_node_count=1,
            deletion_protection=False,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_ipv4_cidr_block=gke.POD_RANGE_PREFIX, services_ipv4_cidr_block=gke.SERVICE_RANGE_PREFIX),
            datapath_provider=gke.DATAPATH_V2,
            enable_multi_networking=multi or None,
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True, enable_private_endpoint=False),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{site.project}.svc.id.goog"),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True)),
            resource_labels={"gpufleet-site": site.name},
            opts=child(owner),
        )
        # Private nodes pull images from outside Google (KEDA, Prometheus, serving images) through Cloud NAT.
        router = gcp.compute.Router(f"{name}-router", network=system.id, region=site.region, opts=child(owner))
        gcp.compute.RouterNat(f"{name}-nat", router=router.name, region=site.region,
                              nat_ip_allocate_option="AUTO_ONLY",
                              source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
                              subnetworks=[gcp.compute.RouterNatSubnetworkArgs(
                                  name=subnet.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"])],
                              opts=child(owner))
        pool = spec.system_pool
        assert pool is not None  # KubernetesSpec requires it with create: true
        gcp.container.NodePool(
            f"{name}-system",
            name="system",
            cluster=cluster.id,
            location=site.region,
            node_locations=list(site.zones),
            initial_node_count=math.ceil(pool.nodes / len(site.zones)),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=pool.nodes, total_max_node_count=pool.nodes, location_policy="BALANCED"),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=pool.instance_type, disk_size_gb=SYSTEM_MACHINE_DISK_GIB, oauth_scopes=list(NODE_SCOPES),
                resource_labels={"gpufleet-site": site.name}),
            opts=child(owner, ignore_changes=["initialNodeCount"]),
        )
        config = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth).apply(
            lambda v: kubeconfig(v[0], v[1], _ca(v[2])))
        return KubeCluster(name=cluster.name, id=cluster.id, kubeconfig=pulumi.Output.secret(config), created=True,
                           handles={"location": site.region, "project": site.project, "cluster": cluster})

    def addons(self, owner: Any, args: KubeClusterArgs, cluster: KubeCluster) -> None:
        """One ``GKENetworkParamSet`` and one ``Network`` per additional network the site's GPU node pools
        attach (GKE attaches no NIC to a pod without them)."""
        import pulumi_kubernetes as k8s

        seen: dict[str, tuple[Network, str]] = {}
        for pool, layout in _fabric_layouts(args.pools):
            rdma = gke.DEVICE_MODE_RDMA if layout.roce else gke.DEVICE_MODE_GVNIC
            for net_name, net in additional_networks(args.network.handles, layout, pool.zones[0]):
                seen.setdefault(net_name, (net, gke.DEVICE_MODE_GVNIC if net_name.startswith("gvnic") else rdma))
        depends = [cluster.handles["cluster"]] if "cluster" in cluster.handles else []
        for net_name, ((network, subnet), mode) in sorted(seen.items()):
            opts = pulumi.ResourceOptions(parent=owner, provider=cluster.provider, depends_on=depends)
            params = k8s.apiextensions.CustomResource(
                f"{owner.pulumi_resource_name}-{net_name}-params", api_version=NETWORKING_API, kind="GKENetworkParamSet",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=net_name),
                spec={"vpc": network.name, "vpcSubnet": subnet.name, "deviceMode": mode}, opts=opts)
            k8s.apiextensions.CustomResource(
                f"{owner.pulumi_resource_name}-{net_name}-network", api_version=NETWORKING_API, kind="Network",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=net_name),
                spec={"type": "Device", "parametersRef": {"group": "networking.gke.io", "kind": "GKENetworkParamSet",
                                                          "name": net_name}},
                opts=pulumi.ResourceOptions(parent=owner, provider=cluster.provider, depends_on=[params]))

    def node_pool(self, owner: Any, args: TrainingClusterArgs | InferencePoolArgs,
                  cluster: KubeCluster) -> NodePoolBuild:
        pool, name = args.pool, owner.pulumi_resource_name
        if pool.accelerator_kind == "tpu":
            from components.k8s.gke_tpu import tpu_node_pools  # TPU slice node pools (it imports this module)

            return tpu_node_pools(owner, args, cluster)
        row, training = load_catalog().instance(pool.instance_type), pool.role == "training"
        layout = layout_for(row.instance_type) if training and row.fabric != "none" else None
        networks = additional_networks(args.network.handles, layout, pool.zones[0]) if layout is not None else []
        placement, placement_ids, notes = self._placement(owner, name, pool)
        shape = training_shape(pool, pool.nodes) if training else inference_shape(pool)
        accelerator = gke.accelerator_type(row.instance_type)
        assert accelerator is not None  # check_pool_gke_accelerator refuses a family without one
        node_pool = gcp.container.NodePool(
            f"{name}-nodes",
            name=gke.node_pool_name(pool.name),
            cluster=cluster.id,
            location=cluster.handles["location"],
            project=cluster.handles.get("project"),
            node_locations=list(pool.zones),
            node_config=self._node_config(pool, row, accelerator),
            network_config=gcp.container.NodePoolNetworkConfigArgs(additional_node_network_configs=[
                gcp.container.NodePoolNetworkConfigAdditionalNodeNetworkConfigArgs(
                    network=network.name, subnetwork=subnet.name) for _, (network, subnet) in networks
            ]) if networks else None,
            placement_policy=placement,
            opts=child(owner, ignore_changes=shape.pop("ignore"),
                       custom_timeouts=pulumi.CustomTimeouts(create=f"{TRAINING_WAIT_MINUTES}m",
                                                             update=f"{TRAINING_WAIT_MINUTES}m")),
            **shape,
        )
        if training and gke.needs_gib(row):
            gib_installer(owner, pool, cluster, node_pool)
            notes.append(f"DaemonSet {gke.GIB_NAMESPACE}/{gke.gib_installer_name(pool.name)} copies the NCCL gIB "
                         f"plugin ({gke.GIB_VERSION}) onto the node pool's nodes, for RDMA between pods")
        return NodePoolBuild(node_pool_ids=[node_pool.id], placement_ids=placement_ids,
                             fabric_interfaces_attached=layout.gpu_nics if networks and layout else 0, notes=notes)

    @staticmethod
    def _node_config(pool: PoolPlan, row: InstanceType, accelerator: str) -> gcp.container.NodePoolNodeConfigArgs:
        gpus = gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
            type=accelerator, count=row.gpus, gpu_driver_installation_config=_DRIVER(gpu_driver_version=gke.GPU_DRIVER_VERSION))
        disk = "hyperdisk-balanced" if machine_family(row.instance_type) in HYPERDISK_ONLY else "pd-balanced"
        return node_config(pool, row, gke.GPU_TAINT, disk, guest_accelerators=[gpus])

    @staticmethod
    def _placement(owner: Any, name: str, pool: PoolPlan) -> tuple[Any, list[pulumi.Input[str]], list[str]]:
        """A training node pool's COMPACT placement (a HIGH_THROUGHPUT workload policy), its ids, notes."""
        if pool.role != "training":
            return None, [], []
        if gke.queued(pool):
            return None, [], ["nodes come through GKE queued provisioning (flex-start): the run's ProvisioningRequest "
                              f"admits all {pool.nodes} at once, best effort, not a reservation; no COMPACT placement"]
        where = placement_for(pool)
        if where == "reservation":
            return None, [pool.reservation_id] if pool.reservation_id else [], []
        if where != "workload-policy":
            return None, [], []
        policy = gcp.compute.ResourcePolicy(
            f"{name}-workload", region=pool.region,
            workload_policy=gcp.compute.ResourcePolicyWorkloadPolicyArgs(type=WORKLOAD_POLICY_TYPE), opts=child(owner))
        return (gcp.container.NodePoolPlacementPolicyArgs(type="COMPACT", policy_name=policy.name),
                [policy.self_link], [])

def node_config(pool: PoolPlan, row: InstanceType, taint: tuple[str, str, str], disk_type: str,
                guest_accelerators: list[Any] | None = None,
                node_labels: dict[str, str] | None = None) -> gcp.container.NodePoolNodeConfigArgs:
    """A node pool's nodes: the machine type, ``taint`` (key, value, effect), the boot disk, gVNIC, the
    reservation they consume (:func:`reservation_affinity`), flex-start under queued provisioning, and
    the pool's tags as Kubernetes labels (with ``node_labels``) and as the VMs' labels."""
    key, value, effect = taint
    return gcp.container.NodePoolNodeConfigArgs(
        machine_type=row.instance_type,
        guest_accelerators=guest_accelerators,
        taints=[gcp.container.NodePoolNodeConfigTaintArgs(key=key, value=value, effect=effect)],
        disk_type=disk_type,
        disk_size_gb=BOOT_DISK_GIB,
        gvnic=gcp.container.NodePoolNodeConfigGvnicArgs(enabled=True),
        oauth_scopes=list(NODE_SCOPES),
        reservation_affinity=reservation_affinity(pool),
        flex_start=True if gke.queued(pool) else None,
        labels=dict(sorted({**pool.tags, **(node_labels or {})}.items())),
        resource_labels=dict(sorted(pool.tags.items())),
    )


def training_shape(pool: PoolPlan, nodes: int) -> dict[str, Any]:
    """A training node pool's size: ``nodes`` nodes, fixed; or queued provisioning from 0 to ``nodes``. The
    key ``ignore`` holds the fields Pulumi leaves to GKE (pop it into the node pool's ``ignore_changes``)."""
    if not gke.queued(pool):
        return {"node_count": nodes, "ignore": [],
                "upgrade_settings": gcp.container.NodePoolUpgradeSettingsArgs(max_surge=0, max_unavailable=1)}
    return {**queued_shape(nodes), "ignore": ["nodeCount", "initialNodeCount"]}


def inference_shape(pool: PoolPlan) -> dict[str, Any]:
    """A serving node pool's size: autoscaled between the pool's ``min_nodes`` and ``nodes`` over its zones,
    starting at the minimum; ``ignore`` as for :func:`training_shape`."""
    return {
        "initial_node_count": math.ceil(pool.min_nodes / max(len(pool.zones), 1)),
        "autoscaling": gcp.container.NodePoolAutoscalingArgs(
            total_min_node_count=pool.min_nodes, total_max_node_count=pool.nodes,
            location_policy=gke.LOCATION_POLICY_INFERENCE),
        "ignore": ["nodeCount", "initialNodeCount"],  # the cluster autoscaler owns the current size
    }


def queued_shape(max_nodes: int) -> dict[str, Any]:
    """A node pool under queued provisioning (flex-start): from 0 nodes up to ``max_nodes``, admitted by
    the run's ProvisioningRequest, without auto-repair or auto-upgrade (GKE's and Cluster Toolkit's rules)."""
    return {
        "initial_node_count": 0,
        "autoscaling": gcp.container.NodePoolAutoscalingArgs(
            total_min_node_count=0, total_max_node_count=max_nodes, location_policy=gke.LOCATION_POLICY_TRAINING),
        "queued_provisioning": gcp.container.NodePoolQueuedProvisioningArgs(enabled=True),
        "management": gcp.container.NodePoolManagementArgs(auto_repair=False, auto_upgrade=False),
    }


def reservation_affinity(pool: PoolPlan) -> gcp.container.NodePoolNodeConfigReservationAffinityArgs | None:
    """What a node pool's nodes consume: no reservation under queued provisioning; a training pool's specific
    reservation by name; otherwise GKE's default."""
    if gke.queued(pool):
        return gcp.container.NodePoolNodeConfigReservationAffinityArgs(consume_reservation_type="NO_RESERVATION")
    if pool.role == "training" and placement_for(pool) == "reservation" and pool.reservation_id:
        return gcp.container.NodePoolNodeConfigReservationAffinityArgs(
            consume_reservation_type="SPECIFIC_RESERVATION", key="compute.googleapis.com/reservation-name",
            values=[reservation_affinity_value(pool.reservation_id)])
    return None


def gib_installer(owner: Any, pool: PoolPlan, cluster: KubeCluster, node_pool: gcp.container.NodePool) -> Any:
    """The DaemonSet that copies NCCL and the gIB plugin onto the nodes of an RDMA node pool (and only
    those: node affinity on the node pool's name), as Google's ``nccl-rdma-installer`` does: a privileged
    init container writing into the node's NVIDIA library and gIB directories, then a pause container."""
    import pulumi_kubernetes as k8s

    core = k8s.core.v1
    name = gke.gib_installer_name(pool.name)
    labels = {"k8s-app": name}
    mounts = [core.VolumeMountArgs(name="library-dir-host", mount_path=f"/usr/local{gke.GIB_HOST_LIB}"),
              core.VolumeMountArgs(name="gib", mount_path=f"/usr/local{gke.GIB_HOST_DIR}")]
    script = (f"set -ex\n/scripts/container_entry.sh install --install-nccl\n"
              f"cp -r /var/lib/gib/lib64/. /usr/local{gke.GIB_HOST_LIB}\ncp -r /var/lib/gib/. /usr/local{gke.GIB_HOST_DIR}\n")
    affinity = core.AffinityArgs(node_affinity=core.NodeAffinityArgs(
        required_during_scheduling_ignored_during_execution=core.NodeSelectorArgs(node_selector_terms=[
            core.NodeSelectorTermArgs(match_expressions=[core.NodeSelectorRequirementArgs(
                key=gke.NODE_POOL_LABEL, operator="In", values=[gke.node_pool_name(pool.name)])])])))
    return k8s.apps.v1.DaemonSet(
        f"{owner.pulumi_resource_name}-gib",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=gke.GIB_NAMESPACE, labels={**labels, **pool.tags}),
        spec=k8s.apps.v1.DaemonSetSpecArgs(
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
            update_strategy=k8s.apps.v1.DaemonSetUpdateStrategyArgs(
                type="RollingUpdate", rolling_update=k8s.apps.v1.RollingUpdateDaemonSetArgs(max_unavailable="50%")),
            template=core.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                spec=core.PodSpecArgs(
                    priority_class_name="system-node-critical",
                    affinity=affinity,
                    tolerations=[core.TolerationArgs(operator="Exists")],
                    host_network=True,
                    host_pid=True,
                    volumes=[core.VolumeArgs(name="library-dir-host", host_path=core.HostPathVolumeSourceArgs(
                                 path=gke.GIB_HOST_LIB, type="DirectoryOrCreate")),
                             core.VolumeArgs(name="gib", host_path=core.HostPathVolumeSourceArgs(path=gke.GIB_HOST_DIR))],
                    init_containers=[core.ContainerArgs(
                        name="nccl-rdma-installer", image=f"{gke.GIB_IMAGE}:{gke.GIB_VERSION}",
                        resources=core.ResourceRequirementsArgs(requests={"cpu": "150m"}),
                        security_context=core.SecurityContextArgs(privileged=True), volume_mounts=mounts,
                        command=["/bin/sh", "-c"], args=[script])],
                    containers=[core.ContainerArgs(name="pause", image=PAUSE_IMAGE)],
                ),
            ),
        ),
        opts=pulumi.ResourceOptions(parent=owner, provider=cluster.provider, depends_on=[node_pool]),
    )
