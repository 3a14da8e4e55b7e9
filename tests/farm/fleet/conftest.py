"""A lab of real sshd boards (tests/sshd.py), written as an inventory the farm loads like any other."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from farm.config import REPO_ROOT


def write_lab(directory: Path, servers: list, *, local: bool = False, board_type: str = "cpu") -> Path:
    """inventory/ with the repository's catalog and a lab of these sshd servers as boards node-0, node-1, ..."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", directory / "board-types.yaml")
    lines = ["boards:"]
    if local:
        lines += ["  - name: local-cpu", "    type: cpu"]
    for i, srv in enumerate(servers):
        lines += [
            f"  - name: node-{i}",
            f"    type: {board_type}",
            "    transport: ssh",
            "    ssh:",
            f"      host: {srv.host}",
            f"      port: {srv.port}",
            f"      user: {srv.user}",
            f"      key_file: {srv.key_file}",
            f"      known_hosts: {srv.known_hosts}",
            f"      work_dir: {srv.work_dir}",
            f"      python: {sys.executable}",  # the boards are this machine
        ]
    (directory / "lab.yaml").write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture
def ssh_lab(tmp_path: Path, sshd_factory, farm_env, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list]:
    """ssh_lab(n): n sshd boards of type cpu, made the farm's inventory. Returns the servers."""

    def make(n: int, local: bool = False) -> list:
        servers = sshd_factory.start(n)
        inv = write_lab(tmp_path / "inventory", servers, local=local)
        monkeypatch.setenv("FARM_INVENTORY", str(inv))
        monkeypatch.setenv("FARM_LAB", "lab.yaml")
        from farm.celery_app import app, configure

        configure(app)
        return servers

    yield make
    from farm.fleet.transports import close_all

    close_all()
