"""The virtual lab for tests (a pytest plugin, like tests/sshd.py): ``lab(boards, time_scale)`` runs
`farm lab up` on the test's own data dir and exports its FARM_LAB; everything is taken down afterwards.
``heavy_model(path)`` writes a model whose latency the DPU (and so its clock) sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from farm.config import Settings
from farm.fleet.transports import close_all
from farm.lab import processes
from farm.lab.sshd import SSHD, sshd_available
from farm.zoo.tiny import heavy_model

__all__ = ["heavy_model", "lab"]


@pytest.fixture
def lab(farm_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, float], Path]]:
    """lab(boards, time_scale) -> the lab file: `farm lab up --boards ... --time-scale ...`, as a user runs it."""
    if not sshd_available(SSHD):
        pytest.fail("openssh-server is not installed (make test installs it)")
    monkeypatch.delenv("FARM_LAB_SSHD", raising=False)

    def up(boards: str, time_scale: float) -> Path:
        result = CliRunner().invoke(cli, ["lab", "up", "--boards", boards, "--time-scale", str(time_scale)])
        assert result.exit_code == 0, result.output
        lab_file = processes.lab_file(farm_env)
        assert f"export FARM_LAB={lab_file}" in result.output
        monkeypatch.setenv("FARM_LAB", str(lab_file))
        from farm.celery_app import app, configure

        configure(app)  # the lab's board types get their queues
        return lab_file

    yield up
    close_all()
    processes.down(farm_env)
