"""Everything gpufleet knows about one cloud, in one place per cloud, and the one registry of clouds.

Each cloud is a package ``gpufleet/clouds/<name>/``:

* ``profile.py``: its :class:`~gpufleet.clouds.base.CloudProfile` (fabrics and NIC layouts, capacity
  types, named checks, image forms, tag rules) plus its resource type tokens and default names.
  No Pulumi, no SDK import;
* ``readers.py``: how the policy pack reads its resources (a
  :class:`~gpufleet.policy.resources.CloudReader` named ``READER``);
* ``preflight.py`` and ``preflight.yaml``: what ``gpufleet preflight`` reads from the provider's API,
  and how its findings word it (imported on first use by :func:`gpufleet.preflight.checker_for`);
* ``mocks.py``: the fake ids and data-source answers of offline runs (imported on first use by
  :func:`gpufleet.offline.cloud_mocks.mocks_for`).

Everything else asks this registry: :func:`profile` for a cloud's profile, :func:`names` for the
clouds gpufleet knows (the spec's ``cloud`` values, the catalog's clouds, the CLI's ``--cloud``
choices), :func:`reader` for the pack's reader. Nothing outside ``gpufleet/clouds/`` and
``components/`` names a cloud.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Literal

from gpufleet.clouds.aws.profile import AwsProfile
from gpufleet.clouds.azure.profile import AzureProfile
from gpufleet.clouds.base import CloudProfile
from gpufleet.clouds.gcp.profile import GcpProfile

if TYPE_CHECKING:
    from gpufleet.policy.resources import CloudReader

CloudName = Literal["aws", "azure", "gcp"]
"""The cloud names, for typed fields (the spec's ``cloud``); a test pins it to :func:`names`."""

_PROFILES: dict[str, CloudProfile] = {p.name: p for p in (AwsProfile(), AzureProfile(), GcpProfile())}


def names() -> tuple[str, ...]:
    """The clouds gpufleet knows, sorted."""
    return tuple(sorted(_PROFILES))


def profile(cloud: str) -> CloudProfile:
    """The profile of a cloud.

    Raises:
        KeyError: gpufleet knows no such cloud (the message lists the ones it knows).
    """
    try:
        return _PROFILES[cloud]
    except KeyError:
        raise KeyError(f"gpufleet knows no cloud {cloud!r}; known: {', '.join(names())}") from None


def profiles() -> tuple[CloudProfile, ...]:
    """Every profile, in :func:`names` order."""
    return tuple(_PROFILES[name] for name in names())


def reader(cloud: str) -> CloudReader:
    """The policy pack's reader of a cloud's resources (``gpufleet.clouds.<cloud>.readers.READER``).

    Imported on first use: readers build on the pack's resource model, which itself asks this
    registry, so the registry must not import them.

    Raises:
        KeyError: gpufleet knows no such cloud.
    """
    found: CloudReader = importlib.import_module(f"{__name__}.{profile(cloud).name}.readers").READER
    return found


def tag_paths() -> tuple[tuple[str, ...], ...]:
    """Where any known cloud's resources carry tags or labels (each path once, in cloud order)."""
    return tuple(dict.fromkeys(path for p in profiles() for path in p.tag_paths))


__all__ = ["CloudName", "CloudProfile", "names", "profile", "profiles", "reader", "tag_paths"]
