"""Small pieces: resource reading helpers, engine-side serialisation, and the rules' layering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpufleet.offline import UNKNOWN as OFFLINE_UNKNOWN
from gpufleet.names import UNKNOWN_SENTINEL, UNKNOWN_VALUES
from gpufleet.engine import StackResource, provider_urn, urn_type
from gpufleet.engine.client import to_analyzer_resource as _to_analyzer_resource
from gpufleet.policy.resources import as_int, pick, spread, tags_of
from gpufleet.project import default_pack_dir
from tests.policies.conftest import PACK_DIR, REPO


def test_unknown_sentinels_match_pulumi_policy() -> None:
    from pulumi_policy import proxy

    assert {getattr(proxy, n) for n in dir(proxy) if n.startswith("UNKNOWN_") and n.endswith("_VALUE")} == UNKNOWN_VALUES
    assert UNKNOWN_SENTINEL in UNKNOWN_VALUES


def test_recorded_unknowns_become_the_engines_sentinel() -> None:
    r = StackResource.from_recorded({"type": "aws:autoscaling/group:Group", "name": "g", "urn": "urn:x",
                                     "inputs": {"maxSize": 4.0, "launchTemplate": {"id": OFFLINE_UNKNOWN},
                                                "vpcZoneIdentifiers": [OFFLINE_UNKNOWN]},
                                     "parent": "urn:p", "provider": "urn:pulumi:s::p::pulumi:providers:aws::default::id-1"})
    assert r.properties == {"maxSize": 4.0, "launchTemplate": {"id": UNKNOWN_SENTINEL},
                            "vpcZoneIdentifiers": [UNKNOWN_SENTINEL]}
    assert r.provider == "urn:pulumi:s::p::pulumi:providers:aws::default"
    msg = _to_analyzer_resource(r)
    assert msg.parent == "urn:p" and msg.options.parent == "urn:p"
    assert msg.provider.type == "pulumi:providers:aws" and msg.provider.name == "default"
    assert msg.properties["maxSize"] == 4.0 and msg.properties["launchTemplate"]["id"] == UNKNOWN_SENTINEL


def test_urn_helpers() -> None:
    urn = "urn:pulumi:dev::gpufleet::gpufleet:index:InferencePool$aws:autoscaling/group:Group::chat-asg"
    assert urn_type(urn) == "aws:autoscaling/group:Group"
    assert provider_urn(urn) == urn


def test_default_pack_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GPUFLEET_POLICY_PACK", raising=False)
    assert default_pack_dir(REPO / "stacks") == PACK_DIR
    monkeypatch.setenv("GPUFLEET_POLICY_PACK", str(tmp_path))
    assert default_pack_dir() == tmp_path


def test_pick_reads_either_spelling() -> None:
    assert pick({"max_nodes": 3}, "maxNodes") == 3
    assert pick({"maxSize": 3}, "max_size") == 3
    assert pick({"a": 1}, "b", default=9) == 9
    assert pick(None, "a") is None


def test_numbers_and_tags() -> None:
    assert as_int("12") == 12 and as_int(12.0) == 12 and as_int(True) is None and as_int(UNKNOWN_SENTINEL) is None
    assert tags_of({"tags": [{"key": "a", "value": "1"}, {"key": "b", "value": UNKNOWN_SENTINEL}]}) == {"a": "1"}
    assert tags_of({"labels": {"a": "1"}, "allInstancesConfig": {"labels": {"b": "2"}}}) == {"a": "1", "b": "2"}


def test_spread_balances_like_the_clouds() -> None:
    assert spread(10, ["a", "b", "c"]) == {"a": 4, "b": 3, "c": 3}
    assert spread(2, ["a", "b", "c"]) == {"a": 1, "b": 1, "c": 0}


def test_rules_import_no_pulumi() -> None:
    # Only pack.py (the CrossGuard objects) touches pulumi_policy, and only when called.
    code = ("import sys, importlib\n"
            "for m in ('resources', 'demand', 'config', 'rules', 'summary', 'pack'):\n"
            "    importlib.import_module('gpufleet.policy.' + m)\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_policy', 'grpc'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PACK_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
