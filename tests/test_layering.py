"""The core never imports Pulumi or a cloud SDK: the program, the pack and the CLI share it freely."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ["gpufleet.errors", "gpufleet.catalog", "gpufleet.spec", "gpufleet.sizing", "gpufleet.plan",
        "gpufleet.placement", "gpufleet.cli"]
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
