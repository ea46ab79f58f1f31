"""Google Cloud's fake provider answers for offline runs (:mod:`gpufleet.offline`): compute self
links, GKE cluster and node pool ids (with a cluster's endpoint and CA), the image an image family
names and an existing GKE cluster's endpoint. Plain Python, no Pulumi import; the interface is
:class:`gpufleet.offline.cloud_mocks.CloudMocks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpufleet.offline.cloud_mocks import digest, plural

PACKAGE = "gcp"
"""Answers for ``gcp:...`` type and function tokens."""

_COMPUTE = "https://www.googleapis.com/compute/v1/projects"


def computed_state(type_token: str, name: str, inputs: dict[str, Any],
                   provider: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A self link in the resource's region, zone or ``global`` (also its id), and the name."""
    state = dict(inputs)
    kind = type_token.split(":")[-1]
    gproject = inputs.get("project") or provider.get("project") or "mock-project"
    where = f"regions/{inputs['region']}" if "region" in inputs else (
        f"zones/{inputs['zone']}" if "zone" in inputs else "global")
    physical = inputs.get("name", name)
    link = f"{_COMPUTE}/{gproject}/{where}/{plural(kind[0].lower() + kind[1:])}/{physical}"
    state.setdefault("name", physical)
    if type_token == CLUSTER:
        location = inputs.get("location", "mock-location")
        cid = f"projects/{gproject}/locations/{location}/clusters/{physical}"
        state.update(_cluster_endpoint(cid))
        return cid, state
    if type_token == NODE_POOL:
        cluster = str(inputs.get("cluster", "projects/mock-project/locations/mock-location/clusters/mock"))
        return f"{cluster}/nodePools/{physical}", state
    state.setdefault("selfLink", link)
    state.setdefault("selfLinkUnique", f"{link}?uniqueId={int(digest(type_token, name)[:12], 16)}")
    return link, state


CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
MOCK_CA = "bW9jayBjbHVzdGVyIENB"  # base64 of "mock cluster CA"


def _cluster_endpoint(cluster_id: str) -> dict[str, Any]:
    """A GKE cluster's computed endpoint and CA (a documentation address, RFC 5737), stable per cluster."""
    octet = int(digest("gke-endpoint", cluster_id)[:2], 16)
    return {"endpoint": f"203.0.113.{octet}", "masterAuth": {"clusterCaCertificate": MOCK_CA}}


def answer_call(token: str, args: Mapping[str, Any], provider: Mapping[str, Any]) -> dict[str, Any] | None:
    """``gcp:compute/getImage:getImage``: the image of a family (or name) in a project;
    ``gcp:container/getCluster:getCluster``: an existing GKE cluster's id, endpoint and CA."""
    if token == "gcp:container/getCluster:getCluster":
        cid = f"projects/{args.get('project', 'mock-project')}/locations/{args.get('location')}/clusters/{args.get('name')}"
        found = _cluster_endpoint(cid)
        return {"id": cid, "name": args.get("name"), "location": args.get("location"), "project": args.get("project"),
                "endpoint": found["endpoint"], "masterAuths": [found["masterAuth"]]}
    if token != "gcp:compute/getImage:getImage":
        return None
    project = str(args.get("project", "mock-project"))
    family = str(args.get("family") or args.get("name") or "image")
    image = f"{family}-v20260101"
    link = f"{_COMPUTE}/{project}/global/images/{image}"
    return {"id": link, "name": image, "family": family, "project": project, "selfLink": link,
            "status": "READY", "architecture": "X86_64"}
