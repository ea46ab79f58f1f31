"""``shared-site-limits``: a stack's draw at the sites it shares with other stacks, plus theirs, within
each site's envelope and GPU quotas.

The other stacks' draw comes from the policy config, written per stack by ``gpufleet fleet check
--emit-policy-config DIR`` (one JSON file per stack, passed to ``pulumi preview --policy-pack-config``)::

    {"shared-site-limits": {"sites": {"aws-use1": {
        "power_mw": 12, "quota_gpus": {"H100": 4096},
        "other_stacks": {"prod-eu": {"power_mw": 6.1, "gpus": {"H100": 2048}}}}}}}

Why policy config and not Pulumi stack references: a policy pack cannot create resources, so it
cannot read another stack's outputs itself (a ``StackReference`` is a resource of the *program*),
and reading them would need the state backend and its credentials in every CI job; a fork's pull
request has neither. The config is a plain file CI computes from the stack files of the same
commit, so the check needs no credentials and sees the other stacks as that commit declares them.

This stack's own draw is read from its resources exactly as ``power-within-envelope`` and
``gpu-quota-respected`` read it (nodes at full scale × node power × PUE; GPUs per model at full
scale); the sum is :func:`gpufleet.shared_sites.site_total`, the one ``gpufleet fleet check`` uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpufleet.policy.resources import Inventory
from gpufleet.policy.rules import RuleResult, has_unknown, pools_by_site, requested_gpus, site_draws
from gpufleet.shared_sites import site_total

THIS_STACK = "this stack"


def check_shared_site_limits(inv: Inventory, config: Mapping[str, Any]) -> RuleResult:
    """Per site the config names: this stack's draw and GPUs plus the other stacks' stay within the
    site's envelope and quotas (the config's, which ``fleet check`` took from the stacks)."""
    result = RuleResult()
    sites: Mapping[str, Any] = config.get("sites") or {}
    if not sites:
        return result  # no other stack shares a site: power-within-envelope and gpu-quota-respected judge
    by_site = pools_by_site(inv)
    requested = requested_gpus(inv, result, sites)
    for name, shared in sorted(sites.items()):
        site = inv.sites.get(name)
        if site is None and name not in by_site:
            result.add(f"{name}: the policy config gives other stacks' draw at this site, but the stack has no "
                       f"such site (its sites: {', '.join(sorted(inv.sites)) or 'none'}); rerun `gpufleet fleet "
                       "check --emit-policy-config` on this commit's stacks", "")
            continue
        pools = by_site.get(name, [])
        if has_unknown(pools, result):
            continue
        urn = site.urn if site and site.urn else (pools[0].urn if pools else "")
        if site is not None and site.power_mw is not None and abs(site.power_mw - float(shared["power_mw"])) > 1e-9:
            result.add(f"{name}: the stack declares a {site.power_mw:g} MW envelope, the policy config "
                       f"{float(shared['power_mw']):g} MW; one declaration of a shared site (rerun `gpufleet fleet "
                       "check --emit-policy-config`)", urn)
        own_mw = sum(d.kw for d in site_draws(inv, name, pools, result)) / 1000.0
        own_gpus = {model: gpus for (where, model), (gpus, _) in requested.items() if where == name}
        draws = {stack: (float(other.get("power_mw", 0.0)), other.get("gpus") or {})
                 for stack, other in (shared.get("other_stacks") or {}).items()}
        total = site_total(name, float(shared["power_mw"]), shared.get("quota_gpus") or {},
                           {**draws, THIS_STACK: (own_mw, own_gpus)})
        for problem in total.problems():
            result.add(problem, urn)
    return result


__all__ = ["THIS_STACK", "check_shared_site_limits"]
