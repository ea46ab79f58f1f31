"""Fixtures for ``gpufleet preview``: the fixture stacks and policy configs, and previews of them run
once per session (each runs the Pulumi program under mocks and the policy pack as a process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.preview import PreviewResult, run_preview

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "tests" / "fixtures" / "preview"
CONFIGS = REPO / "tests" / "fixtures" / "policy-config"
PACK_DIR = REPO / "policies"


@pytest.fixture(scope="session")
def good() -> PreviewResult:
    return run_preview(STACKS / "Pulumi.good.yaml")


@pytest.fixture(scope="session")
def under() -> PreviewResult:
    return run_preview(STACKS / "Pulumi.under.yaml")
