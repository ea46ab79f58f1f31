"""The gpufleet Pulumi program: stack config → spec → plan → components → stack outputs.

Config (``stacks/Pulumi.<stack>.yaml``):

* ``gpufleet:fleet``: the fleet object: sites, training runs, inference services; and/or
* ``gpufleet:fleetFiles``: paths or globs, relative to the project directory, of files holding it
  (read here, by the program, so the config stays small; see :mod:`gpufleet.stackfile`).
* ``gpufleet:sshPublicKey``: OpenSSH public key for Azure scale sets (required when the plan puts a
  pool on Azure; set it with ``pulumi config set gpufleet:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"``).
* ``gpufleet:images``: optional image overrides, pool or workload name → image (AMI id or SSM
  parameter; ``publisher:offer:sku:version`` or image id; ``<project>/<family>`` or self link).

Everything is checked before the first resource is registered: spec errors, an infeasible plan,
and what the clouds would reject (:mod:`gpufleet.checks` running each cloud's profile: an Azure
VNet overlapping 172.16.0.0/16, a fabric the cloud does not offer, a training cluster spread over
two zones, ...) together with this config. One ``SpecError`` lists every issue.

Cloud differences live behind ``gpufleet.clouds.profile`` and ``components.backend_for``; this file
never names a cloud.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

import gpufleet.plan
from components import (
    InferencePool,
    InferencePoolArgs,
    SiteNetwork,
    SiteNetworkArgs,
    TrainingCluster,
    TrainingClusterArgs,
    backend_for,
    demand_for,
    plan_summary,
    serving_for,
)
from gpufleet import clouds
from gpufleet.checks import validate_plan
from gpufleet.heap import collect_less_often
from gpufleet.names import PLACEHOLDER_MARK, STACK_DIR_CONFIG
from gpufleet.project import find_project
from gpufleet.stackfile import fleet_from_config


def main() -> None:
    config = pulumi.Config("gpufleet")
    stack = pulumi.get_stack()
    source = f"stack {stack}"

    # 1. Validate everything; no resource exists yet. The plan handed here is checked with this
    #    config, so one error lists the cloud issues and the config issues together.
    # A service's history CSV is read relative to the stack file's directory: the project's
    # stackConfigDir under `pulumi`; the stack file's own under gpufleet's offline runs.
    stacks_dir = config.get(STACK_DIR_CONFIG.partition(":")[2]) or find_project(Path(__file__).parent).stack_config_dir
    spec = fleet_from_config(config.get_object("fleet"), config.get_object("fleetFiles"), source=source,
                             base_dir=stacks_dir)
    plan = gpufleet.plan.build_plan(spec, stack, check=False)
    ssh_public_key = config.get("sshPublicKey")
    images: dict[str, str] = dict(config.get_object("images") or {})
    validate_plan(spec, plan, ssh_public_key=ssh_public_key, images=images,
                  deploying=not pulumi.runtime.is_dry_run(), source=source)

    # 2. One provider and one network per site that hosts pools.
    networks: dict[str, SiteNetwork] = {}
    for site in sorted(spec.sites, key=lambda s: s.name):
        pools = tuple(p for p in plan.pools if p.site == site.name)
        if not pools:
            continue
        provider = backend_for(site.cloud).provider(site)
        networks[site.name] = SiteNetwork(site.name, SiteNetworkArgs(site=site, pools=pools),
                                          opts=pulumi.ResourceOptions(providers=[provider]))

    # 3. One component per pool.
    for pool in sorted(plan.pools, key=lambda p: p.name):
        common: dict[str, Any] = dict(
            pool=pool,
            network=networks[pool.site],
            demand=demand_for(spec, pool),
            image=images.get(pool.name) or images.get(pool.workload),
            ssh_public_key=ssh_public_key,
        )
        if pool.role == "training":
            TrainingCluster(pool.name, TrainingClusterArgs(**common))
        else:
            InferencePool(pool.name, InferencePoolArgs(**common, serving=serving_for(spec, pool)))

    # 4. The plan, as stack outputs.
    summary = plan_summary(plan)
    for key, value in summary.items():
        pulumi.export(key, value)
    if ssh_public_key and PLACEHOLDER_MARK in ssh_public_key and any(
            clouds.profile(p.cloud).needs_ssh_key for p in plan.pools):
        pulumi.export("notes", ["gpufleet:sshPublicKey is the offline placeholder key; set your own before `pulumi up`"])


# Every resource's outputs stay alive to the end of the run; see gpufleet.heap for why the young
# generation is collected less often here.
collect_less_often()
main()
