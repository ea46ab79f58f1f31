"""Pools on managed Kubernetes: one :class:`~components.k8s.base.KubernetesBackend` per cloud
(``eks``; GKE and AKS alike), registered with :func:`~components.k8s.base.register_k8s`, and the
in-cluster objects every cloud shares (:mod:`components.k8s.keda`). Importing this package registers
the backends.
"""
