"""The core never imports Pulumi or a cloud SDK, and never names a cloud outside ``gpufleet/clouds/``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ["gpufleet.errors", "gpufleet.catalog", "gpufleet.spec", "gpufleet.sizing", "gpufleet.plan",
        "gpufleet.placement", "gpufleet.cli", "gpufleet.checks", "gpufleet.clouds", "gpufleet.clouds.aws.readers",
        "gpufleet.clouds.azure.readers", "gpufleet.clouds.gcp.readers", "gpufleet.policy.rules",
        "gpufleet.policy.runway_check", "gpufleet.backtest",
        "gpufleet.stackset", "gpufleet.parallel", "gpufleet.deploy"]
FORBIDDEN = ("pulumi", "pulumi_aws", "pulumi_azure_native", "pulumi_gcp", "pulumi_policy", "boto3", "azure",
             "google.cloud")


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_pulumi_or_cloud_sdk(module: str) -> None:
    # A fresh interpreter, so modules other tests imported do not mask an import.
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m.startswith('google.cloud')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def test_core_sources_have_no_pulumi_import_statement() -> None:
    for name in ("errors.py", "spec.py", "sizing.py", "plan.py"):
        text = (REPO / "gpufleet" / name).read_text()
        assert "import pulumi" not in text and "from pulumi" not in text, name
    for path in (REPO / "gpufleet" / "catalog").rglob("*.py"):
        assert "pulumi" not in path.read_text(), path


CLOUD_STRING = re.compile(r"""["'](aws|azure|gcp)["']|\b(aws|azure-native|gcp):[a-z]""")
"""A cloud's name as a string literal, or a cloud resource type token (``aws:ec2/...``)."""

NAMES_CLOUDS = (
    "clouds/",  # the one place per cloud: profiles, resource type tokens, pack readers, preflight reads, mocks
)


def test_only_the_clouds_package_names_a_cloud() -> None:
    # Everything else dispatches through gpufleet.clouds (profile, names, reader), so adding a cloud
    # or a cloud fact never touches the planner, the checks, the CLI or the pack's rules.
    core = REPO / "gpufleet"
    offenders = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted(core.rglob("*.py")) if not str(path.relative_to(core)).startswith(NAMES_CLOUDS)
        for n, line in enumerate(path.read_text().splitlines(), start=1) if CLOUD_STRING.search(line)
    ]
    assert offenders == []
