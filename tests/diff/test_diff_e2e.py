"""``gpufleet diff`` with the real preview: the Pulumi program under mocks and the policy pack.

One fixture pair, end to end (about ten seconds). It also checks that the recorded policy results
the other diff tests use (``policy.json``) still match what the pack reports; when they do not,
re-record them with ``tests/diff/record_policy_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diff_fixtures import FIXTURES, policy_of, stack_file
from gpufleet.cli import main

POLICY_CONFIG = FIXTURES / "policy-config.json"


def _recorded_policies() -> set[str]:
    """Policies the recorded fixtures leave out, as their comment says."""
    comment = json.loads((FIXTURES / "capacity-cut" / "policy.json").read_text())["_comment"]
    left_out = comment.partition("Left out: the findings of ")[2].rstrip(".")
    return {p.strip() for p in left_out.split(",") if p.strip()}


def test_capacity_cut_with_the_real_policy_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_file = tmp_path / "diff.json"
    with pytest.raises(SystemExit) as exc:
        main(["diff", "--base", str(stack_file("capacity-cut", "base")), "--head", str(stack_file("capacity-cut", "head")),
              "--policy-config", str(POLICY_CONFIG), "--json-out", str(data_file)])
    out = capsys.readouterr().out
    assert exc.value.code == 3
    assert out.startswith("### 🚫 Blocked: 2 new mandatory violations")
    new = [line for line in out.splitlines() if line.startswith("| 🆕 new |")]
    assert [line.split(" | ")[3] for line in new] == [
        "chat-8b-gcp-usc1 (gpufleet:index:InferencePool)",
        "pretrain-70b-aws-use1 (gpufleet:index:TrainingCluster)",
    ]
    data = json.loads(data_file.read_text())
    assert data["verdict"]["new_mandatory_violations"] == 2
    # The recorded results still match the pack's.
    skip = _recorded_policies()
    real = [{k: v[k] for k in ("policy", "enforcement", "resource", "message", "resource_name")}
            for v in data["violations"] if v["policy"] not in skip]
    recorded = policy_of("capacity-cut", "head")["violations"]
    key = lambda v: (v["policy"], v["resource"])  # noqa: E731
    assert sorted(real, key=key) == sorted(recorded, key=key)
