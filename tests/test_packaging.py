"""Packaging guards that need no build: one source of truth for the built-in inventory, run-time data found
through the package, bench/ standing on its own. The wheel itself is checked by .ci/wheel-check (make test):
it builds and installs one, which takes a minute and pip, so it is not a test here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from farm.config import REPO_ROOT, builtin_inventory_dir, load_settings
from farm.perfmodel.target import catalog_path

PACKAGES = ("farm", "workers", "dashboard", "migrations")


def test_packaged_inventory_is_the_repository_inventory() -> None:
    """farm/inventory_data (what the wheel ships) and inventory/ (what a lab owner edits) never disagree."""
    packaged = REPO_ROOT / "farm" / "inventory_data"
    if packaged.is_symlink():
        assert packaged.resolve() == (REPO_ROOT / "inventory").resolve()
    source = {p.name: p.read_bytes() for p in (REPO_ROOT / "inventory").glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in packaged.glob("*.yaml")}
    assert {"board-types.yaml", "local.yaml", "virtual-lab.yaml"} <= set(source)
    assert shipped == source


def test_default_inventory_is_the_builtin_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FARM_INVENTORY", raising=False)
    assert load_settings().inventory_dir == builtin_inventory_dir()
    assert builtin_inventory_dir() == (REPO_ROOT / "inventory").resolve()  # in a checkout: inventory/ itself
    assert catalog_path() == builtin_inventory_dir() / "board-types.yaml"
    monkeypatch.setenv("FARM_INVENTORY", str(tmp_path))
    assert load_settings().inventory_dir == tmp_path
    assert catalog_path() == tmp_path / "board-types.yaml"


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py"))


def test_run_time_code_does_not_look_for_the_checkout() -> None:
    """An installed wheel has no checkout: data comes through the package. REPO_ROOT is only for the git sha."""
    allowed = {REPO_ROOT / "farm" / "config.py", REPO_ROOT / "farm" / "provenance.py"}
    offenders = [
        str(p.relative_to(REPO_ROOT))
        for p in _sources(*PACKAGES)
        if p not in allowed and "REPO_ROOT" in p.read_text()
    ]
    assert offenders == []


def test_bench_never_imports_tests() -> None:
    """bench/ has its own helpers (bench/support.py); what it shares with the tests lives in the farm package."""
    offenders = []
    for path in _sources("bench"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in ("tests", "conftest", "sshd", "virtual_lab")
            ]
    assert offenders == []
