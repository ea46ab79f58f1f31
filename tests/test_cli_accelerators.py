"""`gpufleet catalog --accelerator` and `gpufleet size ... --accelerator`: TPU and Trainium as a user sees them."""

from __future__ import annotations

import json
from collections.abc import Callable

Run = Callable[..., tuple[int, str, str]]


def test_catalog_filters_by_accelerator_kind(run_cli: Run) -> None:
    code, out, _ = run_cli("catalog", "--accelerator", "tpu", "--json")
    assert code == 0
    assert sorted(r["instance_type"] for r in json.loads(out)) == [
        "ct5lp-hightpu-4t", "ct5lp-hightpu-8t", "ct5p-hightpu-4t", "ct6e-standard-4t", "ct6e-standard-8t"]
    code, out, _ = run_cli("catalog", "--accelerator", "trainium", "--json")
    rows = {r["instance_type"]: r for r in json.loads(out)}
    assert sorted(rows) == ["trn1.32xlarge", "trn2.48xlarge"]
    assert (rows["trn2.48xlarge"]["gpus"], rows["trn2.48xlarge"]["fabric_interfaces"]) == (16, 16)
    _, out, _ = run_cli("catalog", "--accelerator", "gpu", "--cloud", "gcp", "--json")
    assert all(r["gpu"] not in {"v5e", "v5p", "v6e"} for r in json.loads(out)) and json.loads(out)


def test_catalog_refuses_an_unknown_kind(run_cli: Run) -> None:
    code, _, err = run_cli("catalog", "--accelerator", "npu")
    assert code == 2
    assert "gpu" in err and "tpu" in err and "trainium" in err
