"""Folders shipped once per content version (the agent, hostside/): which files, which hash, when to look again."""

from __future__ import annotations

import os
from pathlib import Path

from farm.transport.shipping import files_hash, folder_files, folder_hash, folder_signature


def _folder(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "main.py").write_text("print(1)\n")
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "notes.txt").write_text("not shipped\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.py").write_text("raise SystemExit\n")
    return root


def test_only_python_files_outside_pycache_in_path_order(tmp_path):
    root = _folder(tmp_path / "a")
    assert [rel for rel, _ in folder_files(root)] == ["main.py", "pkg/mod.py"]


def test_the_hash_follows_content_and_paths_not_place_or_time(tmp_path):
    a, b = _folder(tmp_path / "a"), _folder(tmp_path / "b")
    os.utime(b / "main.py", (0, 0))
    assert folder_hash(a) == folder_hash(b) == files_hash(folder_files(a))
    (b / "main.py").write_text("print(2)\n")
    assert folder_hash(a) != folder_hash(b)
    c = _folder(tmp_path / "c")
    (c / "pkg" / "mod.py").rename(c / "pkg" / "other.py")
    assert folder_hash(a) != folder_hash(c)  # same bytes under another name
    (a / "__pycache__" / "junk.py").write_text("changed\n")
    assert folder_hash(a) == folder_hash(_folder(tmp_path / "d"))


def test_the_signature_changes_when_a_file_does(tmp_path):
    root = _folder(tmp_path / "a")
    before = folder_signature(root)
    assert folder_signature(root) == before
    (root / "pkg" / "mod.py").write_text("X = 22\n")
    assert folder_signature(root) != before
    after = folder_signature(root)
    (root / "__pycache__" / "junk.py").write_text("ignored\n")
    assert folder_signature(root) == after
