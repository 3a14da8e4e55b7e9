"""Fixtures shared by tests/farm: ``place`` for the config tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No FARM_* variable, the default data dir under tmp_path (xdg/farm, made), and the current folder
    tmp_path/work: where the farm.toml tests put their files."""
    for name in list(os.environ):
        if name.upper().startswith("FARM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "work").mkdir()
    (tmp_path / "xdg" / "farm").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path
