"""docs/usage.md's example report is what the code renders for the capacity-cut fixture pair.

The example uses the policy results recorded in ``tests/fixtures/diff/capacity-cut/policy.json``.
After a change to the report, refresh it with::

    GPUFLEET_UPDATE_DOCS=1 .venv/bin/pytest tests/diff/test_diff_docs.py
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from diff_fixtures import plan_of, policy_of, stack_file
from gpufleet.diff import Side, compare, render_markdown
from gpufleet.diff.figures import runway_figures
from gpufleet.stackfile import load_stack

USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"
START, END = "<!-- example-report:start -->", "<!-- example-report:end -->"
AS_OF = datetime.date(2026, 6, 1)
"""The date the example's runways count from (``gpufleet diff --as-of 2026-06-01``)."""


def example() -> str:
    def side(label: str) -> Side:
        policy = policy_of("capacity-cut", label)
        plan = plan_of("capacity-cut", label)
        _, spec = load_stack(stack_file("capacity-cut", label))
        return Side.planned(label, f"tests/fixtures/diff/capacity-cut/{label}/Pulumi.fleet.yaml", plan,
                            policy["violations"], policy["verdict"], runway=runway_figures(plan, spec, AS_OF),
                            as_of=AS_OF)

    report = render_markdown(compare(side("base"), side("head")))
    return f"{START}\n\n````markdown\n{report}````\n\n{END}"


def test_the_usage_example_is_current() -> None:
    text = USAGE.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    wanted = example()
    if os.environ.get("GPUFLEET_UPDATE_DOCS") == "1":
        USAGE.write_text(text[:start] + wanted + text[end:], encoding="utf-8")
        text = USAGE.read_text(encoding="utf-8")
    assert text[start:text.index(END) + len(END)] == wanted
