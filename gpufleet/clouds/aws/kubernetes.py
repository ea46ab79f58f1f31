"""EKS facts, as data and pure functions: what :mod:`components.k8s.eks` builds and the pack reads.

Pure: no Pulumi, no AWS SDK. Sources (read 2026-11):

* Managed node groups for accelerated nodes: the EKS-optimized accelerated AMI is chosen by the node
  group's AMI type (``AL2023_x86_64_NVIDIA``; Arm: ``AL2023_ARM_64_NVIDIA``); it carries the NVIDIA
  driver, the container toolkit and the EFA software, and needs the NVIDIA device plugin in the
  cluster (https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html,
  https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html).
* A launch template used by a managed node group leaves the AMI to the AMI type when it names no
  image, may not set an IAM instance profile, and, when it lists network interfaces or security
  groups, replaces the cluster security group, which must then be listed
  (https://docs.aws.amazon.com/eks/latest/userguide/launch-templates.html).
* EFA on EKS: every EFA interface of the type in the launch template, one subnet in one Availability
  Zone, a cluster placement group, the EFA device plugin, a security group open to itself
  (https://docs.aws.amazon.com/eks/latest/userguide/node-efa.html; aws-ia/terraform-aws-eks-blueprints
  ``patterns/nvidia-gpu-efa`` and ``patterns/targeted-odcr``; awslabs/ai-on-eks).
* Capacity Blocks: a managed node group with capacity type ``CAPACITY_BLOCK`` and a launch template
  whose market type is ``capacity-block`` and whose capacity reservation target is the block
  (https://docs.aws.amazon.com/eks/latest/userguide/capacity-blocks-mng.html). ODCRs: the launch
  template's capacity reservation target, capacity type ``ON_DEMAND``.
* IAM: the cluster role trusts ``eks.amazonaws.com`` with ``AmazonEKSClusterPolicy``; the node role
  trusts ``ec2.amazonaws.com`` with ``AmazonEKSWorkerNodePolicy``, ``AmazonEKS_CNI_Policy`` and
  ``AmazonEC2ContainerRegistryReadOnly`` (https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html,
  https://docs.aws.amazon.com/eks/latest/userguide/create-node-role.html). With the ``API``
  authentication mode, EKS creates the node role's access entry for a managed node group itself
  (https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html).
* Nodes in subnets without a route to the internet (the site networks gpufleet builds) reach AWS
  through VPC endpoints: interface endpoints for EC2, ECR (API and registry) and STS, and the S3
  gateway endpoint for image layers (https://docs.aws.amazon.com/eks/latest/userguide/private-clusters.html).
* Authentication of a client (the Kubernetes provider): ``aws eks get-token`` as a kubeconfig exec
  plugin (https://docs.aws.amazon.com/eks/latest/userguide/create-kubeconfig.html).
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GET_CLUSTER = "aws:eks/getCluster:getCluster"

GPU_AMI_TYPE = {"x86_64": "AL2023_x86_64_NVIDIA", "arm64": "AL2023_ARM_64_NVIDIA"}
"""The node group AMI type of the EKS-optimized NVIDIA AMI, by CPU architecture."""
SYSTEM_AMI_TYPE = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}
"""The node group AMI type of the system (CPU) pool, by CPU architecture."""

CAPACITY_TYPE = {"on_demand": "ON_DEMAND", "odcr": "ON_DEMAND", "capacity_block": "CAPACITY_BLOCK"}
"""A training pool's ``capacity.type`` as a managed node group's capacity type (an ODCR is used
through the launch template's reservation target by an on-demand node group)."""

CLUSTER_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)

GPU_TAINT = ("nvidia.com/gpu", "true", "NO_SCHEDULE")
"""Key, value and effect of the taint on GPU nodes: only pods that tolerate it (GPU workloads, the
device plugins) land there."""
GPU_LABEL = "nvidia.com/gpu.present"
EFA_LABEL = "vpc.amazonaws.com/efa.present"
"""Node labels the device plugins select on (the EFA plugin runs only where EFA is)."""

NODE_ENDPOINT_SERVICES = ("ec2", "ecr.api", "ecr.dkr", "sts")
"""Interface endpoints a node without internet access needs to join the cluster and pull images."""
S3_SERVICE = "s3"
"""The gateway endpoint for image layers (ECR keeps them in S3)."""

ROOT_DEVICE = "/dev/xvda"
"""The root device of the EKS-optimized Amazon Linux 2023 AMIs."""


class Chart(NamedTuple):
    """A pinned Helm chart."""

    name: str
    version: str
    repo: str
    namespace: str


NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin",
                             "nvidia-device-plugin")
"""Advertises ``nvidia.com/gpu`` on GPU nodes (https://github.com/NVIDIA/k8s-device-plugin); its
default tolerations include the ``nvidia.com/gpu`` taint."""
EFA_DEVICE_PLUGIN = Chart("aws-efa-k8s-device-plugin", "v0.5.7", "https://aws.github.io/eks-charts", "kube-system")
"""Advertises ``vpc.amazonaws.com/efa`` on EFA nodes (https://docs.aws.amazon.com/eks/latest/userguide/node-efa.html)."""

_GRAVITON = re.compile(r"^[a-z]+[0-9]+g[a-z]*\.")


def architecture(instance_type: str) -> str:
    """``arm64`` for Graviton families (a ``g`` right after the generation: ``m7g``, ``c8gd``,
    ``g5g``), else ``x86_64`` (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html)."""
    return "arm64" if _GRAVITON.match(instance_type) else "x86_64"


def kubeconfig(cluster: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig (JSON) that reaches ``cluster`` with the caller's AWS credentials."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": endpoint,
                                                   "certificate-authority-data": certificate_authority}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
        "users": [{"name": cluster, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region],
        }}}],
    }, sort_keys=True)
