"""Writing report files safely: checked before the run, never over an input, all or nothing.

A command that writes files (``preview --output``, ``diff --json-out`` / ``--chart``) calls
:func:`check_outputs` before doing any work, so a typo in a path fails in a second rather than after
a whole preview, and :func:`write_atomic` at the end: the bytes go to a temporary file in the same
directory, which is then renamed over the target, so an interrupted run leaves the old file whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from gpufleet.errors import Issue, SpecError


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path | None],
                  *, suffixes: Mapping[str, tuple[str, ...]] | None = None, create_parents: bool = False) -> None:
    """Refuse output paths that would overwrite an input, sit in a missing or read-only directory,
    are not regular files, or have a suffix the format does not allow.

    Args:
        outputs: flag name (e.g. ``--output``) → path, or None when the flag was not given.
        inputs: every file the run reads.
        suffixes: flag name → allowed suffixes (e.g. ``{"--chart": (".svg", ".png")}``).
        create_parents: the command creates missing directories (then the nearest existing one
            must be a writable directory); otherwise a missing directory is refused.

    Raises:
        SpecError: listing every bad output path, each under its flag's name.
    """
    issues: list[Issue] = []
    read = {_identity(Path(p)) for p in inputs if p is not None and str(p) != "-"}
    read.discard(None)
    for flag, value in outputs.items():
        if value is None or str(value) == "-":
            continue
        path = Path(value)
        allowed = (suffixes or {}).get(flag)
        if allowed and path.suffix.lower() not in allowed:
            issues.append(Issue(flag, f"{str(path)!r} has suffix {path.suffix or '(none)'!r}", ", ".join(allowed)))
            continue
        if _identity(path) in read:
            issues.append(Issue(flag, f"{str(path)!r} is an input of this run; refusing to overwrite it",
                                "a different output file"))
            continue
        parent = path.parent if str(path.parent) else Path(".")
        if create_parents:
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
        if not parent.is_dir():
            issues.append(Issue(flag, f"directory {str(parent)!r} does not exist", "an existing directory"))
        elif path.exists() and not path.is_file():
            issues.append(Issue(flag, f"{str(path)!r} exists and is not a regular file", "a regular file path"))
        elif not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            issues.append(Issue(flag, f"{str(path)!r} is not writable", "a writable location"))
    if issues:
        raise SpecError(issues)


def _identity(path: Path) -> tuple[int, int] | str | None:
    """What makes two paths the same file: (device, inode) when it exists, else the resolved path."""
    try:
        info = path.stat()
        return (info.st_dev, info.st_ino)
    except OSError:
        try:
            return str(path.resolve())
        except OSError:
            return None


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename
    (missing directories are created: check them first with :func:`check_outputs`).

    Raises:
        SpecError: the file cannot be written (disk full, permissions); the old file is untouched.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = target.parent if str(target.parent) else Path(".")
    tmp_name = ""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(tmp_name, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, target)
        tmp_name = ""
    except OSError as exc:
        raise SpecError(Issue("output", f"cannot write {target}: {exc.strerror or exc}",
                              "a writable location with free space")) from None
    finally:
        if tmp_name:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
