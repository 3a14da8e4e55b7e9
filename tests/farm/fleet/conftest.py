"""A lab of real sshd boards (tests/sshd.py), written as an inventory the farm loads like any other."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from farm.config import REPO_ROOT


def _ssh_lines(srv, indent: str) -> list[str]:
    return [
        f"{indent}host: {srv.host}",
        f"{indent}port: {srv.port}",
        f"{indent}user: {srv.user}",
        f"{indent}key_file: {srv.key_file}",
        f"{indent}known_hosts: {srv.known_hosts}",
        f"{indent}work_dir: {srv.work_dir}",
        f"{indent}python: {sys.executable}",  # the boards are this machine
    ]


def write_lab(
    directory: Path, servers: list, *, local: bool = False, board_type: str = "cpu", compile_host=None
) -> Path:
    """inventory/ with the repository's catalog and a lab of these sshd servers as boards node-0, node-1, ..."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", directory / "board-types.yaml")
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


@pytest.fixture
def ssh_lab(tmp_path: Path, sshd_factory, farm_env, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list]:
    """ssh_lab(n): n sshd boards of type cpu, made the farm's inventory. Returns the servers."""

    def make(n: int, local: bool = False, compile_host: bool = False) -> list:
        servers = sshd_factory.start(n + compile_host)
        builder = servers.pop() if compile_host else None
        inv = write_lab(tmp_path / "inventory", servers, local=local, compile_host=builder)
        monkeypatch.setenv("FARM_INVENTORY", str(inv))
        monkeypatch.setenv("FARM_LAB", "lab.yaml")
        from farm.celery_app import app, configure

        configure(app)
        return servers

    yield make
    from farm.fleet.transports import close_all

    close_all()
