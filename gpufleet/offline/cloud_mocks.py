"""The seam between the offline runner and each cloud: what a cloud's mocks module provides, how
the runner finds the one for a type token, and the helpers those modules share.

Each cloud keeps its fake provider answers in ``gpufleet/clouds/<cloud>/mocks.py`` (plain Python, no
Pulumi import), a module with the :class:`CloudMocks` interface: the Pulumi package whose type tokens
it answers for, the id and computed outputs of a resource, and the answers to data-source calls. The
runner picks the module by the package of the token (the text before the first ``:``), among the
modules of the clouds the registry knows (:func:`gpufleet.clouds.names`): adding a cloud adds no
line here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Mapping
from typing import Any, Protocol, cast


class CloudMocks(Protocol):
    """What a cloud's ``mocks`` module provides (module-level names)."""

    PACKAGE: str
    """The Pulumi package of the type tokens it answers for, e.g. the part before ``:``."""

    def computed_state(self, type_token: str, name: str, inputs: dict[str, Any],
                       provider: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The id and output state the provider would return: the inputs plus stable fake values
        for what the program reads back (ids, names, ARNs, self links), derived from the type, the
        logical name and the provider's configuration, so two runs give identical inputs."""
        ...

    def answer_call(self, token: str, args: Mapping[str, Any],
                    provider: Mapping[str, Any]) -> dict[str, Any] | None:
        """The answer to a data-source call (invoke), or None for a call it does not know."""
        ...


@functools.cache
def _by_package() -> dict[str, CloudMocks]:
    """Every registered cloud's mocks module (``gpufleet.clouds.<cloud>.mocks``), by its package."""
    from gpufleet import clouds

    modules = [cast(CloudMocks, importlib.import_module(f"{clouds.__name__}.{name}.mocks")) for name in clouds.names()]
    return {module.PACKAGE: module for module in modules}


def mocks_for(token: str) -> CloudMocks | None:
    """The mocks module for a type or function token (None: no cloud answers for its package)."""
    return _by_package().get(token.split(":", 1)[0])


def digest(*parts: str, length: int = 17) -> str:
    """A stable hex digest of ``parts``: the random-looking part of a fake id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def plural(kind: str) -> str:
    """A resource kind's collection name in an id or a URL (``Subnetwork`` → ``Subnetworks``)."""
    if kind.endswith("y"):
        return kind[:-1] + "ies"
    return kind if kind.endswith("s") else kind + "s"


__all__ = ["CloudMocks", "digest", "mocks_for", "plural"]
