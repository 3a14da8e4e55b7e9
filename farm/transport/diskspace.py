"""Free space on a board: one message for "full", whether a health check or a failed upload found it.

An SFTP server reports a write that hit a full filesystem only as "Failure" (OpenSSH maps ENOSPC to
SSH_FX_FAILURE), which tells an operator nothing. So after a failed write the transport measures the
free space of the folder it wrote to (:data:`FREE_BYTES_CODE`, run with the board's python) and, when
the write cannot have fitted, raises :class:`NoSpaceError` instead: a board fault, like the health
check's own disk check, both worded by :func:`no_space_message`.
"""

from __future__ import annotations

import math

from farm.errors import InfraError

__all__ = ["FREE_BYTES_CODE", "MB", "NoSpaceError", "format_mb", "no_space_message"]

#: The unit of FARM_MIN_FREE_MB and of every message here: a mebibyte, as ``df -m`` counts.
MB = 1024 * 1024

#: ``python -c FREE_BYTES_CODE PATH``: bytes an unprivileged writer may still use in PATH's filesystem
#: (statvfs f_bavail, what ``df`` calls Available). Python 3.8, one line, PATH passed as an argument.
FREE_BYTES_CODE = "import os,sys;s=os.statvfs(sys.argv[1]);print(s.f_bavail*s.f_frsize)"


class NoSpaceError(InfraError):
    """A board's filesystem is full where the farm writes: a board fault (the board goes bad, the job
    moves to another board) that names the board, the folder and the numbers."""


def format_mb(nbytes: float) -> str:
    """Mebibytes with as many decimals as a small number needs: 512, 3.5, 0.004."""
    mb = nbytes / MB
    if mb >= 10 or mb == 0:
        return f"{math.floor(mb) if mb >= 10 else 0:d}"
    return f"{mb:.1f}" if mb >= 0.1 else f"{mb:.3f}"


def no_space_message(host: str, path: str, free_bytes: float, needed_bytes: float) -> str:
    return (
        f"no space left on {host}:{path} ({format_mb(free_bytes)} MB free, {format_mb(needed_bytes)} MB "
        "needed)"
    )
