"""Pools on managed Kubernetes: one :class:`~components.k8s.base.KubernetesBackend` per cloud
(``eks``, ``gke``, ``aks``), registered with :func:`~components.k8s.base.register_k8s`, and the
in-cluster objects every cloud shares (:mod:`components.k8s.keda`). Importing this package registers
the backends.
"""

from components.k8s import aks as _aks  # noqa: E402,F401  (registers the AKS backend)
from components.k8s import eks as _eks  # noqa: E402,F401  (registers the EKS backend)
from components.k8s import gke as _gke  # noqa: E402,F401  (registers the GKE backend)
