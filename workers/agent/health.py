"""Health check of a board, run by the agent itself: can this board take a job right now?

Checks, each reported with ok and a detail: python, numpy, mlperf_loadgen, the backend (its runtime
imports and reports versions), and free space in every folder the farm writes to (the agent's own, and
those given with ``--disk``: where artifacts and logs go), once per filesystem. A disk check also reports
``path``, ``free_bytes`` and ``needed_bytes``, so the farm can say "no space left on BOARD:PATH".
Sensors join when there are any.
"""

from __future__ import annotations

import os
import platform
import shutil

import backends

MIN_FREE_BYTES = 512 * 1024 * 1024
MB = 1024 * 1024


def _check(name, fn):
    try:
        detail = fn()
        return {"name": name, "ok": True, "detail": detail}
    except Exception as exc:  # a health check reports, it never raises
        return {"name": name, "ok": False, "detail": "%s: %s" % (type(exc).__name__, exc)}


def _numpy():
    import numpy

    return numpy.__version__


def _loadgen():
    import environment
    import mlperf_loadgen  # noqa: F401

    return environment.loadgen_package_version() or "installed"


def _backend(name):
    backend = backends.create(name)
    try:
        return backend.versions()
    finally:
        backend.close()


def _existing(path):
    """``path``, or its nearest existing parent: a folder the farm has not made yet is on that one's disk."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _disk_checks(paths, min_free_bytes):
    """One check per filesystem among ``paths`` (the first path named on it is the one reported)."""
    checks, seen = [], set()
    for path in paths:
        where = _existing(path)
        try:
            device = os.stat(where).st_dev
            if device in seen:
                continue
            seen.add(device)
            free = shutil.disk_usage(where).free
        except OSError as exc:
            detail = "%s: %s" % (type(exc).__name__, exc)
            checks.append({"name": "disk", "ok": False, "path": path, "detail": detail})
            continue
        ok = free >= min_free_bytes
        if ok:
            detail = "%d MiB free in %s" % (free // MB, path)
        else:
            detail = "only %d MiB free in %s, %d MiB needed" % (free // MB, path, min_free_bytes // MB)
        check = {"name": "disk", "ok": ok, "detail": detail, "path": path}
        check.update(free_bytes=free, needed_bytes=min_free_bytes)
        checks.append(check)
    return checks


def run(backend_name, work_dir, disk_paths=(), min_free_mb=None):
    """``work_dir`` is the agent's folder; ``disk_paths`` the farm's folders on this board."""
    min_free = MIN_FREE_BYTES if min_free_mb is None else int(float(min_free_mb) * MB)
    checks = [
        _check("python", platform.python_version),
        _check("numpy", _numpy),
        _check("loadgen", _loadgen),
        _check("backend", lambda: _backend(backend_name)),
    ]
    checks += _disk_checks(list(disk_paths) + [work_dir or os.getcwd()], min_free)
    ok = all(c["ok"] for c in checks)
    doc = {
        "status": "ok" if ok else "error",
        "backend": backend_name,
        "checks": checks,
        "hostname": platform.node(),
    }
    return doc, 0 if ok else 1
