"""Where a site's pools run: plain VM groups, or node pools of a managed Kubernetes cluster.

Pure: no I/O, no Pulumi. :class:`gpufleet.spec.SiteSpec` carries a :class:`PlatformSpec` as
``platform`` (default ``{kind: vm}``: autoscaling groups, scale sets, managed instance groups);
:class:`gpufleet.spec.InferenceSpec` carries a :class:`ServingSpec` as ``serving``: how the service's
Deployment scales inside the cluster (a KEDA ``ScaledObject`` on a Prometheus query).

With ``kind: kubernetes`` each pool of the site becomes one node pool (EKS managed node group, GKE
node pool, AKS agent pool) of the site's cluster: the cluster is created by the stack
(``create: true``, the default: version and system pool) or attached (``create: false``: the EKS
cluster name and node role, or the GKE / AKS cluster id). Which identifiers attaching needs is the
cloud profile's :attr:`~gpufleet.clouds.base.CloudProfile.kubernetes_attach_fields`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, NamedTuple

from pydantic import Field, model_validator

from gpufleet import clouds
from gpufleet.errors import Issue
from gpufleet.validation import StrictModel

if TYPE_CHECKING:
    from gpufleet.clouds.base import CloudProfile
    from gpufleet.plan import PoolPlan
    from gpufleet.spec import FleetSpec

VLLM_QUEUE_DEPTH_QUERY = 'sum(vllm:num_requests_waiting{{namespace="{namespace}",pod=~"{deployment}-.*"}})'
"""The default scaling query: requests waiting in the vLLM engines of the service's pods (the
``vllm:num_requests_waiting`` gauge of vLLM's Prometheus endpoint,
https://docs.vllm.ai/en/latest/design/metrics.html), summed over the Deployment's pods. KEDA divides
it by the replica count and compares it with ``target_value`` (the Prometheus scaler's default
``AverageValue`` metric type, https://keda.sh/docs/latest/scalers/prometheus/). ``{namespace}`` and
``{deployment}`` are filled in from the :class:`ServingSpec`; the ``namespace`` and ``pod`` labels are
those the Prometheus Operator's service and pod monitors attach to every scraped series."""

KUBERNETES_VERSION = r"^1\.[0-9]{2}$"
"""A Kubernetes minor version as the managed services take it (``1.31``)."""
K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A Kubernetes object name (RFC 1123 label): namespaces and Deployments."""


class SystemPoolSpec(StrictModel):
    """The cluster's system node pool (CPU nodes for cluster add-ons), when the stack creates it."""

    instance_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The system nodes' instance type / machine type / VM size (``m6i.xlarge``, ``e2-standard-8``,
    ``Standard_D8s_v5``): not a GPU type, so not in gpufleet's catalog."""
    nodes: Annotated[int, Field(gt=0, le=100)] = 2
    """System nodes (fixed)."""


class KubernetesSpec(StrictModel):
    """A managed Kubernetes cluster at a site: created by the stack, or an existing one attached."""

    create: bool = True
    """True: the stack creates the cluster (``version``, ``system_pool``); False: it adds node pools
    to an existing cluster named by ``cluster_name`` + ``node_role_arn`` (EKS) or ``cluster_id``
    (GKE, AKS)."""
    version: Annotated[str, Field(pattern=KUBERNETES_VERSION)] | None = None
    """Kubernetes minor version of a created cluster (``1.31``); default: the service's default."""
    cluster_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")] | None = None
    """The cluster's name: EKS, an existing cluster's name; on any cloud, the name of a created one
    (default ``gpufleet-<site>``)."""
    node_role_arn: Annotated[str, Field(max_length=2048, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$")] | None = None
    """EKS, existing cluster: the IAM role its GPU nodes assume (already mapped in the cluster's access
    entries or ``aws-auth``)."""
    cluster_id: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[!-~]+$")] | None = None
    """GKE: ``projects/<p>/locations/<l>/clusters/<name>``; AKS: the managed cluster's resource id."""
    system_pool: SystemPoolSpec | None = None
    """A created cluster's system pool (required with ``create: true``)."""

    @model_validator(mode="after")
    def _created_or_attached(self) -> KubernetesSpec:
        if self.create and self.system_pool is None:
            raise ValueError("a created cluster (create: true) needs system_pool: {instance_type, nodes}")
        if self.create and (self.cluster_id or self.node_role_arn):
            raise ValueError("cluster_id and node_role_arn name an existing cluster: set create: false, "
                             "or leave them out to create one")
        if not self.create and (self.version or self.system_pool):
            raise ValueError("version and system_pool are for a created cluster (create: true); an "
                             "existing cluster keeps its own")
        return self

    def name_at(self, site: str) -> str:
        """The cluster's name: ``cluster_name``, else the last segment of ``cluster_id``, else
        ``gpufleet-<site>``."""
        if self.cluster_name:
            return self.cluster_name
        if self.cluster_id:
            return self.cluster_id.rstrip("/").rsplit("/", 1)[-1]
        return f"gpufleet-{site}"


class PlatformSpec(StrictModel):
    """Where a site's pools run: ``vm`` (node groups of VMs) or ``kubernetes`` (node pools of a cluster)."""

    kind: Literal["vm", "kubernetes"] = "vm"
    kubernetes: KubernetesSpec | None = None
    """The cluster: set exactly when ``kind`` is ``kubernetes`` (checked below), so readers test this alone."""

    @model_validator(mode="after")
    def _cluster_given(self) -> PlatformSpec:
        if self.kind == "kubernetes" and self.kubernetes is None:
            raise ValueError("kind: kubernetes needs kubernetes: {create, version, system_pool, ...}")
        if self.kind == "vm" and self.kubernetes is not None:
            raise ValueError("kubernetes: is only read with kind: kubernetes")
        return self

    def cluster_name(self, site: str) -> str | None:
        """The cluster a pool at ``site`` joins (None on VMs)."""
        return self.kubernetes.name_at(site) if self.kubernetes is not None else None


class ServingSpec(StrictModel):
    """How an inference service's Deployment scales on Kubernetes: a KEDA ``ScaledObject`` on a
    Prometheus query of a serving metric. The node pool's autoscaler bounds come from the plan
    (sized to carry ``max_replicas`` × GPUs per replica)."""

    prometheus_url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://[!-~]+$")
    """The Prometheus server KEDA queries (``http://prometheus-operated.monitoring.svc:9090``)."""
    target_value: Annotated[float, Field(gt=0, le=1e12)]
    """The query's value per replica KEDA aims for (e.g. 5 waiting requests per replica)."""
    prometheus_query: str | None = Field(default=None, min_length=1, max_length=4096)
    """PromQL over the whole Deployment; default: vLLM's queue depth (:data:`VLLM_QUEUE_DEPTH_QUERY`).
    Tokens/s (``sum(rate(vllm:generation_tokens_total{...}[1m]))``) or KV-cache use work alike."""
    scale_to_zero: bool = False
    """Allow zero replicas (and zero GPU nodes) when idle; the first request then waits a node's boot."""
    namespace: Annotated[str, Field(pattern=K8S_NAME)] = "default"
    """The Deployment's namespace."""
    deployment: Annotated[str, Field(pattern=K8S_NAME)] | None = None
    """The serving Deployment's name; default: the service's name."""

    def deployment_for(self, service: str) -> str:
        return self.deployment or service

    def query_for(self, service: str) -> str:
        """The PromQL the ScaledObject runs: the spec's, or the vLLM default for this Deployment."""
        return self.prometheus_query or VLLM_QUEUE_DEPTH_QUERY.format(
            namespace=self.namespace, deployment=self.deployment_for(service))


class ReplicaBounds(NamedTuple):
    """An inference pool's node minimum and its Deployment's replica bounds."""

    min_nodes: int
    min_replicas: int
    max_replicas: int


def replica_bounds(platform: str, serving: ServingSpec | None, nodes: int, warm_nodes: int,
                   gpus_per_node: int, gpus_per_replica: int) -> ReplicaBounds:
    """An inference pool's ``min_nodes`` and, on Kubernetes, its Deployment's replica bounds.

    A Deployment's replica runs on one node, so a node holds ``gpus_per_node // gpus_per_replica``
    replicas and the node pool at its maximum ``nodes`` holds ``max_replicas`` of them: KEDA never
    asks for a replica the node pool's autoscaler could not place. The minimum keeps the warm nodes'
    replicas running; with ``scale_to_zero`` both the replicas and the node pool may reach 0.
    (A replica larger than one node gets no replicas here: :func:`check_pool_platform` refuses it.)
    """
    if platform != "kubernetes":
        return ReplicaBounds(warm_nodes, 0, 0)
    per_node = gpus_per_node // gpus_per_replica
    if serving is not None and serving.scale_to_zero:
        return ReplicaBounds(0, 0, nodes * per_node)
    return ReplicaBounds(warm_nodes, min(nodes * per_node, max(1, warm_nodes * per_node)), nodes * per_node)


def check_pool_platform(pool: PoolPlan, loc: str) -> list[Issue]:
    """On Kubernetes, the pool's accelerators are a kind its cloud builds node pools for (the cloud
    profile's ``kubernetes_accelerator_kinds``: NVIDIA GPUs everywhere, with the NVIDIA image and device
    plugin; TPUs on GKE, as TPU slice node pools; Trainium nowhere, its Neuron node pools not built yet),
    and an inference replica (one pod) fits on one node of its pool."""
    if pool.platform != "kubernetes":
        return []
    profile = clouds.profile(pool.cloud)
    kinds = profile.kubernetes_accelerator_kinds
    if pool.accelerator_kind not in kinds:
        where = [clouds.profile(c).title for c in clouds.names()
                 if pool.accelerator_kind in clouds.profile(c).kubernetes_accelerator_kinds]
        builds = ("NVIDIA GPUs only (NVIDIA node image and device plugin)" if kinds == {"gpu"}
                  else ", ".join(sorted(kinds)))
        return [Issue(f"{loc}.gpu", f"pool {pool.name}: {pool.gpu} ({pool.accelerator_kind}) on Kubernetes "
                      f"({profile.title}); gpufleet builds {profile.title} Kubernetes node pools for {builds}",
                      "platform.kind: vm for this site"
                      + (f", a Kubernetes site on {' or '.join(where)}" if where else "")
                      + ", or an NVIDIA GPU")]
    if pool.role != "inference":
        return []
    per_replica = int(pool.sizing.get("memory", {}).get("gpus_per_replica", 0))
    if per_replica <= pool.gpus_per_node:
        return []
    return [Issue(f"{loc}.model", f"pool {pool.name}: a replica needs {per_replica} GPUs, more than one "
                  f"{pool.instance_type} node's {pool.gpus_per_node}; a Deployment's pod runs on one node",
                  "a smaller context or concurrency, a smaller dtype, a larger GPU, or platform.kind: vm")]


def check_platforms(spec: FleetSpec, root: str) -> list[Issue]:
    """Checks that need the whole spec: a service that may run on a Kubernetes site says how it scales
    there (``serving``), and a service that declares ``serving`` may run on one."""
    issues: list[Issue] = []
    for i, site in enumerate(spec.sites):
        if site.platform.kubernetes is not None and not site.platform.kubernetes.create:
            issues += _attach_issues(site.platform.kubernetes, clouds.profile(site.cloud),
                                     f"{root}.sites[{i}].platform.kubernetes")
    k8s_sites = {s.name for s in spec.sites if s.platform.kind == "kubernetes"}
    for i, w in enumerate(spec.inference):
        allowed = set(w.sites or [s.name for s in spec.sites])
        on_k8s = sorted(allowed & k8s_sites)
        if on_k8s and w.serving is None:
            issues.append(Issue(f"{root}.inference[{i}].serving",
                                f"the service may run on Kubernetes sites ({', '.join(on_k8s)}) and says "
                                "nothing of how its Deployment scales there",
                                "serving: {prometheus_url: <url>, target_value: <per replica>} "
                                "(prometheus_query defaults to vLLM's queue depth)"))
        if not on_k8s and w.serving is not None:
            issues.append(Issue(f"{root}.inference[{i}].serving",
                                "only read on Kubernetes sites, and none of the service's sites is one",
                                "remove it, or allow a site with platform.kind: kubernetes"))
    return issues


def _attach_issues(k8s: KubernetesSpec, profile: CloudProfile, loc: str) -> list[Issue]:
    """An existing cluster is named by exactly the identifiers its cloud attaches by."""
    need = profile.kubernetes_attach_fields
    given = {f for f in ("cluster_name", "node_role_arn", "cluster_id") if getattr(k8s, f)}
    issues = [Issue(f"{loc}.{f}", f"attaching an existing {profile.title} cluster needs {f}",
                    f"{profile.title} attaches by {' and '.join(need)}") for f in need if f not in given]
    issues += [Issue(f"{loc}.{f}", f"{profile.title} does not attach a cluster by {f}",
                     f"{profile.title} attaches by {' and '.join(need)}; remove {f}")
               for f in sorted(given - set(need)) if f != "cluster_name"]
    return issues
