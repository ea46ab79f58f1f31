"""Cloud facts that the profiles hold and that every consumer reads: islands, images, tags."""

from __future__ import annotations

import pytest

from gpufleet import clouds
from gpufleet.clouds.azure.profile import default_resource_group, resource_group
from tests.clouds.builders import make_site


def test_only_azure_splits_a_training_cluster_into_fabric_islands() -> None:
    assert clouds.profile("azure").islands(250, 100) == (84, 83, 83)
    assert clouds.profile("azure").islands(64, 100) == (64,)
    for name in ("aws", "gcp"):
        assert clouds.profile(name).islands(250, 100) == (250,)


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("aws", ["ami-0123456789abcdef0", "/aws/service/deeplearning/ami/x86_64/x/latest/ami-id"], ["ubuntu"]),
    ("azure", ["microsoft-dsvm:ubuntu-hpc:2204:latest", "/subscriptions/s/images/i"], ["ubuntu-hpc:2204"]),
    ("gcp", ["ubuntu-os-accelerator-images/ubuntu-accelerator-2204-amd64-with-nvidia-570",
             "projects/p/global/images/i"], ["ubuntu"]),
])
def test_image_overrides_are_judged_by_the_clouds_forms(name: str, good: list[str], bad: list[str]) -> None:
    profile = clouds.profile(name)
    for image in good:
        assert profile.check_image(image, "loc") == []
    for image in bad:
        (issue,) = profile.check_image(image, "loc")
        assert issue.message == f"{profile.title} image {image!r} is neither {profile.image_forms}"
        assert issue.hint == profile.image_examples


def test_tags_and_where_the_pack_finds_them() -> None:
    tags = {"gpufleet-pool": "p", "gpufleet-gpu": "h100"}
    assert clouds.profile("aws").resource_tags(tags, "p-lt") == {"Name": "p-lt", **tags}
    assert clouds.profile("gcp").resource_tags(tags, "p-template") == dict(sorted(tags.items()))
    assert clouds.tag_paths() == (("tags",), ("labels",), ("allInstancesConfig", "labels"),
                                  ("nodeConfig", "resourceLabels"))


def test_azure_sites_get_a_default_resource_group() -> None:
    assert default_resource_group("azure-test") == "gpufleet-azure-test"
    assert resource_group(make_site("azure")) == "gpufleet-azure-test"
    assert resource_group(make_site("azure", resource_group="rg-own")) == "rg-own"
