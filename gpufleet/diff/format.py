"""Number and text formatting shared by the diff renderers, and the one-line verdict.

Pure. Signs are ASCII (``+`` / ``-``) so that the verdict line can be searched and compared in CI
logs; money is USD at list price.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpufleet.diff.model import FleetDiff

_MESSAGE_CHARS = 200


def usd(value: float, signed: bool = False) -> str:
    """``$1.2M``, ``$85k``, ``$8.5k``, ``$850`` (``+$1.2M`` when signed)."""
    sign = _sign(value) if signed else ("-" if value < -0.5 else "")
    a = abs(value)
    if a >= 99.95e6:
        text = f"${a / 1e6:,.0f}M"
    elif a >= 0.9995e6:
        text = f"${a / 1e6:.1f}M"
    elif a >= 9.995e3:
        text = f"${a / 1e3:,.0f}k"
    elif a >= 999.5:
        text = f"${a / 1e3:.1f}k"
    else:
        text = f"${a:,.0f}"
    return sign + text if text not in {"$0"} else "$0"


def mw(value: float, signed: bool = False, scale: float | None = None) -> str:
    """Megawatts: 2 decimals under 10 MW (a rack is ~0.01 MW), 3 under 0.1 MW, fewer above 10.

    ``scale`` picks the digits from another magnitude, so base, head and change line up.
    """
    a = abs(value)
    s = abs(scale) if scale is not None else a
    digits = 0 if s >= 100 else 1 if s >= 10 else 2 if s >= 0.1 else 3
    text = f"{a:,.{digits}f}"
    if float(text.replace(",", "")) == 0.0:
        return "0"
    sign = _sign(value) if signed else ("-" if value < 0 else "")
    return sign + text


def count(value: float, signed: bool = False) -> str:
    if math.isinf(value):
        return "all" if value > 0 else "-all"
    n = round(value)
    if signed:
        return f"{n:+,}" if n else "0"
    return f"{n:,}"


def rate(tokens_per_s: float) -> str:
    """Tokens per second, short: ``950``, ``12.1k``, ``3.4M``."""
    a = abs(tokens_per_s)
    if a >= 0.9995e6:
        return f"{tokens_per_s / 1e6:.1f}M"
    if a >= 9.995e3:
        return f"{tokens_per_s / 1e3:,.0f}k" if a >= 99.95e3 else f"{tokens_per_s / 1e3:.1f}k"
    if a >= 999.5:
        return f"{tokens_per_s / 1e3:.2f}k"
    return f"{tokens_per_s:,.0f}"


def pct(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 99.5:
        return f"{value:+,.0f}%"
    return f"{value:+.0f}%" if abs(value) >= 9.95 else f"{value:+.1f}%"


def days(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def gpus_by_model(counts: dict[str, int]) -> str:
    return " · ".join(f"{n:,} {m}" for m, n in counts.items() if n) or "0"


def _sign(value: float) -> str:
    return "+" if value > 0 else "-" if value < 0 else ""


def cell(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no HTML, at most ``limit`` chars."""
    one_line = " ".join(str(text).split())
    if len(one_line) > limit:
        one_line = one_line[: limit - 1].rstrip() + "…"
    return (one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("`", "'"))


def resource(urn: str, name: str = "") -> str:
    """A resource as a reviewer reads it: ``name (type)`` from a Pulumi URN, ``stack`` when empty.

    ``urn:pulumi:prod::gpufleet::pulumi:pulumi:Stack$gpufleet:index:InferencePool::chat-8b-gcp-usc1``
    becomes ``chat-8b-gcp-usc1 (gpufleet:index:InferencePool)``; anything else is shown as it is.
    ``name`` (the logical name the preview reports) wins over the URN's.
    """
    if not urn:
        return name or "stack"
    if urn.startswith("urn:pulumi:"):
        parts = urn.split("::")
        if len(parts) >= 4:
            kind = parts[2].rsplit("$", 1)[-1]
            return f"{name or '::'.join(parts[3:])} ({kind})"
    return name or urn


def code(text: str) -> str:
    """Inline code for names and paths (backticks inside are replaced so the span cannot break)."""
    return "`" + " ".join(str(text).split()).replace("`", "'").replace("|", "\\|") + "`"


# --- the verdict ----------------------------------------------------------------------------------


def change_summary(diff: FleetDiff) -> str:
    """``+512 H100, +0.9 MW, +$1.2M/month`` (what changed in the fleet, largest facts first)."""
    parts = [f"{d.change:+,.0f} {model}" for model, d in diff.gpus_by_model.items() if d.change]
    power = mw(diff.power_mw.change, signed=True)
    if power != "0":
        parts.append(f"{power} MW")
    cost = usd(diff.usd_per_month.change, signed=True)
    if cost != "$0":
        parts.append(f"{cost}/month")
    if diff.moves:
        parts.append(f"{len(diff.moves)} placement move{'s' if len(diff.moves) != 1 else ''}")
    if not parts:
        changed = len(diff.changed_workloads)
        if changed:
            return f"no capacity change ({changed} workload{'s' if changed != 1 else ''} with new figures)"
        return "no capacity change"
    return ", ".join(parts)


def verdict_line(diff: FleetDiff) -> str:
    """One line: ``🚫 Blocked: 2 new mandatory violations · …`` or ``✅ Passes: +512 H100, …``."""
    head, base = diff.head, diff.base
    changes = change_summary(diff)
    if head.status == "absent":
        changes = f"stack removed, {changes}"
    elif base.status == "absent":
        changes = f"new stack, {changes}"
    elif base.status == "infeasible":
        changes = (f"base had no feasible placement; head has {gpus_by_model(head.gpus_by_model)}, "
                   f"{mw(head.power_mw)} MW, {usd(head.usd_per_month)}/month")
    if head.status == "infeasible":
        reason = cell((head.error or "").splitlines()[0] if head.error else "", 160)
        return f"🚫 Blocked: no placement satisfies head{f' ({reason})' if reason else ''}"
    if diff.blocked:
        new = len(diff.new_mandatory)
        total = len(head.mandatory)
        if new:
            why = f"{new} new mandatory violation{'s' if new != 1 else ''}"
            if total > new:
                why += f" ({total - new} already on base)"
        elif total:
            why = f"{total} mandatory violation{'s' if total != 1 else ''} (already on base)"
        else:
            why = "the policy pack blocks head"
        return f"🚫 Blocked: {why} · {changes}"
    line = f"✅ Passes: {changes}"
    advisory = head.advisory
    if advisory:
        new_adv = sum(1 for m in diff.violations if m.new and m.violation.enforcement == "advisory")
        line += f" · {len(advisory)} advisory warning{'s' if len(advisory) != 1 else ''}"
        if new_adv:
            line += f" ({new_adv} new)"
    if head.violations is None:
        line += " · policies not evaluated"
    return line
