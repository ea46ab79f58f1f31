"""Pools on managed Kubernetes: one :class:`~components.k8s.base.KubernetesBackend` per cloud
(``eks``, ``gke``, ``aks``), registered with :func:`~components.k8s.base.register_k8s`, and the
in-cluster objects every cloud shares (:mod:`components.k8s.keda`).

A backend module is imported the first time :func:`~components.k8s.base.k8s_backend_for` asks for
its cloud (a stack without Kubernetes sites never loads the Kubernetes SDK or the GKE/EKS/AKS
modules): :data:`BACKEND_MODULES` says which module registers each cloud's backend.
"""

BACKEND_MODULES: dict[str, str] = {"aws": "eks", "azure": "aks", "gcp": "gke"}
"""Cloud name → the module of this package that registers its Kubernetes backend."""
