"""A new user's first hour, in a real terminal (pexpect: a pty, as a person's shell gives `farm`): the help,
the dry run, five deliberate sweep mistakes, each answered with where it is and how to fix it (exit 2, no
traceback), then a first sweep that runs and prints its results."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

from tests.conftest import QUICK_CPU_SWEEP

FARM = [sys.executable, "-m", "farm.cli.main"]


def _farm(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> tuple[int, str]:
    child = pexpect.spawn(
        FARM[0],
        FARM[1:] + args,
        env=env,
        cwd=str(cwd),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(40, 120),
    )
    child.expect(pexpect.EOF)
    child.close()
    out = child.before.replace("\r\n", "\n")
    assert "Traceback" not in out, out
    return child.exitstatus, out


@pytest.fixture
def shell(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env.update(FARM_DATA_DIR=str(tmp_path / "data"), TERM="xterm-256color", COLUMNS="120")
    return env


MISTAKES = [
    ("precison: [fp32]", "precisions: [fp32]", "unknown key 'precison' (did you mean 'precisions'?)"),
    ("[SingleStreem]", "[SingleStream]", "'SingleStreem' is not allowed (did you mean 'SingleStream'?)"),
    ("name: tiny-net\n    zoo: resnet-18", None, "unknown zoo model 'resnet-18' (did you mean 'resnet18'?)"),
    ("targets: [zcu104]", "targets: [cpu]", "farm lab up --boards zcu104"),
    (
        "min_duraton_ms: 100",
        "min_duration_ms: 100",
        "unknown key 'min_duraton_ms' (did you mean 'min_duration_ms'?)",
    ),
]


def test_five_mistakes_then_a_first_sweep(tmp_path: Path, tiny_onnx: Path, shell: dict[str, str]) -> None:
    code, out = _farm(["--help"], shell, tmp_path)
    assert code == 0 and "submit" in out and "compare" in out

    good = QUICK_CPU_SWEEP.format(onnx=tiny_onnx)
    (tmp_path / "first.yaml").write_text(good)
    code, out = _farm(["submit", "first.yaml", "--dry-run"], shell, tmp_path)
    assert code == 0 and "Nothing was written" in out and "1 compiles" in out, out
    assert not (tmp_path / "data" / "farm.db").exists()

    for i, (wrong, right, said) in enumerate(MISTAKES):
        if right is None:  # a zoo model instead of the file: misspelt
            body = good.replace(f"  - name: tiny\n    onnx: {tiny_onnx}", f"  - {wrong}")
        else:
            body = good.replace(right, wrong)
        assert body != good, wrong
        (tmp_path / f"mistake{i}.yaml").write_text(body)
        code, out = _farm(["submit", f"mistake{i}.yaml"], shell, tmp_path)
        assert code == 2 and f"mistake{i}.yaml:" in out and said in out, out
        assert "Extra inputs" not in out and "pattern" not in out

    code, out = _farm(["submit", "first.yaml"], shell, tmp_path, timeout=300)
    assert code == 0, out
    assert "tiny" in out and "cpu" in out and "measured" in out and "done" in out
