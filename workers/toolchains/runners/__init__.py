"""Compile runners: where a compile job's toolchain runs (one module each).

* :class:`LocalRunner` (``local.py``): in the worker's own process.
* :class:`HostRunner` (``host.py``): over SSH on an inventory Docker host with ``runner: host``, with the
  toolchain (and farm) installed on it.
* :class:`DockerRunner` (``docker.py``): over SSH on a Docker host with ``runner: docker``, ``docker run``
  of the toolchain's ``container_image`` with the host's ``engine`` (Docker, or podman) and ``limits``.

:func:`runner_for` picks one for a toolchain from the inventory:

1. the first ``docker_hosts`` entry (in inventory order) that fits: ``runner: host`` fits every
   toolchain; ``runner: docker`` fits when the toolchain declares a ``container_image`` listed in the
   host's ``images`` (exact string, tag included);
2. no Docker hosts, or none fits: :class:`LocalRunner` (logged when hosts exist but none fits).

No load balancing and no health tracking: the first fitting host is used, and a failure on it is an
InfraError that the compile task retries (on the same host).
"""

from __future__ import annotations

import logging

from farm.inventory import DockerHost, Inventory
from farm.transport.ssh_host import SshHost
from farm.workers.toolchains.registry import get_toolchain
from farm.workers.toolchains.runners.base import (
    DEFAULT_COMPILE_TIMEOUT_S,
    CompileRunner,
    RunnerResult,
    ToolchainInfo,
    artifact_columns,
)
from farm.workers.toolchains.runners.docker import DockerRunner, docker_run_argv
from farm.workers.toolchains.runners.host import HostRunner
from farm.workers.toolchains.runners.local import LocalRunner

__all__ = [
    "CompileRunner",
    "DockerRunner",
    "HostRunner",
    "LocalRunner",
    "RunnerResult",
    "ToolchainInfo",
    "artifact_columns",
    "docker_run_argv",
    "runner_for",
    "select_host",
]

log = logging.getLogger(__name__)


def select_host(inventory: Inventory, toolchain_name: str) -> DockerHost | None:
    """The compile host for this toolchain (rule 1 above), or None for an in-process compile."""
    image = get_toolchain(toolchain_name).container_image
    for host in inventory.docker_hosts:
        if host.runner == "host" or (image is not None and image in host.images):
            return host
    if inventory.docker_hosts:
        log.warning(
            "no compile host fits toolchain %s (image %s; hosts: %s): compiling in-process",
            toolchain_name,
            image,
            ", ".join(f"{h.name} ({h.runner}, images {h.images})" for h in inventory.docker_hosts),
        )
    return None


def transport_for(inventory: Inventory, host: DockerHost, connect_timeout_s: float = 10.0) -> SshHost:
    """An SSH connection to a compile host (key and known_hosts resolved against the inventory folder)."""
    ssh = host.ssh
    return SshHost(
        ssh.host,
        ssh.port,
        ssh.user,
        inventory.resolve(ssh.key_file),
        inventory.resolve(ssh.known_hosts),
        ssh.work_dir,
        connect_timeout_s=connect_timeout_s,
        python=ssh.python,
        name=host.name,
        role="compile host",
    )


def runner_for(
    inventory: Inventory,
    toolchain_name: str,
    *,
    timeout_s: float = DEFAULT_COMPILE_TIMEOUT_S,
    connect_timeout_s: float = 10.0,
) -> CompileRunner:
    """The runner for ``toolchain_name`` (see the module docstring). Nothing connects until it is used;
    close it (or use it as a context manager) to drop its SSH connection."""
    host = select_host(inventory, toolchain_name)
    if host is None:
        return LocalRunner()
    transport = transport_for(inventory, host, connect_timeout_s)
    if host.runner == "host":
        return HostRunner(transport, host_name=host.name, timeout_s=timeout_s)
    return DockerRunner(
        transport, host_name=host.name, timeout_s=timeout_s, docker=host.engine, limits=host.limits
    )
