"""This machine's podman, standing in for a compile server's Docker engine.

A lab's compile servers run Docker; this machine has no Docker engine, but podman runs here (as root,
daemonless) with three settings that are configuration, not code (the inventory's ``engine:``):

* ``--runtime runc``: crun, podman's default runtime, refuses a cgroup v1 hybrid layout ("cgroups in
  hybrid mode not supported");
* a ``containers.conf`` (``CONTAINERS_CONF``) with ``default_ulimits = []`` and ``pids_limit = 0`` (without
  it every run fails on setrlimit) and ``cgroup_manager = "cgroupfs"`` (no systemd here);
* an image store of the farm's own (``--root`` under ``FARM_CONTAINERS_DIR``, one folder per storage
  driver; ``--runroot`` a short path beside it), so the farm never disturbs, or is disturbed by, any other
  podman user of the machine. The driver (``FARM_CONTAINERS_STORAGE``) is overlay where it works, else
  vfs (:func:`storage_driver`).

:func:`local_engine` writes the config and returns the engine; :func:`engine_problem` says why no engine
can run here (tests skip with that reason); :func:`run` calls it locally (the image build).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from farm.config import Settings
from farm.containers.engine import ContainerEngine

__all__ = ["CONTAINERS_CONF", "engine_problem", "local_engine", "run", "storage_driver"]

#: The containers.conf podman needs on this kind of machine (see the module docstring).
CONTAINERS_CONF = """\
# Written by farm (farm/containers/podman.py): podman on a root, cgroup v1 hybrid, systemd-less machine.
[containers]
default_ulimits = []
pids_limit = 0

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""


def local_engine(settings: Settings) -> ContainerEngine:
    """The podman engine of this machine, its containers.conf written under ``settings.containers_dir``."""
    base = Path(settings.containers_dir)
    driver = storage_driver(settings)
    conf = base / "containers.conf"
    base.mkdir(parents=True, exist_ok=True)
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(CONTAINERS_CONF)
        tmp.replace(conf)
    return ContainerEngine(
        command=shutil.which("podman") or "podman",
        options=[
            "--root",
            str(base / driver / "storage"),
            "--runroot",
            str(_runroot(base, driver)),
            "--storage-driver",
            driver,
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
        ],
        env={"CONTAINERS_CONF": str(conf)},
    )


def storage_driver(settings: Settings) -> str:
    """``FARM_CONTAINERS_STORAGE``; ``auto``: overlay where the kernel has it and the store is not itself on
    an overlay filesystem (overlay on overlay fails), else vfs, which works everywhere but copies the whole
    image for every container (measured here: 7.9 s against 1.6 s per compile; docs/benchmarks.md)."""
    if settings.containers_storage != "auto":
        return settings.containers_storage
    try:
        kernel_has_it = "\toverlay\n" in Path("/proc/filesystems").read_text()
    except OSError:
        kernel_has_it = False
    if not kernel_has_it:
        return "vfs"
    probe = Path(settings.containers_dir)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    done = subprocess.run(["stat", "-f", "-c", "%T", str(probe)], capture_output=True, text=True, check=False)
    return "vfs" if done.stdout.strip() == "overlayfs" else "overlay"


def _runroot(base: Path, driver: str) -> Path:
    """Podman's run-time state: a short path (overlay refuses a runroot over 50 characters), one per store."""
    tag = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"farm-podman-{tag}" / driver


def run(
    engine: ContainerEngine, *args: str, timeout_s: float = 600.0, input_bytes: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """One engine call on this machine (argv, no shell), its output captured."""
    argv = [*engine.argv(), *args]
    return subprocess.run(argv, capture_output=True, timeout=timeout_s, input=input_bytes, check=False)


def engine_problem() -> str | None:
    """Why podman cannot run containers on this machine, or None. Cheap: looks for the programs only."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc; `make test` does it)"
    if shutil.which("runc") is None:
        return "runc is not installed (apt-get install runc): podman's default crun refuses cgroup v1 hybrid"
    if os.geteuid() != 0:
        return "podman runs rootful here: rootless podman needs subuid/subgid ranges this setup does not make"
    return None
