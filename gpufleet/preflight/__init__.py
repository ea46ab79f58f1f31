"""``gpufleet preflight``: check a plan against what the providers actually offer the account.

A plan can be perfectly sized and still undeployable: the instance type is not offered in the
chosen zone, the account's GPU quota is a fraction of the request, the reservation it counts on
does not exist. :func:`run_preflight` asks each cloud's API (through the :class:`CloudChecker`
registered for it) and returns a :class:`PreflightReport` of typed findings, each shortfall with
ranked alternatives.

Where things are: the findings and the seam in :mod:`~gpufleet.preflight.base`; what a cloud reads
(plain facts, SDK errors mapped once) in :mod:`~gpufleet.preflight.reads`; the judging, the same for
every cloud, in :mod:`~gpufleet.preflight.judge`; each cloud's reads in
``gpufleet.clouds.<cloud>.preflight`` and its words in ``gpufleet/clouds/<cloud>/preflight.yaml``.

Importing this package imports no cloud SDK: a cloud's reads are imported when its pools are
checked, and import their SDK when they run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from gpufleet.catalog import CLOUDS
from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.preflight.base import (
    CHECKERS,
    Alternative,
    CloudChecker,
    Finding,
    PreflightOptions,
    api_error,
    checker_for,
    not_checked,
    quiet_sdk_logs,
    rank_alternatives,
    register,
)
from gpufleet.preflight.report import PreflightReport
from gpufleet.spec import FleetSpec, SiteSpec


def run_preflight(
    plan: FleetPlan | Sequence[PoolPlan],
    spec: FleetSpec,
    *,
    stack: str = "",
    clouds: Sequence[str] | None = None,
    options: PreflightOptions | None = None,
    checkers: Mapping[str, CloudChecker] | None = None,
) -> PreflightReport:
    """Check every pool of ``plan`` on ``clouds`` (default: all) and collect the findings.

    Args:
        plan: the plan (or just its pools) to check.
        spec: the spec it was built from: sites, and which sites each workload may use.
        clouds: restrict the run to these clouds.
        options: endpoints, retries and timeouts for the checkers.
        checkers: ready-made checkers by cloud (tests inject fakes); others come from :func:`checker_for`.

    A cloud whose checker fails unexpectedly is reported as an ``api_error`` and the run continues
    with the other clouds. Checks still running when ``options.deadline_s`` has passed (counted from
    the start of the run) are reported ``not_checked``, and the run returns: the stuck call is left
    in a daemon thread that dies with the process.
    """
    pools = list(plan.pools if isinstance(plan, FleetPlan) else plan)
    stack = stack or (plan.stack if isinstance(plan, FleetPlan) else "")
    options = options or PreflightOptions()
    selected = tuple(c for c in CLOUDS if clouds is None or c in clouds)
    allowed = {w.name: set(w.sites or [s.name for s in spec.sites]) for w in spec.workloads}
    findings: list[Finding] = []
    ends_at = time.monotonic() + options.deadline_s
    for cloud in selected:
        cloud_pools = [p for p in pools if p.cloud == cloud]
        if not cloud_pools:
            continue
        sites = [s for s in spec.sites if s.cloud == cloud]
        found = _check_cloud(cloud, cloud_pools, sites, options, (checkers or {}).get(cloud), ends_at)
        findings += [_within_spec(f, pools, allowed) for f in found]
    return PreflightReport.of(stack, findings, selected)


def _check_cloud(cloud: str, pools: Sequence[PoolPlan], sites: Sequence[SiteSpec], options: PreflightOptions,
                 checker: CloudChecker | None, ends_at: float) -> list[Finding]:
    """One cloud's findings, in a worker thread bounded by the run's deadline."""
    result: list[Finding] = []
    state: dict[str, CloudChecker] = {}

    def work() -> None:
        try:
            state["checker"] = checker or checker_for(cloud)(options)
            with quiet_sdk_logs(state["checker"].sdk_loggers):
                result.extend(state["checker"].check(pools, sites))
        except Exception as exc:  # a checker bug must not hide the other clouds' results
            result[:] = [api_error(cloud, p.site, [p], f"{cloud} checker", exc, f"the {cloud} pools")
                         for p in pools]

    worker = threading.Thread(target=work, name=f"preflight-{cloud}", daemon=True)
    worker.start()
    worker.join(max(0.0, ends_at - time.monotonic()))
    if not worker.is_alive():
        return result
    reason = (f"the preflight deadline of {options.deadline_s:g} s passed before this check answered "
              "(raise it with --deadline-s)")
    running = state.get("checker")
    if running is None:
        return not_checked(cloud, sites, pools, f"{cloud} checker", reason)
    cut: list[Finding] = list(running.done)
    for check, names in list(running.pending):
        cut += not_checked(cloud, [s for s in sites if s.name in names], pools, check, reason)
    return cut


def _within_spec(finding: Finding, pools: Sequence[PoolPlan], allowed: dict[str, set[str]]) -> Finding:
    """Mark site alternatives the finding's workloads may not use as spec changes, and re-rank."""
    if not finding.alternatives:
        return finding
    workloads = {p.workload for p in pools if p.name in finding.pools}
    may_use = set().union(*(allowed.get(w, set()) for w in workloads)) if workloads else set()
    changed = []
    for a in finding.alternatives:
        if a.kind == "site" and a.in_spec and may_use and a.site not in may_use:
            names = ", ".join(sorted(workloads))
            a = Alternative(a.kind, a.site, a.region, a.zones, a.instance_type, a.covers_gpus, False,
                            f"{a.note}; add {a.site} to the sites of {names}")
        changed.append(a)
    return Finding(finding.cloud, finding.kind, finding.severity, finding.site, finding.pools, finding.check,
                   finding.message, finding.shortfall_gpus, rank_alternatives(changed, finding.shortfall_gpus),
                   finding.details)


__all__ = [
    "CHECKERS",
    "Alternative",
    "CloudChecker",
    "Finding",
    "PreflightOptions",
    "PreflightReport",
    "checker_for",
    "register",
    "run_preflight",
]
