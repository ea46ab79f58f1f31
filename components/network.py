"""``SiteNetwork``: a site's network, created once and shared by every pool placed there.

AWS: a VPC and one private subnet per zone; none for a site attaching to an existing EKS cluster,
whose node groups join the cluster's own VPC (its subnets are looked up). Azure: a resource group, a VNet (never overlapping the
InfiniBand range 172.16.0.0/16) and a node subnet. GCP: the system VPC and subnet, plus the extra
VPCs the pools' machine families need (A3 Mega / A3 High GPU VPCs, A3 Ultra / A4 second gVNIC VPC
and per-zone RoCE VPC). The cloud-specific work is done by the site cloud's backend.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.base import SiteNetworkArgs, backend_for
from components.k8s.base import KubeCluster, KubeClusterArgs, attached_network, build_cluster
from gpufleet.names import TYPE_PREFIX


class SiteNetwork(pulumi.ComponentResource):
    """The network of one site.

    Its props and outputs also carry the site's declared limits (``power_mw``, ``pue``,
    ``quota_gpus``, ``failure_domain``, ``carbon_g_per_kwh``) so a policy can check the pools
    placed there against them from the stack alone.

    Pass the site's explicit provider in ``opts`` (``providers=[provider]``); every child inherits
    it, and the site's clusters and pools reuse it through :attr:`provider`.

    Attributes:
        site: the site spec.
        provider: the explicit provider the network was given (None when none was).
        network_id: the VPC / VNet / system network id (an attached EKS cluster's VPC).
        subnet_ids: subnet id per zone of the site (empty where the network is an attached
            cluster's, whose zones may hold several subnets: see its ``cluster_subnet_ids`` output).
        handles: cloud-specific objects the same cloud's cluster and pool builders use.
        cluster: with ``platform.kind: kubernetes``, the site's cluster (created or attached, with its
            Kubernetes provider; :mod:`components.k8s.base`); else None.
    """

    network_id: pulumi.Output[str]

    def __init__(self, name: str, args: SiteNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        site = args.site
        props: dict[str, Any] = {
            "site": site.name,
            "cloud": site.cloud,
            "region": site.region,
            "zones": list(site.zones),
            "network_cidr": site.network_cidr,
            "power_mw": site.power_mw,
            "pue": site.pue,
            "quota_gpus": dict(sorted(site.quota_gpus.items())),
            "pools": sorted(p.name for p in args.pools),
        }
        if site.carbon_g_per_kwh is not None:
            props["carbon_g_per_kwh"] = site.carbon_g_per_kwh
        if site.platform.kubernetes is not None:
            props["platform"] = site.platform.kind
            props["cluster"] = site.platform.kubernetes.name_at(site.name)
        if site.failure_domain is not None:  # as declared: the pack groups sites by gpufleet.sizing.site_domain
            props["failure_domain"] = site.failure_domain
        super().__init__(f"{TYPE_PREFIX}SiteNetwork", name, props, opts)
        self.site = site
        self.provider = _provider_of(opts)
        build = attached_network(self, args) or backend_for(site.cloud).build_network(self, args)
        self.network_id = pulumi.Output.from_input(build.network_id)
        self.subnet_ids: dict[str, pulumi.Output[str]] = {
            zone: pulumi.Output.from_input(subnet) for zone, subnet in sorted(build.subnet_ids.items())
        }
        self.handles: dict[str, Any] = build.handles
        self.cluster: KubeCluster | None = None
        if site.platform.kubernetes is not None:  # platform.kind: kubernetes
            self.cluster = build_cluster(self, KubeClusterArgs(
                site=site, kubernetes=site.platform.kubernetes, name=props["cluster"], network=build, pools=args.pools))
        self.register_outputs({
            **props,
            "network_id": self.network_id,
            "subnet_ids": self.subnet_ids,
            **({"cluster_subnet_ids": build.cluster_subnet_ids} if build.cluster_subnet_ids is not None else {}),
            **({"cluster_name": self.cluster.name, "cluster_id": self.cluster.id} if self.cluster else {}),
        })


def _provider_of(opts: pulumi.ResourceOptions | None) -> pulumi.ProviderResource | None:
    if opts is None:
        return None
    if isinstance(opts.provider, pulumi.ProviderResource):
        return opts.provider
    providers = opts.providers
    if isinstance(providers, dict):
        found = list(providers.values())
    else:
        found = list(providers or [])
    return found[0] if len(found) == 1 else None
