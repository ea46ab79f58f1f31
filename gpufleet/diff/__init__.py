"""``gpufleet diff``: what a change to a stack does to capacity, power, cost, placement and policy.

The pieces, each usable on its own:

* :mod:`gpufleet.diff.side`: :class:`Side`, a plan and its policy verdicts (pure);
* :mod:`gpufleet.diff.figures`: each side's per-workload and per-site figures, read from its plan (pure);
* :mod:`gpufleet.diff.model`: :func:`compare`, which returns a :class:`FleetDiff` (pure);
* :mod:`gpufleet.diff.markdown`: :func:`render_markdown`, the PR comment (pure, size-bounded);
* :mod:`gpufleet.diff.chart`: :func:`render_chart`, demand against capacity as SVG (matplotlib);
* :mod:`gpufleet.diff.sources`: stack files and ``REF:PATH`` git sources, planned and previewed
  into sides (I/O).

``FleetDiff.to_json()`` is the JSON output; the CLI is :mod:`gpufleet.cli.diff`.
"""

from __future__ import annotations

from gpufleet.diff.figures import HOURS_PER_MONTH
from gpufleet.diff.markdown import render_markdown
from gpufleet.diff.model import DIFF_SCHEMA_VERSION, FleetDiff, compare
from gpufleet.diff.side import Side, Violation

__all__ = [
    "DIFF_SCHEMA_VERSION",
    "HOURS_PER_MONTH",
    "FleetDiff",
    "Side",
    "Violation",
    "compare",
    "render_markdown",
]
