"""A lab of plain sshd boards on loopback (no emulation): real OpenSSH hosts on 127.0.0.2-99 and the
inventory that names them, which the farm loads like any other.

The tests' ``ssh_lab`` fixture (tests/farm/fleet/conftest.py) and the fleet benchmarks (bench/fleetlab.py)
both drive a real distributed farm this way, so it lives here, once, beside the sshd machinery it uses;
the virtual lab (farm/lab/processes.py) adds emulated boards on 127.0.0.101 and up.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

from farm.config import builtin_inventory_dir
from farm.lab.labfile import ssh_lines
from farm.lab.sshd import ClientKey, SshdServer
from farm.transport.ssh_host import SshHost

__all__ = ["SshdFactory", "ssh_host", "write_lab"]

# 127.0.0.2 .. 127.0.0.99, handed out round-robin so servers of one process are distinct hosts (the virtual
# lab's own boards start at 127.0.0.101, see farm/lab/processes.py).
_addresses = itertools.cycle(f"127.0.0.{i}" for i in range(2, 100))


class SshdFactory:
    """Starts sshd "boards" under ``base``, each on its own loopback address, all accepting ``client``."""

    def __init__(self, base: Path, client: ClientKey) -> None:
        self.base = base
        self.client = client
        self.servers: list[SshdServer] = []

    def start(self, n: int = 1) -> list[SshdServer]:
        started = []
        for _ in range(n):
            host = next(_addresses)
            server = SshdServer(self.base / f"{host}-{len(self.servers)}", host, self.client)
            self.servers.append(server)
            started.append(server.start())
        return started

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def ssh_host(
    server: SshdServer,
    *,
    name: str,
    work_dir: Path | str | None = None,
    role: str = "board",
    python: str = sys.executable,
    connect_timeout_s: float = 5,
) -> SshHost:
    """A client of ``server`` as the farm makes one for a compile host (its key and pinned host key; the
    host is this machine, so its Python is this one)."""
    return SshHost(
        server.host,
        server.port,
        server.user,
        server.key_file,
        server.known_hosts,
        str(work_dir or server.work_dir),
        connect_timeout_s=connect_timeout_s,
        python=python,
        name=name,
        role=role,
    )


def _ssh_lines(srv: SshdServer, indent: str) -> list[str]:
    return ssh_lines(srv.host, srv.port, srv.user, srv.key_file, srv.known_hosts, srv.work_dir, indent)


def write_lab(
    directory: Path,
    servers: list[SshdServer],
    *,
    local: bool = False,
    board_type: str = "cpu",
    compile_host: SshdServer | None = None,
) -> Path:
    """``directory`` as an inventory: the built-in catalog and ``lab.yaml`` naming these servers as boards
    node-0, node-1, ... (plus local-cpu when ``local``, and ``compile_host`` as a host-runner Docker host)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(builtin_inventory_dir() / "board-types.yaml", directory / "board-types.yaml")
    lines = ["boards:"]
    if local:
        lines += ["  - name: local-cpu", "    type: cpu"]
    for i, srv in enumerate(servers):
        lines += [f"  - name: node-{i}", f"    type: {board_type}", "    transport: ssh", "    ssh:"]
        lines += _ssh_lines(srv, "      ")
    if compile_host is not None:
        lines += [
            "docker_hosts:",
            "  - name: builder",
            "    runner: host",
            "    ssh:",
            *_ssh_lines(compile_host, "      "),
        ]
    (directory / "lab.yaml").write_text("\n".join(lines) + "\n")
    return directory
