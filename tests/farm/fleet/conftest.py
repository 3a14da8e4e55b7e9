"""A lab of real sshd boards (tests/sshd.py), written as an inventory the farm loads like any other
(farm/lab/loopback.py, shared with bench/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from farm.lab.loopback import write_lab


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
