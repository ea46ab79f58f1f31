"""Record the policy results of the diff fixture pairs from the real preview.

Each ``tests/fixtures/diff/<case>/policy.json`` holds, for base and head, the verdict and the
violations that ``gpufleet.preview.run_preview`` reports with ``tests/fixtures/diff/policy-config.json``
(the Pulumi program under mocks, then the policy pack). The report tests build their sides from
these and the plans of the stack files, so they run in a second; ``test_diff_e2e.py`` runs the real
preview on one pair. Run this again when the policy pack or the components change what they report:

    .venv/bin/python tests/diff/record_policy_fixtures.py [--without-policy NAME ...]

``--without-policy`` leaves a policy's findings out (and says so in the file), for a policy whose
findings are known to be wrong for every stack; the e2e test still sees them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diff"
POLICY_CONFIG = FIXTURES / "policy-config.json"


def record(case_dir: Path, without: list[str]) -> dict[str, object]:
    from gpufleet.diff.sources import default_preview

    comment = ("Recorded by tests/diff/record_policy_fixtures.py from the real preview "
               "(policy config: tests/fixtures/diff/policy-config.json); do not edit by hand.")
    if without:
        comment += f" Left out: the findings of {', '.join(without)}."
    doc: dict[str, object] = {"_comment": comment}
    for label in ("base", "head"):
        stack = case_dir / label / "Pulumi.fleet.yaml"
        result = default_preview(stack, POLICY_CONFIG)
        kept = [v for v in result["violations"] if v["policy"] not in without]
        blocked = any(v["enforcement"] in ("mandatory", "remediate") for v in kept)
        doc[label] = {"verdict": "blocked" if blocked else "pass", "violations": kept}
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without-policy", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv)
    for case_dir in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        doc = record(case_dir, args.without_policy)
        (case_dir / "policy.json").write_text(json.dumps(doc, indent=2) + "\n")
        print(f"{case_dir.name}: base {doc['base']['verdict']}, head {doc['head']['verdict']}")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
