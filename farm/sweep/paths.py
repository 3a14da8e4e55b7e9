"""Paths a user names (model files, checkpoints, dataset folders): resolved and probed with one stat each,
never a walk, and never an OSError out: every problem is a PathError with a message the user can act on.

``Path.is_file()`` raises on EACCES and ENAMETOOLONG and ``expanduser()`` raises RuntimeError for an unknown
user; a submit turns each of these into a located SweepError instead of a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux

# Folders no dataset lives in: the filesystem root, the system's own folders, and virtual filesystems
# whose trees are generated (walking /proc or /sys never ends, reading /dev/zero never ends).
_VIRTUAL = ("/proc", "/sys", "/dev", "/run")
_SYSTEM = (
    "/",
    "/bin",
    "/boot",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/sbin",
    "/usr",
    "/var",
    "/snap",
)


class PathError(ValueError):
    """A path that cannot be used; the message says which and why."""


def resolve_path(base_dir: Path, raw: str) -> Path:
    """``raw`` made absolute: ``~`` expanded, relative to ``base_dir``, symlinks resolved. Nothing is read."""
    if "\x00" in raw:
        raise PathError("NUL character in a path")
    if len(raw) > MAX_PATH_CHARS:
        raise PathError(f"path longer than {MAX_PATH_CHARS} characters")
    try:
        path = Path(raw).expanduser()
    except RuntimeError:  # ~user with no such user, or no home directory
        raise PathError(f"cannot expand {raw!r}: no such user or home directory") from None
    if path.is_absolute():
        return path
    try:
        return (base_dir / path).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, on Pythons whose resolve() raises for one
        raise PathError(f"cannot resolve {raw!r}: {exc}") from None


Kind = Literal["file", "dir", "missing", "other"]


def probe(path: Path) -> Kind:
    """What is at ``path`` (following symlinks), with one stat: PathError when it cannot be looked at."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except PermissionError:
        raise PathError(f"permission denied: {path}") from None
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EIO, ...
        raise PathError(f"cannot look at {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # NUL in the path
        raise PathError(f"cannot look at {path}: {exc}") from None
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def system_folder(path: Path) -> str | None:
    """Why ``path`` cannot be a dataset folder (the root, a system folder, a virtual filesystem), or None."""
    real = os.path.realpath(path)
    if real in _SYSTEM:
        return f"{path} is a system folder, not a dataset"
    for top in _VIRTUAL:
        if real == top or real.startswith(top + "/"):
            return f"{path} is in {top}, a virtual filesystem, not a dataset"
    return None
