"""The agent's health check, run as on a board: free space is measured in every folder the farm writes to,
once per filesystem, with the numbers the farm needs to say "no space left on BOARD:PATH"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.small_fs import fill, small_tmpfs

REPO = Path(__file__).resolve().parents[3]
AGENT = REPO / "workers" / "agent" / "farm_agent.py"


def _health(*args: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, str(AGENT), "--health", "onnxruntime_cpu", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def _disks(doc: dict) -> list[dict]:
    return [c for c in doc["checks"] if c["name"] == "disk"]


def test_a_full_folder_fails_with_its_path_and_numbers(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", 512) as small:
        artifacts = small / "artifacts"  # not made yet: measured on the folder above it
        code, doc = _health("--disk", str(artifacts), "--min-free-mb", "0.25")
        assert code == 0 and doc["status"] == "ok", doc
        assert [d["path"] for d in _disks(doc)][0] == str(artifacts)

        fill(small)
        code, doc = _health("--disk", str(artifacts), "--min-free-mb", "0.25")
    assert code == 1 and doc["status"] == "error"
    full = _disks(doc)[0]
    assert full["ok"] is False and full["path"] == str(artifacts)
    assert full["free_bytes"] == 0 and full["needed_bytes"] == 256 * 1024
    assert "only 0 MiB free in " + str(artifacts) in full["detail"]
    assert all(d["ok"] for d in _disks(doc)[1:])  # the agent's own folder is on another disk, with room


def test_one_check_per_filesystem_and_the_default_minimum(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b" / "c"
    a.mkdir()
    code, doc = _health("--disk", str(a), "--disk", str(b))
    disks = _disks(doc)
    same_fs = os.stat(tmp_path).st_dev == os.stat(AGENT.parent).st_dev
    assert [d["path"] for d in disks] == [str(a)] + ([] if same_fs else [str(AGENT.parent)])
    assert disks[0]["needed_bytes"] == 512 * 1024 * 1024  # the default, as before


def test_more_than_the_disk_holds_is_not_enough(tmp_path: Path) -> None:
    code, doc = _health("--disk", str(tmp_path), "--min-free-mb", str(2**40))
    assert code == 1
    assert _disks(doc)[0]["ok"] is False and _disks(doc)[0]["free_bytes"] < _disks(doc)[0]["needed_bytes"]


def test_disk_options_are_checked() -> None:
    for args, said in (
        (["--config", "-", "--disk", "/tmp"], "go with --health"),
        (["--health", "x", "--min-free-mb", "-1"], "finite number >= 0"),
        (["--health", "x", "--min-free-mb", "inf"], "finite number >= 0"),
    ):
        proc = subprocess.run(
            [sys.executable, str(AGENT), *args], capture_output=True, text=True, timeout=60, input="{}"
        )
        assert proc.returncode == 1 and said in proc.stdout, (args, proc.stdout, proc.stderr)
