"""Fixtures handing out the hand-built sites and pools of :mod:`tests.clouds.builders`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpufleet.plan import PoolPlan
from gpufleet.spec import SiteSpec
from tests.clouds.builders import make_pool, make_site


@pytest.fixture
def site_of() -> Callable[..., SiteSpec]:
    return make_site


@pytest.fixture
def pool_of() -> Callable[..., PoolPlan]:
    return make_pool
