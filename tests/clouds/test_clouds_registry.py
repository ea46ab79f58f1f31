"""The one registry of clouds: every consumer asks it, and each cloud's parts agree on its name."""

from __future__ import annotations

import typing

import pytest

from gpufleet import clouds
from gpufleet.catalog import CLOUDS
from gpufleet.clouds.base import CloudProfile
from gpufleet.policy.resources import CloudReader


def test_the_registry_names_every_cloud_once_and_the_catalog_and_spec_use_it() -> None:
    assert clouds.names() == ("aws", "azure", "gcp")
    assert CLOUDS == clouds.names()
    assert typing.get_args(clouds.CloudName) == clouds.names()
    assert [p.name for p in clouds.profiles()] == list(clouds.names())


def test_an_unknown_cloud_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="gpufleet knows no cloud 'oci'; known: aws, azure, gcp"):
        clouds.profile("oci")
    with pytest.raises(KeyError, match="known: aws, azure, gcp"):
        clouds.reader("oci")


@pytest.mark.parametrize("name", ["aws", "azure", "gcp"])
def test_each_cloud_has_a_profile_and_a_pack_reader_under_its_name(name: str) -> None:
    profile = clouds.profile(name)
    reader = clouds.reader(name)
    assert isinstance(profile, CloudProfile) and profile.name == name
    assert isinstance(reader, CloudReader) and reader.cloud == name and reader.group_types


@pytest.mark.parametrize("name", ["aws", "azure", "gcp"])
def test_each_refused_combination_is_a_named_documented_check(name: str) -> None:
    profile = clouds.profile(name)
    checks = [*profile.site_checks, *profile.pool_checks]
    assert checks, f"{name} refuses nothing"
    for check in checks:
        assert check.__name__.startswith(("check_site_", "check_pool_")), check.__name__
        assert check.__doc__ and check.__doc__.strip(), f"{check.__name__} has no docstring"
