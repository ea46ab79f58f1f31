"""The preflight report: findings in a stable order, the exit code they imply, text and JSON views.

Pure: no I/O, no SDK. Exit codes (``gpufleet.errors``): 0 every check ran and passed (warnings
allowed), 3 at least one shortfall, 4 nothing failed but some checks could not run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from gpufleet import clouds
from gpufleet.catalog import CLOUDS
from gpufleet.errors import EXIT_BLOCKED, EXIT_NOT_CHECKED, EXIT_OK
from gpufleet.preflight.base import KINDS, SEVERITIES, Finding

REPORT_SCHEMA_VERSION = 1

_LABEL = {"ok": "ok", "warning": "WARN", "error": "FAIL", "unknown": "UNCHECKED"}


def _order(f: Finding) -> tuple[Any, ...]:
    cloud = CLOUDS.index(f.cloud) if f.cloud in CLOUDS else len(CLOUDS)
    return (cloud, f.site, SEVERITIES.index(f.severity), KINDS.index(f.kind), f.pools, f.message)


@dataclass(frozen=True)
class PreflightReport:
    """All findings of one preflight run."""

    stack: str
    findings: tuple[Finding, ...]
    clouds: tuple[str, ...] = ()

    @classmethod
    def of(cls, stack: str, findings: list[Finding], clouds: tuple[str, ...] = ()) -> PreflightReport:
        return cls(stack=stack, findings=tuple(sorted(findings, key=_order)), clouds=clouds)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def unchecked(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "unknown"]

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_BLOCKED
        if self.unchecked:
            return EXIT_NOT_CHECKED
        return EXIT_OK

    @property
    def verdict(self) -> str:
        return {EXIT_BLOCKED: "shortfall", EXIT_NOT_CHECKED: "incomplete", EXIT_OK: "ok"}[self.exit_code]

    def counts(self) -> dict[str, int]:
        by = Counter(f.severity for f in self.findings)
        return {"error": by["error"], "unknown": by["unknown"], "warning": by["warning"], "ok": by["ok"]}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "stack": self.stack,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "shortfall_gpus": sum(f.shortfall_gpus for f in self.errors),
            "findings": [f.to_json() for f in self.findings],
        }

    def render_text(self) -> str:
        """Plain text, one block per cloud; failures first within a site, alternatives numbered."""
        lines = [f"gpufleet preflight: {self.stack}"]
        if not self.findings:
            lines.append("nothing to check: the plan has no pools on the selected clouds")
        cloud = None
        for f in self.findings:
            if f.cloud != cloud:
                cloud = f.cloud
                lines += ["", clouds.profile(cloud).title if cloud in CLOUDS else cloud]
            pools = ", ".join(f.pools) if f.pools else "-"
            lines.append(f"  {_LABEL[f.severity]:<9}  {f.kind:<11}  {f.site:<14}  {pools}")
            lines.append(f"             {f.message}")
            if f.severity == "error" and (f.shortfall_gpus or f.alternatives):
                short = f"short by {f.shortfall_gpus} GPUs. " if f.shortfall_gpus else ""
                lines.append(f"             {short}Alternatives, best first:" if f.alternatives
                             else f"             {short}No alternative found among the declared sites.")
                for a in f.alternatives:
                    covers = "" if a.covers_gpus is None else f", covers {a.covers_gpus} GPUs"
                    spec = "" if a.in_spec else " [spec change]"
                    lines.append(f"               {a.rank}. {a.kind} -> {a.site} {','.join(a.zones)}, "
                                 f"{a.instance_type}{covers}{spec}: {a.note}")
            lines.append(f"             ({f.check})")
        c = self.counts()
        lines += ["", f"{c['error']} failed, {c['unknown']} not checked, {c['warning']} warnings, {c['ok']} ok: "
                      f"{self.verdict} (exit {self.exit_code})"]
        return "\n".join(lines) + "\n"
