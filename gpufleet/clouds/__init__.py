"""Everything gpufleet knows about one cloud, in one place per cloud, and the one registry of clouds.

Each cloud is a package ``gpufleet/clouds/<name>/``:

* ``profile.py``: its :class:`~gpufleet.clouds.base.CloudProfile` (fabrics and NIC layouts, capacity
  types, named checks, image forms, tag rules) plus its resource type tokens and default names.
  No Pulumi, no SDK import.

Everything else asks this registry: :func:`profile` for a cloud's profile, :func:`names` for the
clouds gpufleet knows (the spec's ``cloud`` values, the catalog's clouds, the CLI's ``--cloud``
choices).
"""

from __future__ import annotations

from typing import Literal

from gpufleet.clouds.aws.profile import AwsProfile
from gpufleet.clouds.azure.profile import AzureProfile
from gpufleet.clouds.base import CloudProfile
from gpufleet.clouds.gcp.profile import GcpProfile

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


def tag_paths() -> tuple[tuple[str, ...], ...]:
    """Where any known cloud's resources carry tags or labels (each path once, in cloud order)."""
    return tuple(dict.fromkeys(path for p in profiles() for path in p.tag_paths))


__all__ = ["CloudName", "CloudProfile", "names", "profile", "profiles", "tag_paths"]
