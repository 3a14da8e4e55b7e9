"""Health check of a board, run by the agent itself: can this board take a job right now?

Checks, each reported with ok and a detail: python, numpy, mlperf_loadgen, the backend (its runtime
imports and reports versions), and disk space in the agent's folder. Sensors join when there are any.
"""

from __future__ import annotations

import os
import platform
import shutil

import backends

MIN_FREE_BYTES = 512 * 1024 * 1024


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


def _disk(path):
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise RuntimeError("only %d MiB free in %s" % (free // (1024 * 1024), path))
    return "%d MiB free" % (free // (1024 * 1024))


def run(backend_name, work_dir):
    checks = [
        _check("python", platform.python_version),
        _check("numpy", _numpy),
        _check("loadgen", _loadgen),
        _check("backend", lambda: _backend(backend_name)),
        _check("disk", lambda: _disk(work_dir or os.getcwd())),
    ]
    ok = all(c["ok"] for c in checks)
    doc = {
        "status": "ok" if ok else "error",
        "backend": backend_name,
        "checks": checks,
        "hostname": platform.node(),
    }
    return doc, 0 if ok else 1
