"""A local folder of Python files shipped to remote hosts once per content version (the agent, hostside/).

A folder lands on the host under ``<work_dir>/<kind>/<hash>/``, where the hash covers every ``*.py`` file
(``__pycache__`` skipped): a host that already has that folder gets nothing, a changed file makes a new one.
The upload itself is :meth:`farm.transport.ssh_host.SshHost.ship_folder`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

#: Written last into a shipped folder, holding its hash: the folder is complete.
COMPLETE_MARKER = ".complete"

Signature = tuple[tuple[str, int, int], ...]


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, local path) of the folder's ``*.py`` files, sorted, ``__pycache__`` skipped."""
    files = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or not path.is_file():
            continue
        files.append((rel.as_posix(), path))
    return sorted(files)


def files_hash(files: list[tuple[str, Path]]) -> str:
    """sha256 over the relative paths and bytes of ``files``, each length-prefixed so no two trees match."""
    digest = hashlib.sha256()
    for rel, path in files:
        data = path.read_bytes()
        digest.update(f"{len(rel)}:{rel}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def folder_hash(root: str | os.PathLike[str]) -> str:
    """The content hash of a folder as shipped (its name on the host)."""
    return files_hash(folder_files(Path(root)))


def folder_signature(root: Path) -> Signature:
    """Cheap fingerprint of the folder's files (path, size, mtime), checked before every use: tells when to
    hash them again (a changed agent is shipped again, and its session restarted)."""
    signature = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    signature.append((path, st.st_size, st.st_mtime_ns))
    return tuple(signature)
