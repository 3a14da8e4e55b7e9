"""Farm-side provenance: version and git sha of the code that produced a result."""

from __future__ import annotations

import subprocess
from functools import lru_cache

from farm import __version__
from farm.config import REPO_ROOT


@lru_cache(maxsize=1)
def git_sha() -> str | None:
    if not (REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def farm_version() -> str:
    return __version__
