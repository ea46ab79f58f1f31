"""The Pulumi project a stack file belongs to, and where its program and its policy pack are.

gpufleet finds both the way the Pulumi CLI does, from ``Pulumi.yaml``, never from where the
gpufleet package is installed, so a wheel installed anywhere works with any checkout's stacks:

* the project of a stack file is the nearest ``Pulumi.yaml`` in the stack file's directory or above
  it; a stack file outside any project (a temporary copy, a file read from a git ref) runs in the
  project around the working directory, as ``pulumi preview --config-file FILE`` would;
* the program is the project's ``main:`` (a ``.py`` file, or a directory's ``__main__.py``), else
  the ``__main__.py`` beside ``Pulumi.yaml``;
* the policy pack is the project's ``policies/`` directory; ``GPUFLEET_POLICY_PACK`` overrides it.

No project found is bad input (:class:`~gpufleet.errors.SpecError`, exit 2) saying where gpufleet
looked. Nothing here imports Pulumi.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gpufleet.errors import Issue, SpecError
from gpufleet.inputs import load_yaml_file

PROJECT_FILE = "Pulumi.yaml"
"""The file that marks a Pulumi project's directory."""
PACK_DIR_NAME = "policies"
"""The policy pack's directory inside the project."""
PACK_ENV = "GPUFLEET_POLICY_PACK"
"""Environment variable naming a policy pack directory to use instead of the project's."""


@dataclass(frozen=True)
class PulumiProject:
    """A Pulumi project as its ``Pulumi.yaml`` describes it.

    Attributes:
        file: the ``Pulumi.yaml`` (absolute).
        name: the project's ``name`` (URNs carry it; unqualified config keys get it as namespace).
        program: the program file the Pulumi CLI would run.
        stack_config_dir: where the project's stack files are (``stackConfigDir``, else beside
            ``Pulumi.yaml``): the program reads a service's ``history`` relative to it.
    """

    file: Path
    name: str
    program: Path
    stack_config_dir: Path | None = None

    @property
    def policy_pack(self) -> Path:
        """The project's ``policies/`` directory (which may not exist)."""
        return self.file.parent / PACK_DIR_NAME


def load_project(file: str | Path) -> PulumiProject:
    """Read one ``Pulumi.yaml``.

    Raises:
        SpecError: the file cannot be read, is not YAML, has no ``name``, or ``main:`` is not a string.
    """
    path = Path(file).resolve()
    source = str(path)
    doc = load_yaml_file(path, what="project")
    if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str) or not doc["name"]:
        raise SpecError(Issue("name", "a Pulumi project file needs a top-level 'name:'", "name: <project>"),
                        source=source)
    main = doc.get("main")
    if main is not None and not isinstance(main, str):
        raise SpecError(Issue("main", f"must be a path, got {main!r}", "a .py file or a directory"), source=source)
    target = path.parent / (main or ".")
    program = target if target.suffix == ".py" else target / "__main__.py"
    stacks = doc.get("stackConfigDir")
    return PulumiProject(file=path, name=doc["name"], program=program,
                         stack_config_dir=path.parent / (stacks if isinstance(stacks, str) else "."))


def find_project_file(start: str | Path) -> Path | None:
    """The nearest ``Pulumi.yaml`` in directory ``start`` or above it (None: there is none)."""
    base = Path(start).resolve()
    return next((d / PROJECT_FILE for d in (base, *base.parents) if (d / PROJECT_FILE).is_file()), None)


def find_project(near: str | Path | None = None) -> PulumiProject:
    """The project of a stack file (or a directory): see the rules in this module's docstring.

    Args:
        near: a stack file or a directory; None starts at the working directory.

    Raises:
        SpecError: no ``Pulumi.yaml`` around ``near`` nor around the working directory.
    """
    cwd = Path.cwd().resolve()
    start = cwd if near is None else Path(near).resolve()
    if not start.is_dir():
        start = start.parent
    found = find_project_file(start) or find_project_file(cwd)
    if found is not None:
        return load_project(found)
    looked = f"{start} or any directory above it" + ("" if start == cwd else
                                                     f", nor above the working directory {cwd}")
    raise SpecError(Issue(
        "project",
        f"no {PROJECT_FILE} in {looked}; keep the stack file in its Pulumi project (e.g. stacks/ beside "
        f"{PROJECT_FILE}) or run gpufleet from the project's directory",
        f"a Pulumi project: {PROJECT_FILE} with the program (__main__.py, or main:) and the policy pack "
        f"in {PACK_DIR_NAME}/",
    ), source=str(near) if near is not None else "")


def default_pack_dir(near: str | Path | None = None) -> Path:
    """The policy pack for a stack file or directory: ``$GPUFLEET_POLICY_PACK`` if set, else the
    ``policies/`` of its project (see :func:`find_project`)."""
    env = os.environ.get(PACK_ENV)
    if env:
        return Path(env)
    return find_project(near).policy_pack


__all__ = [
    "PACK_ENV",
    "PROJECT_FILE",
    "PulumiProject",
    "default_pack_dir",
    "find_project",
    "find_project_file",
    "load_project",
]
