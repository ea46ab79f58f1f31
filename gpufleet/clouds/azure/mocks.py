"""Azure's fake provider answers for offline runs (:mod:`gpufleet.offline`): ARM resource ids in the
provider's subscription. Plain Python, no Pulumi import; the interface is
:class:`gpufleet.offline.cloud_mocks.CloudMocks`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from gpufleet.offline.cloud_mocks import plural

PACKAGE = "azure-native"
"""Answers for ``azure-native:...`` type and function tokens."""

_NAMESPACES = {
    "compute": "Microsoft.Compute",
    "network": "Microsoft.Network",
    "monitor": "Microsoft.Insights",
    "resources": "Microsoft.Resources",
    "containerservice": "Microsoft.ContainerService",
}
"""The ARM resource provider namespace of each azure-native module."""


def computed_state(type_token: str, name: str, inputs: dict[str, Any],
                   provider: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """An ARM id (``/subscriptions/…/resourceGroups/…/providers/…``) and the physical name."""
    state = dict(inputs)
    subscription = provider.get("subscriptionId", "00000000-0000-0000-0000-000000000000")
    rg = inputs.get("resourceGroupName", "mock-rg")
    kind = type_token.split(":")[-1]
    physical = (inputs.get("resourceGroupName") if kind == "ResourceGroup" else None) or name
    namespace = _NAMESPACES.get(type_token.split(":")[1], "Microsoft.Mock")
    rid = f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/{namespace}/{plural(kind)}/{physical}"
    if kind == "ResourceGroup":
        rid = f"/subscriptions/{subscription}/resourceGroups/{physical}"
    elif kind == "ManagedCluster":  # ARM names it by resourceName (the AKS cluster's name)
        physical = inputs.get("resourceName") or name
        rid = f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/{namespace}/managedClusters/{physical}"
    elif kind == "AgentPool":  # a child of its cluster (resourceName), named by agentPoolName
        physical = inputs.get("agentPoolName") or name
        rid = (f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/{namespace}/managedClusters/"
               f"{inputs.get('resourceName', 'mock')}/agentPools/{physical}")
    state.setdefault("name", physical)
    return rid, state


MOCK_KUBECONFIG = base64.b64encode(b"""apiVersion: v1
kind: Config
clusters:
- name: mock
  cluster: {server: "https://mock.hcp.example.azmk8s.io:443"}
contexts:
- name: mock
  context: {cluster: mock, user: mock}
current-context: mock
users:
- name: mock
  user: {token: mock}
""").decode()


def answer_call(token: str, args: Mapping[str, Any], provider: Mapping[str, Any]) -> dict[str, Any] | None:
    """An AKS cluster's user credentials (one mock kubeconfig, base64 as ARM returns it); for any other
    data source the runner echoes the arguments back."""
    if token == "azure-native:containerservice:listManagedClusterUserCredentials":
        return {"kubeconfigs": [{"name": "clusterUser", "value": MOCK_KUBECONFIG}]}
    return None
