"""AWS's fake provider answers for offline runs (:mod:`gpufleet.offline`): resource ids and ARNs,
and the AMI an SSM parameter names. Plain Python, no Pulumi import; the interface is
:class:`gpufleet.offline.cloud_mocks.CloudMocks`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gpufleet.clouds.aws.kubernetes import EKS_CLUSTER, GET_CLUSTER
from gpufleet.clouds.aws.profile import LAUNCH_TEMPLATE, PLACEMENT_GROUP
from gpufleet.offline.cloud_mocks import digest

PACKAGE = "aws"
"""Answers for ``aws:...`` type and function tokens."""

_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    LAUNCH_TEMPLATE: "lt-",
    PLACEMENT_GROUP: "pg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
}
"""EC2's id prefix per resource type (other types get ``<name>-``)."""


def computed_state(type_token: str, name: str, inputs: dict[str, Any],
                   provider: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """An EC2-style id (``vpc-…``), an ARN in the provider's region, the name and a template version."""
    state = dict(inputs)
    rid = _ID_PREFIXES.get(type_token, f"{name}-") + digest(type_token, name)
    service = type_token.split(":")[1].split("/")[0]
    region = provider.get("region", "mock-region")
    state.setdefault("arn", f"arn:aws:{service}:{region}:123456789012:{name}/{rid}")
    state.setdefault("name", name)
    state.setdefault("latestVersion", 1)
    if type_token == "aws:ec2/vpc:Vpc":
        state.setdefault("mainRouteTableId", "rtb-" + digest("main-route-table", name))
    if type_token == EKS_CLUSTER:
        state.update(_eks_cluster(name, rid, region, inputs))
    return rid, state


def _eks_cluster(name: str, rid: str, region: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What EKS computes for a cluster: its API endpoint, CA bundle and cluster security group."""
    vpc = dict(inputs.get("vpcConfig") or {})
    vpc.setdefault("clusterSecurityGroupId", "sg-" + digest("eks-cluster-sg", name))
    return {"endpoint": f"https://{rid.upper()[:32]}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthority": {"data": "LS0tLS1CRUdJTi1NT0NLLUNBLS0tLS0="}, "vpcConfig": vpc,
            "version": inputs.get("version") or "1.33", "status": "ACTIVE"}


def answer_call(token: str, args: Mapping[str, Any], provider: Mapping[str, Any]) -> dict[str, Any] | None:
    """``aws:ssm/getParameter:getParameter``: an AMI id for the parameter name and the region."""
    if token == GET_CLUSTER:
        name = str(args.get("name", ""))
        region = str(args.get("region") or provider.get("region", "mock-region"))
        found = _eks_cluster(name, name + "-" + digest(name, region), region, {})
        found["vpcConfig"].update({"vpcId": "vpc-" + digest("existing-vpc", name),  # an existing cluster's VPC
                                   "subnetIds": ["subnet-" + digest("existing-subnet", name, str(i)) for i in range(3)]})
        return {"id": name, "name": name, "arn": f"arn:aws:eks:{region}:123456789012:cluster/{name}",
                "endpoint": found["endpoint"], "certificateAuthorities": [found["certificateAuthority"]],
                "vpcConfig": found["vpcConfig"], "version": found["version"], "status": "ACTIVE"}
    if token == "aws:ec2/getSubnets:getSubnets":  # one subnet per filter set (an existing VPC's, in one zone)
        key = json.dumps(args.get("filters"), sort_keys=True, default=str)
        return {"id": "subnets-" + digest(key), "ids": ["subnet-" + digest(key)], "filters": args.get("filters")}
    if token != "aws:ssm/getParameter:getParameter":
        return None
    name = str(args.get("name", ""))
    region = str(args.get("region") or provider.get("region", ""))
    return {"id": name, "name": name, "type": "String", "value": "ami-" + digest(name, region),
            "arn": f"arn:aws:ssm:{region or 'mock-region'}::parameter{name}", "version": 1,
            "insecureValue": "ami-" + digest(name, region), "withDecryption": True}
