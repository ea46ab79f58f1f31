"""The runway rows of ``gpufleet diff``: each inference service's runway and order-by date, base → head.

Hand-computed for the ``demand-raised`` pair as of 2026-06-01 (``runway = 30.4375 · ln(C / (P · 1.2)) /
ln(1 + g)`` days; ``order_by`` = as-of + ⌊runway⌋ − lead time):

* base ``chat-8b``: 22 of its g2-standard-48 nodes left after a zone loss serve 52,800 tokens/s against
  30,000 · 1.2 at 8 %/month: 151.5 days, runs out 2026-10-30, order by 2026-09-30 (30-day lead time);
* head: 105,600 tokens/s against 60,000 · 1.2 at 10 %/month: 122.3 days, order by 2026-09-01.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from diff_fixtures import plan_of, stack_file
from gpufleet.diff import Side, compare, render_markdown
from gpufleet.diff.figures import Runway, runway_figures
from gpufleet.stackfile import load_stack
from test_diff_cli import _offline_policy, run  # noqa: F401  (its autouse fixture: the recorded policy results)

AS_OF = dt.date(2026, 6, 1)


def side(case: str, label: str) -> Side:
    _, spec = load_stack(stack_file(case, label))
    plan = plan_of(case, label)
    return Side.planned(label, f"{case}/{label}", plan, [], runway=runway_figures(plan, spec, AS_OF), as_of=AS_OF)


def test_runway_figures_match_the_hand_computed_ones() -> None:
    base, head = side("demand-raised", "base"), side("demand-raised", "head")
    assert base.runway["chat-8b"] == Runway(days=151.5, order_by="2026-09-30", status="ok")
    assert head.runway["chat-8b"] == Runway(days=122.3, order_by="2026-09-01", status="ok")
    assert "pretrain-70b" not in head.runway  # training runs report slack, not a runway


def test_markdown_shows_runway_and_order_by_base_to_head() -> None:
    md = render_markdown(compare(side("demand-raised", "base"), side("demand-raised", "head")))
    assert "| headroom | runway · order by | placement |" in md
    [row] = [line for line in md.splitlines() if line.startswith("| `chat-8b`")]
    assert "| 152 d · order by 2026-09-30 → 122 d · order by 2026-09-01 |" in row
    [row] = [line for line in md.splitlines() if line.startswith("| `summarize-70b`")]
    assert "| 407 d · order by 2027-05-28 |" in row  # unchanged: shown once


def test_json_carries_runway_order_by_and_status() -> None:
    data = compare(side("demand-raised", "base"), side("demand-raised", "head")).to_json()
    [chat] = [w for w in data["workloads"] if w["name"] == "chat-8b"]
    assert {k: chat["base"][k] for k in ("runway_days", "order_by", "runway_status")} == \
        {"runway_days": 151.5, "order_by": "2026-09-30", "runway_status": "ok"}
    assert {k: chat["head"][k] for k in ("runway_days", "order_by", "runway_status")} == \
        {"runway_days": 122.3, "order_by": "2026-09-01", "runway_status": "ok"}
    assert "runway" in chat["changed"]
    assert data["head"]["runway_as_of"] == "2026-06-01"


def test_a_change_to_runway_alone_marks_the_service_changed() -> None:
    plan = plan_of("unchanged", "base")
    before = {"chat-8b": Runway(200.0, "2026-11-17", "ok")}
    after = {"chat-8b": Runway(20.0, "2026-05-22", "short")}
    d = compare(Side.planned("base", "b", plan, [], runway=before), Side.planned("head", "h", plan, [], runway=after))
    [chat] = [w for w in d.workloads if w.name == "chat-8b"]
    assert (chat.change, chat.fields) == ("changed", ("runway",))
    assert "| 200 d · order by 2026-11-17 → 20 d · order by 2026-05-22 🚫 short |" in render_markdown(d)


def test_a_runway_that_never_ends_is_null_in_json() -> None:
    plan = plan_of("unchanged", "base")
    endless = {"chat-8b": Runway(None, None, "ok")}
    d = compare(Side.planned("base", "b", plan, [], runway=endless), Side.planned("head", "h", plan, [], runway=endless))
    [chat] = [w for w in d.to_json()["workloads"] if w["name"] == "chat-8b"]
    assert (chat["head"]["runway_days"], chat["head"]["order_by"]) == (None, None)
    assert "never runs out" in render_markdown(d)


def test_sides_without_runway_keep_the_old_table() -> None:
    plan = plan_of("unchanged", "base")
    md = render_markdown(compare(Side.planned("base", "b", plan, []), Side.planned("head", "h", plan, [])))
    assert "runway" not in md


def test_the_command_takes_as_of(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--base", str(stack_file("demand-raised", "base")), "--head",
                        str(stack_file("demand-raised", "head")), "--format", "json", "--as-of", "2026-06-01"], capsys)
    assert code == 0
    data = json.loads(out)
    [chat] = [w for w in data["workloads"] if w["name"] == "chat-8b"]
    assert (chat["base"]["order_by"], chat["head"]["order_by"]) == ("2026-09-30", "2026-09-01")
    assert data["base"]["runway_as_of"] == data["head"]["runway_as_of"] == "2026-06-01"


def test_a_bad_as_of_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(["--base", str(stack_file("demand-raised", "base")), "--head",
                          str(stack_file("demand-raised", "head")), "--as-of", "2026-02-30"], capsys)
    assert code == 2 and out == ""
    assert "--as-of" in err
