"""The checks a plan passes before anything is built: what the clouds would refuse, found first.

Pure (no Pulumi, no I/O). :func:`gpufleet.plan.build_plan` runs :func:`check_clouds` on every plan
it returns, and the Pulumi program runs :func:`check_plan` (the same checks and its config's), so
``gpufleet plan``, ``gpufleet preflight``, ``gpufleet preview`` and ``pulumi up`` refuse the same
things with the same :class:`~gpufleet.errors.SpecError` (exit 2), listing every issue at once.

Checks of every cloud (each one a function here):

* :func:`check_training_in_one_zone`: fabric and placement groups end at a zone;
* :func:`check_instance_type_on_cloud`: the pool's instance type belongs to its cloud;
* :func:`check_fabric_offered`: the instance type's fabric is one the cloud can switch on;
* :func:`check_training_fabric`: a multi-node training cluster has a fabric at all (no silent
  fallback to TCP) and attaches every fabric interface the catalog lists;
* :func:`check_capacity_type`: the capacity type (ODCR, Capacity Block, reservation) exists there;

then each cloud's own named checks (:attr:`~gpufleet.clouds.base.CloudProfile.site_checks`,
:attr:`~gpufleet.clouds.base.CloudProfile.pool_checks`, e.g. an Azure VNet overlapping
172.16.0.0/16, a GCP site without a project).

Checks of the program's config (:class:`ProgramSettings`, :func:`check_settings`) run where it is
known, the program and ``gpufleet plan`` on a stack file: :func:`check_images` (overrides name known pools and have the
cloud's form) and :func:`check_ssh_key` (present where a cloud needs one, an OpenSSH key, and not
the offline placeholder during ``pulumi up``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpufleet import clouds
from gpufleet.catalog import Catalog, InstanceType, load_catalog
from gpufleet.clouds.base import CloudProfile
from gpufleet.errors import Issue, SpecError
from gpufleet.names import IMAGES_CONFIG, PLACEHOLDER_MARK, PLACEHOLDER_SSH_PUBLIC_KEY, SSH_KEY_CONFIG
from gpufleet.platforms import check_pool_platform

if TYPE_CHECKING:
    from gpufleet.plan import FleetPlan, PoolPlan
    from gpufleet.spec import FleetSpec

SSH_KEY_PREFIXES = ("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-nistp256 ", "ecdsa-sha2-nistp384 ",
                    "ecdsa-sha2-nistp521 ", "sk-ssh-ed25519@openssh.com ")


@dataclass(frozen=True)
class ProgramSettings:
    """The program's config besides the fleet, as far as the checks read it.

    Attributes:
        ssh_public_key: ``gpufleet:sshPublicKey`` (None: not set).
        images: ``gpufleet:images``, pool or workload name → image.
        deploying: True during ``pulumi up`` (not a preview): the offline placeholder key is refused.
    """

    ssh_public_key: str | None = None
    images: Mapping[str, str] = field(default_factory=dict)
    deploying: bool = False


def preview_settings(config: Mapping[str, Any]) -> ProgramSettings:
    """The settings an offline preview of a stack file runs with (its ``config:`` mapping).

    As :func:`gpufleet.offline.run_program` does, a stack that sets no SSH key gets the offline
    placeholder, which a preview accepts.

    Raises:
        SpecError: ``gpufleet:images`` is not a mapping of names to image strings.
    """
    images = config.get(IMAGES_CONFIG) or {}
    if not isinstance(images, Mapping) or not all(isinstance(v, str) for v in images.values()):
        raise SpecError(Issue(f"config.{IMAGES_CONFIG}", "must map pool or workload names to images",
                              "{<pool or workload>: <image>}"))
    key = config.get(SSH_KEY_CONFIG, PLACEHOLDER_SSH_PUBLIC_KEY)
    return ProgramSettings(ssh_public_key=None if key is None else str(key),
                           images={str(k): v for k, v in images.items()})


def workload_loc(spec: FleetSpec, workload: str) -> str:
    """Field path of a workload in the spec, e.g. ``fleet.training[0]``."""
    for i, training in enumerate(spec.training):
        if training.name == workload:
            return f"fleet.training[{i}]"
    for i, service in enumerate(spec.inference):
        if service.name == workload:
            return f"fleet.inference[{i}]"
    return f"fleet.{workload}"


def _profile(cloud: str) -> CloudProfile | None:
    try:
        return clouds.profile(cloud)
    except KeyError:
        return None


def _unknown_cloud(loc: str, cloud: str, what: str = "") -> Issue:
    return Issue(loc, f"{what}gpufleet knows no cloud {cloud!r}", ", ".join(clouds.names()))


def check_clouds(spec: FleetSpec, plan: FleetPlan, *, catalog: Catalog | None = None) -> list[Issue]:
    """Every problem the plan's clouds would refuse, or that would deliver less than the plan says.

    Needs nothing but the spec and the plan: :func:`gpufleet.plan.build_plan` runs it on every plan.
    """
    catalog = catalog or load_catalog()
    issues: list[Issue] = []
    for index, site in enumerate(spec.sites):
        loc = f"fleet.sites[{index}]"
        profile = _profile(site.cloud)
        if profile is None:
            issues.append(_unknown_cloud(f"{loc}.cloud", site.cloud))
            continue
        issues += profile.check_site(site, [p for p in plan.pools if p.site == site.name], loc)
    for pool in plan.pools:
        issues += _check_pool(pool, workload_loc(spec, pool.workload), catalog)
    return issues


def check_settings(plan: FleetPlan, settings: ProgramSettings) -> list[Issue]:
    """Every problem with the program's config for this plan (image overrides, then the SSH key)."""
    return check_images(plan, settings.images) + check_ssh_key(plan, settings)


def check_plan(spec: FleetSpec, plan: FleetPlan, *, ssh_public_key: str | None = None,
               images: Mapping[str, str] | None = None, deploying: bool = False,
               catalog: Catalog | None = None) -> list[Issue]:
    """Every issue with a plan and the program's config, as the Pulumi program checks them.

    Args:
        spec: the validated spec.
        plan: its plan.
        ssh_public_key: config ``gpufleet:sshPublicKey``.
        images: config ``gpufleet:images`` (pool or workload name → image).
        deploying: True during ``pulumi up`` (not a preview): the offline placeholder key is refused.
        catalog: the catalog (default: the shipped one).
    """
    settings = ProgramSettings(ssh_public_key=ssh_public_key, images=dict(images or {}), deploying=deploying)
    return check_clouds(spec, plan, catalog=catalog) + check_settings(plan, settings)


def validate_plan(spec: FleetSpec, plan: FleetPlan, *, ssh_public_key: str | None = None,
                  images: Mapping[str, str] | None = None, deploying: bool = False,
                  catalog: Catalog | None = None, source: str = "") -> None:
    """Raise one :class:`SpecError` listing every issue :func:`check_plan` finds."""
    issues = check_plan(spec, plan, ssh_public_key=ssh_public_key, images=images, deploying=deploying,
                        catalog=catalog)
    if issues:
        raise SpecError(issues, source=source)


# --- pools ------------------------------------------------------------------------------------------


def _check_pool(pool: PoolPlan, loc: str, catalog: Catalog) -> list[Issue]:
    profile = _profile(pool.cloud)
    if profile is None:
        return [_unknown_cloud(loc, pool.cloud, f"pool {pool.name}: ")]
    issues = check_training_in_one_zone(pool, loc)
    try:
        row = catalog.instance(pool.instance_type)
    except Exception as exc:  # noqa: BLE001 - a CatalogError, reported with the others
        return [*issues, Issue(f"{loc}.instance_types", str(exc))]
    issues += check_instance_type_on_cloud(pool, row, loc)
    issues += check_fabric_offered(pool, row, profile, loc)
    issues += check_training_fabric(pool, row, profile, loc)
    issues += check_capacity_type(pool, profile, loc)
    issues += check_spot_platform(pool, loc)
    issues += profile.check_pool(pool, row, loc)
    issues += check_pool_platform(pool, loc)
    return issues


def check_training_in_one_zone(pool: PoolPlan, loc: str) -> list[Issue]:
    """A training cluster sits in exactly one zone: its fabric and placement group end at a zone."""
    used = {z for z, n in pool.nodes_by_zone.items() if n}
    if pool.role != "training" or (len(pool.zones) == 1 and len(used) <= 1):
        return []
    spread = sorted(set(pool.zones) | used)
    return [Issue(f"{loc}.zone",
                  f"training cluster {pool.name} is spread over zones {', '.join(spread) or '(none)'}; its "
                  "fabric and placement group end at a zone boundary",
                  "exactly one zone: pin `zone:` or let the plan choose one")]


def check_instance_type_on_cloud(pool: PoolPlan, row: InstanceType, loc: str) -> list[Issue]:
    """The pool's instance type is one of its cloud's."""
    if row.cloud == pool.cloud:
        return []
    return [Issue(f"{loc}.instance_types", f"{row.instance_type} is a {row.cloud} instance type, "
                  f"but pool {pool.name} is on {pool.cloud}", f"{pool.cloud} instance types")]


def _offered(profile: CloudProfile, row: InstanceType | None = None) -> str:
    """The cloud's fabrics, as a hint; for a GPU row, without a TPU slice's ICI (no GPU type has it)."""
    fabrics = profile.fabrics if row is None or row.fabric == "ici" else profile.fabrics - {"ici"}
    return ", ".join(sorted(fabrics)) or "none"


def check_fabric_offered(pool: PoolPlan, row: InstanceType, profile: CloudProfile, loc: str) -> list[Issue]:
    """The instance type's fabric is one the cloud can switch on."""
    if row.fabric == "none" or row.fabric in profile.fabrics:
        return []
    return [Issue(f"{loc}.instance_types",
                  f"{row.instance_type} has fabric {row.fabric!r}, which {pool.cloud} does not offer",
                  f"fabrics on {pool.cloud}: {_offered(profile)}")]


def check_training_fabric(pool: PoolPlan, row: InstanceType, profile: CloudProfile, loc: str) -> list[Issue]:
    """A multi-node training cluster has a fabric, and attaches every fabric interface its row lists."""
    if pool.role != "training":
        return []
    if pool.nodes > 1 and row.fabric == "none":
        return [Issue(f"{loc}.instance_types",
                      f"{pool.nodes}-node training cluster on {row.instance_type}, which has no GPU fabric "
                      f"on {pool.cloud}: collectives would fall back to TCP",
                      f"an instance type with {_offered(profile, row)}")]
    if row.fabric not in profile.fabrics:
        return []
    attached = profile.fabric_interfaces(row)
    if attached >= row.fabric_interfaces:
        return []
    return [Issue(f"{loc}.instance_types",
                  f"{row.instance_type} lists {row.fabric_interfaces} {row.fabric} interfaces but "
                  f"the {pool.cloud} cluster would attach {attached}", "fix the catalog row or the NIC layout")]


def check_capacity_type(pool: PoolPlan, profile: CloudProfile, loc: str) -> list[Issue]:
    """A training cluster's capacity type (ODCR, Capacity Block, reservation) exists on its cloud."""
    if pool.role != "training" or pool.capacity_type in profile.capacity_types:
        return []
    return [Issue(f"{loc}.capacity.type", f"capacity type {pool.capacity_type!r} does not exist on {pool.cloud}",
                  ", ".join(sorted(profile.capacity_types)))]


def check_spot_platform(pool: PoolPlan, loc: str) -> list[Issue]:
    """Spot is built as VM groups (an ASG's mixed instances policy, a Spot scale set, a SPOT MIG); a
    Kubernetes node pool would run the whole pool on-demand while the plan priced part of it as spot."""
    if not pool.spot_nodes or pool.platform == "vm":
        return []
    return [Issue(f"{loc}.spot", f"pool {pool.name} plans {pool.spot_nodes} spot nodes on the Kubernetes platform of "
                  f"site {pool.site}, where gpufleet builds no spot node pools yet",
                  "leave spot out for services on Kubernetes sites, or run the service on a site with platform vm")]


# --- the program's config ---------------------------------------------------------------------------


def check_images(plan: FleetPlan, images: Mapping[str, str]) -> list[Issue]:
    """Every image override names a pool or workload, and has the form its pools' clouds accept."""
    issues: list[Issue] = []
    names = {p.name for p in plan.pools} | {p.workload for p in plan.pools}
    for key in sorted(images):
        loc = f"config.{IMAGES_CONFIG}.{key}"
        if key not in names:
            issues.append(Issue(loc, f"no pool or workload named {key!r}", ", ".join(sorted(names)) or "no pools"))
            continue
        if all(p.platform == "kubernetes" for p in plan.pools if key in (p.name, p.workload)):
            issues.append(Issue(loc, f"{key} runs on Kubernetes, whose node pools take the managed service's GPU "
                                     "image, so an image override is not used",
                                "remove the override, or run the pool on platform.kind: vm"))
            continue
        for cloud in sorted({p.cloud for p in plan.pools if key in (p.name, p.workload)}):
            profile = _profile(cloud)
            if profile is not None:
                issues += profile.check_image(str(images[key]), loc)
    return issues


def check_ssh_key(plan: FleetPlan, settings: ProgramSettings) -> list[Issue]:
    """Where a pool's cloud needs an SSH key, one is set, is an OpenSSH public key, and is not the
    offline placeholder during ``pulumi up``."""
    needs_key = sorted({p.cloud for p in plan.pools if (prof := _profile(p.cloud)) is not None and prof.needs_ssh_key})
    key = settings.ssh_public_key
    loc = f"config.{SSH_KEY_CONFIG}"
    if not needs_key:
        return []
    if not key:
        return [Issue(loc, f"is required: {', '.join(needs_key)} node groups accept SSH keys only "
                      "(password login is disabled)",
                      f"`pulumi config set {SSH_KEY_CONFIG} \"$(cat ~/.ssh/id_ed25519.pub)\"`")]
    if not key.startswith(SSH_KEY_PREFIXES):
        return [Issue(loc, "is not an OpenSSH public key", "a line such as 'ssh-ed25519 AAAA... you@host'")]
    if settings.deploying and PLACEHOLDER_MARK in key:
        return [Issue(loc, "is the offline placeholder key, which deployments refuse", "your own public key")]
    return []


__all__ = [
    "SSH_KEY_PREFIXES",
    "ProgramSettings",
    "check_capacity_type",
    "check_clouds",
    "check_fabric_offered",
    "check_images",
    "check_instance_type_on_cloud",
    "check_plan",
    "check_settings",
    "check_ssh_key",
    "check_training_fabric",
    "check_training_in_one_zone",
    "preview_settings",
    "validate_plan",
    "workload_loc",
]
