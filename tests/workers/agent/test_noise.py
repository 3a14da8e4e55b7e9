"""The agent's pre-run noise check on synthetic /proc and /sys trees: fields, verdicts and reasons."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[3] / "workers" / "agent"


@pytest.fixture(scope="module")
def noise():
    spec = importlib.util.spec_from_file_location("agent_noise_under_test", AGENT / "noise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stat(pid: int, comm: str, ppid: int, utime: int, stime: int = 0) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    return f"{pid} ({comm}) S {ppid} 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0 100 0 0\n"


class Tree:
    """A /proc + /sys lookalike: processes whose CPU ticks advance by given amounts during the window."""

    def __init__(self, root: Path, cpus: int = 4, load: float = 0.2, governor: str | None = "performance"):
        self.root = root
        (root / "proc").mkdir(parents=True)
        (root / "proc" / "loadavg").write_text(f"{load} 0.10 0.05 1/123 4567\n")
        for cpu in range(cpus):
            freq = root / "sys/devices/system/cpu" / f"cpu{cpu}" / "cpufreq"
            freq.mkdir(parents=True)
            (freq / "scaling_cur_freq").write_text(f"{2000000 + cpu * 100000}\n")
            (freq / "cpuinfo_max_freq").write_text("3500000\n")
            if governor:
                (freq / "scaling_governor").write_text(f"{governor}\n")
        self.procs: dict[int, tuple[str, int, int, int]] = {}  # pid -> comm, ppid, ticks, ticks per window

    def proc(self, pid: int, comm: str, ppid: int = 1, ticks_in_window: int = 0) -> None:
        self.procs[pid] = (comm, ppid, 1000, ticks_in_window)
        self._write(pid, 1000)

    def _write(self, pid: int, ticks: int) -> None:
        comm, ppid, _, _ = self.procs[pid]
        folder = self.root / "proc" / str(pid)
        folder.mkdir(exist_ok=True)
        (folder / "stat").write_text(_stat(pid, comm, ppid, ticks))

    def advance(self, _window_s: float) -> None:
        """The window passes: each process used its ticks."""
        for pid, (_comm, _ppid, ticks, delta) in self.procs.items():
            self._write(pid, ticks + delta)

    def throttle(self, count: int) -> None:
        folder = self.root / "sys/devices/system/cpu/cpu0/thermal_throttle"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "core_throttle_count").write_text(f"{count}\n")


def _check(noise, tree: Tree, self_pid: int = 500, **kw):
    # 100 ticks a second, a 1 s window: a process's ticks in the window are its CPU percent
    return noise.check(
        root=str(tree.root), window_s=1.0, sleep=tree.advance, self_pid=self_pid, ticks_per_s=100, **kw
    )


def test_quiet_host(tmp_path, noise) -> None:
    tree = Tree(tmp_path)
    tree.proc(1, "init", 0, 0)
    tree.proc(400, "sshd", 1, 1)
    tree.proc(450, "sh", 400, 0)
    tree.proc(500, "python3", 450, 100)  # the agent itself, busy, and its parents: never counted
    out = _check(noise, tree)
    assert out["verdict"] == "quiet" and out["reasons"] == []
    assert out["load_1m"] == 0.2 and out["cpus"] == 4
    assert out["busy_processes"] == [] and out["busy_count"] == 0
    assert out["cpu_mhz"] == pytest.approx(2150.0) and out["max_mhz"] == 3500.0
    assert out["governor"] == "performance" and out["throttle_count"] is None


def test_a_busy_process_makes_the_host_noisy(tmp_path, noise) -> None:
    tree = Tree(tmp_path)
    tree.proc(1, "init", 0, 0)
    tree.proc(777, "stress-ng", 1, 95)  # 95 % of a CPU over the window
    tree.proc(778, "cron", 1, 12)  # busy but small
    tree.proc(500, "python3", 1, 0)
    out = _check(noise, tree)
    assert out["verdict"] == "noisy"
    assert out["busy_processes"] == [
        {"pid": 777, "name": "stress-ng", "cpu_pct": 95.0},
        {"pid": 778, "name": "cron", "cpu_pct": 12.0},
    ]
    assert out["reasons"] == ["busy: stress-ng (pid 777) 95% CPU"]


def test_many_small_busy_processes_are_noisy(tmp_path, noise) -> None:
    tree = Tree(tmp_path)
    for pid in (601, 602, 603):
        tree.proc(pid, f"worker{pid}", 1, 20)
    out = _check(noise, tree)
    assert out["verdict"] == "noisy" and out["busy_count"] == 3
    assert out["reasons"] == ["3 other processes each using >= 10% of a CPU"]


def test_high_load_and_governor(tmp_path, noise) -> None:
    """A high 1-minute load average alone is caution: it trails, and still counts the farm's own compile
    or previous run; only what is busy during the check window makes the host noisy."""
    tree = Tree(tmp_path, cpus=2, load=3.1, governor="powersave")
    out = _check(noise, tree)
    assert out["verdict"] == "caution"
    assert out["reasons"] == [
        "load 3.10 on 2 CPUs (> 0.70 per CPU)",
        "CPU frequency governor powersave (not performance)",
    ]


def test_governor_alone_is_caution(tmp_path, noise) -> None:
    out = _check(noise, Tree(tmp_path, governor="schedutil"))
    assert out["verdict"] == "caution"
    assert out["reasons"] == ["CPU frequency governor schedutil (not performance)"]


def test_throttling_during_the_window_is_noisy(tmp_path, noise) -> None:
    tree = Tree(tmp_path)
    tree.throttle(5)
    out_before = _check(noise, tree)
    assert out_before["verdict"] == "caution" and out_before["throttle_count"] == 5

    def advance_and_throttle(window_s: float) -> None:
        tree.advance(window_s)
        tree.throttle(9)

    out = noise.check(
        root=str(tree.root), window_s=1.0, sleep=advance_and_throttle, self_pid=1, ticks_per_s=100
    )
    assert out["verdict"] == "noisy" and "CPU thermal throttling during the check (+4)" in out["reasons"]


def test_nothing_readable_is_unknown_and_cpuinfo_fallback(tmp_path, noise) -> None:
    (tmp_path / "empty").mkdir()
    out = noise.check(root=str(tmp_path / "empty"), window_s=0.0, sleep=lambda _s: None, self_pid=1)
    assert out["verdict"] == "unknown" and out["load_1m"] is None and out["governor"] is None
    container = tmp_path / "container"
    (container / "proc").mkdir(parents=True)
    (container / "proc" / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2893.204\n")
    out = noise.check(root=str(container), window_s=0.0, sleep=lambda _s: None, self_pid=1)
    assert out["cpu_mhz"] == pytest.approx(2893.2) and out["verdict"] == "quiet"


def test_a_broken_stat_file_is_skipped(tmp_path, noise) -> None:
    tree = Tree(tmp_path)
    tree.proc(700, "weird) name (x", 1, 60)  # parentheses inside the command name
    (tmp_path / "proc" / "701").mkdir()
    (tmp_path / "proc" / "701" / "stat").write_text("garbage\n")
    out = _check(noise, tree)
    assert out["busy_processes"] == [{"pid": 700, "name": "weird) name (x", "cpu_pct": 60.0}]


def test_the_real_host(noise) -> None:
    """On this machine: every field is present and the verdict is one of the four."""
    out = noise.check(window_s=0.05)
    assert out["verdict"] in ("quiet", "caution", "noisy", "unknown")
    assert set(out) >= {"load_1m", "busy_processes", "cpu_mhz", "governor", "verdict", "reasons"}
    assert out["load_1m"] is not None and out["cpus"] >= 1
