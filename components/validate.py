"""Checks that run on the spec and the plan before the program registers a single resource.

Pure (no resources are created): the program calls :func:`validate_plan`, which collects every
issue, generic and cloud-specific, and raises one :class:`~gpufleet.errors.SpecError` listing them
all. ``gpufleet preview`` and tests reach the same checks through the program.

Generic checks (every cloud):

* the pool's cloud has a backend;
* a training cluster sits in exactly one zone (fabric and placement groups end at a zone);
* the instance type's fabric is one the cloud offers;
* a multi-node training cluster has a fabric at all (no silent fallback to TCP);
* the cluster attaches every fabric interface the catalog lists;
* the capacity type (ODCR, Capacity Block, reservation) exists on the cloud;
* image overrides name known pools and have the cloud's format;
* an SSH public key is present where the cloud needs one (Azure), and is not the offline
  placeholder during ``pulumi up``.

Cloud-specific checks come from :meth:`CloudBackend.check_site` / :meth:`CloudBackend.check_pool`
(e.g. an Azure VNet overlapping 172.16.0.0/16, a GCP site without a project).
"""

from __future__ import annotations

from collections.abc import Mapping

from components.base import CloudBackend, backend_for, registered
from gpufleet.catalog import Catalog, load_catalog
from gpufleet.errors import Issue, SpecError
from gpufleet.names import PLACEHOLDER_MARK
from gpufleet.plan import FleetPlan, PoolPlan
from gpufleet.spec import FleetSpec

SSH_KEY_PREFIXES = ("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-nistp256 ", "ecdsa-sha2-nistp384 ",
                    "ecdsa-sha2-nistp521 ", "sk-ssh-ed25519@openssh.com ")


def workload_loc(spec: FleetSpec, workload: str) -> str:
    """Field path of a workload in the spec, e.g. ``fleet.training[0]``."""
    for i, training in enumerate(spec.training):
        if training.name == workload:
            return f"fleet.training[{i}]"
    for i, service in enumerate(spec.inference):
        if service.name == workload:
            return f"fleet.inference[{i}]"
    return f"fleet.{workload}"


def _backend(cloud: str) -> CloudBackend | None:
    try:
        return backend_for(cloud)
    except KeyError:
        return None


def check_plan(
    spec: FleetSpec,
    plan: FleetPlan,
    *,
    ssh_public_key: str | None = None,
    images: Mapping[str, str] | None = None,
    deploying: bool = False,
    catalog: Catalog | None = None,
) -> list[Issue]:
    """Every problem that would make the deployment fail or deliver less than the plan says.

    Args:
        spec: the validated spec.
        plan: its plan.
        ssh_public_key: config ``gpufleet:sshPublicKey``.
        images: config ``gpufleet:images`` (pool or workload name → image).
        deploying: True during ``pulumi up`` (not a preview): the offline placeholder key is refused.
        catalog: the catalog (default: the shipped one).
    """
    catalog = catalog or load_catalog()
    images = dict(images or {})
    issues: list[Issue] = []

    for index, site in enumerate(spec.sites):
        backend = _backend(site.cloud)
        if backend is None:
            issues.append(Issue(f"fleet.sites[{index}].cloud", f"no gpufleet backend for cloud {site.cloud!r}",
                                ", ".join(registered())))
            continue
        site_pools = [p for p in plan.pools if p.site == site.name]
        issues += backend.check_site(site, site_pools, f"fleet.sites[{index}]")

    for pool in plan.pools:
        issues += _check_pool(spec, pool, catalog)

    names = {p.name for p in plan.pools} | {p.workload for p in plan.pools}
    for key in sorted(images):
        loc = f"config.gpufleet:images.{key}"
        targets = [p for p in plan.pools if key in (p.name, p.workload)]
        if key not in names:
            issues.append(Issue(loc, f"no pool or workload named {key!r}", ", ".join(sorted(names)) or "no pools"))
            continue
        for cloud in sorted({p.cloud for p in targets}):
            backend = _backend(cloud)
            if backend is not None:
                issues += backend.check_image(str(images[key]), loc)

    needs_key = sorted({p.cloud for p in plan.pools if (b := _backend(p.cloud)) is not None and b.needs_ssh_key})
    if needs_key:
        loc = "config.gpufleet:sshPublicKey"
        if not ssh_public_key:
            issues.append(Issue(loc, f"is required: {', '.join(needs_key)} node groups accept SSH keys only "
                                "(password login is disabled)",
                                "`pulumi config set gpufleet:sshPublicKey \"$(cat ~/.ssh/id_ed25519.pub)\"`"))
        elif not ssh_public_key.startswith(SSH_KEY_PREFIXES):
            issues.append(Issue(loc, "is not an OpenSSH public key", "a line such as 'ssh-ed25519 AAAA... you@host'"))
        elif deploying and PLACEHOLDER_MARK in ssh_public_key:
            issues.append(Issue(loc, "is the offline placeholder key, which deployments refuse",
                                "your own public key"))
    return issues


def _check_pool(spec: FleetSpec, pool: PoolPlan, catalog: Catalog) -> list[Issue]:
    loc = workload_loc(spec, pool.workload)
    backend = _backend(pool.cloud)
    if backend is None:
        return [Issue(loc, f"pool {pool.name}: no gpufleet backend for cloud {pool.cloud!r}", ", ".join(registered()))]
    issues: list[Issue] = []
    if pool.role == "training" and (len(pool.zones) != 1 or len([z for z, n in pool.nodes_by_zone.items() if n]) > 1):
        spread = sorted(set(pool.zones) | {z for z, n in pool.nodes_by_zone.items() if n})
        issues.append(Issue(f"{loc}.zone",
                            f"training cluster {pool.name} is spread over zones {', '.join(spread) or '(none)'}; its "
                            "fabric and placement group end at a zone boundary",
                            "exactly one zone: pin `zone:` or let the plan choose one"))
    try:
        row = catalog.instance(pool.instance_type)
    except Exception as exc:  # noqa: BLE001 - a CatalogError, reported with the others
        return [*issues, Issue(f"{loc}.instance_types", str(exc))]
    if row.cloud != pool.cloud:
        issues.append(Issue(f"{loc}.instance_types", f"{row.instance_type} is a {row.cloud} instance type, "
                            f"but pool {pool.name} is on {pool.cloud}", f"{pool.cloud} instance types"))
    offered = ", ".join(sorted(backend.fabrics)) or "none"
    if row.fabric != "none" and row.fabric not in backend.fabrics:
        issues.append(Issue(f"{loc}.instance_types",
                            f"{row.instance_type} has fabric {row.fabric!r}, which {pool.cloud} does not offer",
                            f"fabrics on {pool.cloud}: {offered}"))
    if pool.role == "training":
        if pool.nodes > 1 and row.fabric == "none":
            issues.append(Issue(f"{loc}.instance_types",
                                f"{pool.nodes}-node training cluster on {row.instance_type}, which has no GPU fabric "
                                f"on {pool.cloud}: collectives would fall back to TCP",
                                f"an instance type with {offered}"))
        elif row.fabric in backend.fabrics:
            attached = backend.fabric_interfaces(pool, row)
            if attached < row.fabric_interfaces:
                issues.append(Issue(f"{loc}.instance_types",
                                    f"{row.instance_type} lists {row.fabric_interfaces} {row.fabric} interfaces but "
                                    f"the {pool.cloud} cluster would attach {attached}",
                                    "fix the catalog row or the NIC layout"))
        if pool.capacity_type not in backend.capacity_types:
            issues.append(Issue(f"{loc}.capacity.type",
                                f"capacity type {pool.capacity_type!r} does not exist on {pool.cloud}",
                                ", ".join(sorted(backend.capacity_types))))
    issues += backend.check_pool(pool, row, loc)
    return issues


def validate_plan(
    spec: FleetSpec,
    plan: FleetPlan,
    *,
    ssh_public_key: str | None = None,
    images: Mapping[str, str] | None = None,
    deploying: bool = False,
    source: str = "",
) -> None:
    """Raise one :class:`SpecError` listing every issue :func:`check_plan` finds."""
    issues = check_plan(spec, plan, ssh_public_key=ssh_public_key, images=images, deploying=deploying)
    if issues:
        raise SpecError(issues, source=source)
