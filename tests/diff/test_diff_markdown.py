"""render_markdown(): the PR comment: verdict line first, changed rows open, the rest collapsed."""

from __future__ import annotations

import re

import pytest

from diff_fixtures import diff_of, side
from gpufleet.diff import Side, Violation, compare, render_markdown
from gpufleet.plan import build_plan
from gpufleet.spec import parse_fleet


def _table_rows(md: str, first_cell: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith(f"| {first_cell}")]


def test_capacity_cut_report() -> None:
    md = render_markdown(diff_of("capacity-cut"))
    first = md.splitlines()[0]
    assert first == "### 🚫 Blocked: 2 new mandatory violations · -96 H100, -84 L4, -0.16 MW, -$328k/month"
    (run,) = _table_rows(md, "`pretrain-70b`")
    assert "288 → 192 (-96)" in run and "⚠️ short" in run
    (chat,) = _table_rows(md, "`chat-8b`")
    assert "132 → 48 (-84)" in chat and "40.6k → 16.3k (day 120)" in chat
    new = [line for line in md.splitlines() if line.startswith("| 🆕 new |")]
    assert len(new) == 2
    assert all("| 🚫 mandatory | `capacity-covers-demand` |" in line for line in new)
    assert "| chat-8b-gcp-usc1 (gpufleet:index:InferencePool) | chat-8b: 12 nodes provisioned" in new[0]
    assert "| pretrain-70b-aws-use1 (gpufleet:index:TrainingCluster) | pretrain-70b: 24 nodes" in new[1]
    old = [line for line in md.splitlines() if "`gpu-quota-respected`" in line]
    assert len(old) == 1 and old[0].startswith("|  | advisory |")
    # The unchanged service is collapsed, after the changed ones.
    details = md.index("<summary>1 unchanged workload</summary>")
    assert md.index("`summarize-70b`") > details > md.index("`chat-8b`")


def test_demand_raised_report() -> None:
    d = diff_of("demand-raised")
    md = render_markdown(d)
    assert d.gpus.change == 132  # 33 more g2-standard-48 nodes: +0.028 MW at 0.768 kW × PUE 1.1
    assert md.splitlines()[0] == "### ✅ Passes: +132 L4, +0.028 MW, +$82k/month · 1 advisory warning"
    (chat,) = _table_rows(md, "`chat-8b`")
    assert "40.6k → 87.4k (day 120)" in chat  # 60,000 × 1.10^(120 / 30.44) = 87,400
    assert "#### Workloads: 1 of 3 changed" in md
    assert "🆕" not in md


def test_site_moved_report() -> None:
    md = render_markdown(diff_of("site-moved"))
    # 48 H100 leave Azure (PUE 1.2, $4.10) for AWS (PUE 1.15, $3.93): no GPU change, less power and cost.
    assert md.splitlines()[0] == "### ✅ Passes: -0.003 MW, -$6.0k/month, 1 placement move"
    assert "<summary>✅ 1 violation on base resolved by this change</summary>" in md
    assert "#### Placement moves: 1" in md
    (move,) = _table_rows(md, "`summarize-70b` (inference)")
    assert "azure-eastus · 1, 2, 3 · Standard_ND96isr_H100_v5 ×6" in move
    assert "aws-use1 · " in move and "p5.48xlarge" in move


def test_nothing_changed_report() -> None:
    md = render_markdown(diff_of("unchanged"))
    assert md.splitlines()[0] == "### ✅ Passes: no capacity change · 1 advisory warning"
    assert "#### Workloads: 0 of 3 changed" in md
    assert "<summary>3 unchanged workloads</summary>" in md
    assert "<summary>3 unchanged sites</summary>" in md
    assert "Placement moves" not in md


def test_every_details_block_is_closed(case: str) -> None:
    md = render_markdown(diff_of(case))
    assert md.count("<details>") == md.count("</details>")
    assert md.count("<summary>") == md.count("</summary>")


def test_text_from_policies_cannot_break_the_table() -> None:
    base = side("unchanged", "base", with_policy=False)
    plan = base.plan
    assert plan is not None
    evil = Violation("p|q", "mandatory", "r", "line one\n| fake | row |\n<script>x</script> " + "y" * 500)
    md = render_markdown(compare(Side.planned("base", "b", plan, []), Side.planned("head", "h", plan, [evil])))
    (row,) = [line for line in md.splitlines() if line.startswith("| 🆕 new |")]
    assert "<script>" not in md and "&lt;script&gt;" in row
    assert row.count(" | ") == 4  # five cells, no injected separators
    assert "\\| fake \\| row \\|" in row and row.endswith("… |")


def _big_spec(services: int) -> dict[str, object]:
    sites = [
        {"name": f"gcp-{i}", "cloud": "gcp", "region": "us-central1", "power_mw": 50.0,
         "zones": ["us-central1-a", "us-central1-b", "us-central1-c"],
         "quota_gpus": {"L4": 100000}, "price_per_gpu_hour": {"g2-standard-48": 0.85}, "project": "gpufleet-big",
         "network_cidr": f"10.{i}.0.0/16"}
        for i in range(1, 4)
    ]
    inference = [
        {"name": f"svc-{i:02d}", "model": {"params": 8e9, "layers": 32, "kv_heads": 8, "head_dim": 128},
         "context_tokens": 8192, "concurrency": 32, "tokens_per_s_per_replica": 2400, "gpu": "L4",
         "instance_types": ["g2-standard-48"], "peak_tokens_per_s": 5000 + 700 * i, "growth_per_month": 0.05,
         "lead_time_days": 30, "horizon_days": 90, "sites": [f"gcp-{1 + i % 3}"]}
        for i in range(services)
    ]
    return {"sites": sites, "inference": inference}


@pytest.fixture(scope="module")
def fifty() -> tuple[Side, Side]:
    spec = _big_spec(50)
    base_plan = build_plan(parse_fleet(spec), "big")
    raised = dict(spec)
    raised["inference"] = [dict(s, peak_tokens_per_s=s["peak_tokens_per_s"] * (2 if i % 4 == 0 else 1))  # type: ignore[operator]
                           for i, s in enumerate(spec["inference"])]  # type: ignore[arg-type]
    head_plan = build_plan(parse_fleet(raised), "big")
    floors = [Violation(f"gpufleet-inference-capacity-floor", "mandatory", f"svc-{i:02d}", "below the floor")
              for i in range(0, 50, 4)]
    return Side.planned("base", "b", base_plan, []), Side.planned("head", "h", head_plan, floors)


def test_fifty_workloads_stay_readable(fifty: tuple[Side, Side]) -> None:
    d = compare(*fifty)
    md = render_markdown(d)
    assert len(md.encode()) < 30_000
    assert md.splitlines()[0].startswith("### 🚫 Blocked: 13 new mandatory violations")
    assert "#### Workloads: 13 of 50 changed" in md
    workloads = md[md.index("#### Workloads"):]
    open_part = workloads.split("<details>")[0]
    # Ten changed services open, the other three and the 37 unchanged collapsed.
    assert len(re.findall(r"^\| `svc-\d\d`", open_part, flags=re.M)) == 10
    assert "<summary>3 more changed services</summary>" in md
    assert "<summary>37 unchanged workloads</summary>" in md
    assert "<summary>3 more violations</summary>" in md


@pytest.mark.parametrize("limit", [6_000, 3_000, 1_500, 1_000])
def test_long_reports_are_cut_safely(fifty: tuple[Side, Side], limit: int) -> None:
    d = compare(*fifty)
    md = render_markdown(d, max_bytes=limit)
    assert len(md.encode()) <= limit
    assert md.splitlines()[0] == f"### {d.verdict_line()}"
    assert md.count("<details>") == md.count("</details>")
    assert "left out" in md
    for line in md.splitlines():  # no half rows
        if line.startswith("|"):
            assert line.endswith("|")


@pytest.mark.parametrize("resource, shown", [
    ("urn:pulumi:prod::gpufleet::gpufleet:index:InferencePool$aws:autoscaling/group:Group::chat-8b-aws-use1",
     "chat-8b-aws-use1 (aws:autoscaling/group:Group)"),
    ("urn:pulumi:prod::gpufleet::pulumi:pulumi:Stack::gpufleet-prod", "gpufleet-prod (pulumi:pulumi:Stack)"),
    ("", "stack"),
    ("chat-8b", "chat-8b"),
])
def test_resources_are_shown_short(resource: str, shown: str) -> None:
    plan = side("unchanged", "base", with_policy=False).plan
    assert plan is not None
    v = Violation("capacity-covers-demand", "mandatory", resource, "short")
    md = render_markdown(compare(Side.planned("base", "b", plan, []), Side.planned("head", "h", plan, [v])))
    (row,) = [line for line in md.splitlines() if line.startswith("| 🆕 new |")]
    assert f"| {shown} |" in row


def test_an_infeasible_head_compares_nothing_per_workload() -> None:
    reason = "No placement fits. Smallest relaxation: needs 20 more L4 quota at gcp-usc1."
    d = compare(side("unchanged", "base"), Side.infeasible("head", "h.yaml", "fleet", reason))
    assert d.workloads == () and d.sites == () and d.moves == ()
    md = render_markdown(d)
    assert md.splitlines()[0] == f"### 🚫 Blocked: no placement satisfies head ({reason})"
    assert "| GPUs | 336 H100 · 132 L4 | — | — |" in md
    assert "| cost / month | $1.1M | — | — |" in md
    assert "Not compared: head has no feasible placement" in md
    assert "removed" not in md


def test_an_infeasible_base_reports_what_head_has() -> None:
    d = compare(Side.infeasible("base", "b.yaml", "fleet", "no room"), side("unchanged", "head"))
    assert d.verdict_line().startswith(
        "✅ Passes: base had no feasible placement; head has 336 H100 · 132 L4, 0.52 MW, $1.1M/month")
    assert "Not compared: base has no feasible placement" in render_markdown(d)
