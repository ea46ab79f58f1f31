"""The backend registry, and the rule that only backends know cloud names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import components
from components import CloudBackend, backend_for, register, registered
from components.aws import AwsBackend

REPO = Path(__file__).resolve().parents[2]


def test_all_three_clouds_are_registered() -> None:
    assert registered() == ("aws", "azure", "gcp")
    for cloud in registered():
        backend = backend_for(cloud)
        assert isinstance(backend, CloudBackend) and backend.name == cloud


def test_each_backend_builds_from_its_clouds_profile() -> None:
    from gpufleet import clouds

    assert registered() == clouds.names()
    for cloud in registered():
        assert backend_for(cloud).profile is clouds.profile(cloud)


def test_unknown_cloud_names_the_registered_ones() -> None:
    with pytest.raises(KeyError, match="no gpufleet backend for cloud 'oci'; registered: aws, azure, gcp"):
        backend_for("oci")


def test_a_second_backend_cannot_take_a_registered_name() -> None:
    class Other(AwsBackend):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register("aws")(Other)
    assert type(backend_for("aws")) is AwsBackend


def test_only_backend_modules_name_a_cloud() -> None:
    # The facades and the program dispatch through backend_for and gpufleet.clouds, never on a name
    # (the core is checked the same way by tests/test_layering.py).
    cloud_literal = re.compile(r"""["'](aws|azure|gcp)["']""")
    neutral = [REPO / "__main__.py", *(REPO / "components" / name for name in
                                       ("__init__.py", "base.py", "cluster.py", "network.py", "program.py"))]
    for path in neutral:
        assert not cloud_literal.search(path.read_text()), f"{path.name} names a cloud"


def test_public_exports_are_pinned() -> None:
    assert sorted(components.__all__) == sorted([
        "TYPE_PREFIX", "CloudBackend", "ClusterBuild", "InferencePool", "InferencePoolArgs", "NetworkBuild",
        "PoolBuild", "SiteNetwork", "SiteNetworkArgs", "TrainingCluster", "TrainingClusterArgs", "backend_for",
        "check_plan", "demand_for", "plan_summary", "pool_facts", "register", "registered", "serving_for",
        "validate_plan",
    ])


def test_a_stack_loads_only_the_backends_of_its_clouds() -> None:
    # A fresh interpreter: importing the components and asking for one cloud's backend loads that
    # cloud's provider SDK only, and no Kubernetes backend or SDK until a Kubernetes pool asks.
    import subprocess
    import sys

    code = ("import sys, components\n"
            "from components import backend_for\n"
            "from components.k8s.base import k8s_backend_for\n"
            "backend_for('gcp')\n"
            "print(sorted(m for m in ('pulumi_aws', 'pulumi_azure_native', 'pulumi_gcp', 'pulumi_kubernetes',\n"
            "                         'components.aws', 'components.k8s.gke') if m in sys.modules))\n"
            "k8s_backend_for('gcp')\n"
            "print('components.k8s.gke' in sys.modules, 'components.k8s.eks' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["['pulumi_gcp']", "True False"]
