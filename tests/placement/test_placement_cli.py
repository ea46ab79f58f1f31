"""``gpufleet place``: exit codes 0 / 2 / 3, JSON keys, readable tables, errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "placement"


def test_feasible_problem_prints_json_and_exits_0(run_cli):
    code, out, err = run_cli("place", "--input", str(FIXTURES / "feasible.json"), "--json")
    assert code == 0, err
    result = json.loads(out)
    for key in ("status", "assignments", "cost_per_hour", "site_power_mw", "mip_gap", "binding"):
        assert key in result
    assert result["status"] == "optimal"
    assert set(result["site_power_mw"]) == {"aws-use1", "aws-usw2", "azure-eastus"}
    pretrain = [a for a in result["assignments"] if a["pool"] == "pretrain"]
    # 384 H100: only aws-use1 (512) and azure-eastus (1024) have the quota; aws-use1 is cheaper.
    assert pretrain == [
        {"pool": "pretrain", "site": "aws-use1", "zone": "us-east-1a", "instance_type": "p5.48xlarge", "nodes": 48}
    ]
    chat = {}
    for a in result["assignments"]:
        if a["pool"] == "chat":
            chat[a["site"]] = chat.get(a["site"], 0) + a["nodes"]
    assert chat == {"aws-use1": 24, "aws-usw2": 24}  # two sites, each must carry the peak alone


def test_the_same_file_gives_byte_identical_json(run_cli):
    runs = [run_cli("place", "--input", str(FIXTURES / "feasible.json"), "--json")[1] for _ in range(2)]
    assert runs[0] == runs[1]


def test_feasible_problem_prints_tables(run_cli):
    code, out, _ = run_cli("place", "--input", str(FIXTURES / "feasible.json"))
    assert code == 0
    assert "Placement" in out and "Site power" in out
    assert "pretrain" in out and "us-east-1a" in out
    assert "optimal: cost" in out


def test_infeasible_problem_exits_3_with_the_relaxation(run_cli):
    code, out, _ = run_cli("place", "--input", str(FIXTURES / "infeasible_quota.json"), "--json")
    assert code == 3
    result = json.loads(out)
    assert result["status"] == "infeasible"
    assert result["assignments"] == [] and result["cost_per_hour"] is None
    # 64 nodes × 8 = 512 H100 against a quota of 256 in the only allowed region.
    assert result["binding"][0]["kind"] == "quota"
    assert result["binding"][0]["where"] == "us-east-1/H100"
    assert result["binding"][0]["shortfall"] == 256
    assert "needs 256 more H100 quota at us-east-1" in result["explanation"]


def test_infeasible_problem_prints_the_explanation(run_cli):
    code, out, _ = run_cli("place", "--input", str(FIXTURES / "infeasible_quota.json"))
    assert code == 3
    assert "infeasible" in out and "needs 256 more H100 quota at us-east-1" in out


def test_bad_input_exits_2_listing_every_error(run_cli):
    code, out, err = run_cli("place", "--input", str(FIXTURES / "bad_input.json"), "--json")
    assert code == 2
    assert out == ""
    assert "4 errors in the input" in err
    for loc in ("sites[0].power_mw", "sites[0].colour", "pools[2].role", "pools[2].nodes"):
        assert loc in err
    assert "got -5" in err and "'training' or 'inference'" in err


def test_unknown_instance_type_exits_2(run_cli):
    code, _, err = run_cli("place", "--input", str(FIXTURES / "unknown_type.json"))
    assert code == 2
    assert "pools[0].instance_types[1]" in err and "did you mean 'p5.48xlarge'" in err


def test_malformed_json_exits_2_with_line_and_column(run_cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"sites": [\n  {"name": "a",}\n]}\n')
    code, _, err = run_cli("place", "--input", str(path))
    assert code == 2
    assert f"{path}:2:" in err and "malformed JSON" in err


def test_nan_in_json_is_rejected(run_cli, tmp_path):
    data = json.loads((FIXTURES / "feasible.json").read_text())
    data["sites"][0]["pue"] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data))
    code, _, err = run_cli("place", "--input", str(path))
    assert code == 2
    assert "sites[0].pue" in err and "finite" in err


def test_missing_file_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("place", "--input", str(tmp_path / "nope.json"))
    assert code == 2
    assert "does not exist" in err
