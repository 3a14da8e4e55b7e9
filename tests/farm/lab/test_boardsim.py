"""The board simulator (farm/lab/physics/boardsim.py): in-process steps and a real process that heats up and throttles."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farm.config import REPO_ROOT
from farm.lab.physics.boardsim import BoardSim, load_catalog
from farm.lab.physics.sensorfs import read_state, write_atomic

CATALOG = load_catalog(REPO_ROOT / "inventory")


def test_starts_at_idle_steady_state_and_warms_in_emulated_time(tmp_path: Path):
    bt = CATALOG["zcu104"]
    sim = BoardSim(tmp_path, "zcu104", bt, time_scale=0.01, noise=False)
    first = sim.start()
    assert first.temp_c == pytest.approx(25 + 1.6 * 9.0)  # ambient + r_th x static
    assert first.power_w == 9.0 and first.clock_mhz == 300.0
    # one wall second at time scale 0.01 is 100 emulated seconds = one time constant of the ZCU104
    state = sim.step(1.0, utilisation=1.0)
    target = 25 + 1.6 * 21.0
    assert state.t_s == pytest.approx(100.0)
    assert state.power_w == pytest.approx(21.0)
    assert (state.temp_c - first.temp_c) / (target - first.temp_c) == pytest.approx(
        1 - 1 / 2.718281828, rel=1e-6
    )
    # the load comes from <root>/emu/load when the step is not given one
    write_atomic(tmp_path / "emu/load", "0\n")
    assert sim.step(0.1).power_w == 9.0
    assert int((tmp_path / "sys/class/hwmon/hwmon0/power1_input").read_text()) == 9_000_000


def test_noise_is_small_and_seeded(tmp_path: Path):
    bt = CATALOG["u50"]
    runs = []
    for name in ("a", "b"):
        sim = BoardSim(tmp_path / name, "u50", bt, time_scale=0.01, seed=7)
        sim.start()
        runs.append([sim.step(0.1, utilisation=0.5) for _ in range(20)])
    a, b = runs
    assert [s.power_w for s in a] == [s.power_w for s in b]  # same seed, same readings
    exact = 18.0 + 34.0 * 0.5
    assert all(abs(s.power_w - exact) < 0.02 * exact for s in a)
    assert len({s.power_w for s in a}) > 1  # but it is noise, not a constant
    assert all(s.clock_mhz == 300.0 for s in a)  # the clock has none


def test_ambient_file_overrides_the_catalog(tmp_path: Path):
    sim = BoardSim(tmp_path, "vck190", CATALOG["vck190"], time_scale=0.01, noise=False)
    sim.start()
    write_atomic(tmp_path / "emu/ambient_c", "45\n")
    state = sim.step(100.0, utilisation=0.0)  # 10,000 emulated s: settled
    assert state.ambient_c == 45.0
    assert state.temp_c == pytest.approx(45 + 0.9 * 22.0, abs=0.01)


def test_process_heats_throttles_and_stops_on_sigterm(tmp_path: Path):
    """vck190 in a 50 C room at full load: 50 + 0.9 x 60 = 104 C > 100 C, so it throttles to half clock
    (1250 -> 625 MHz). Time scale 0.005: its 120 s time constant passes in 0.6 s."""
    root = tmp_path / "root"
    (root / "emu").mkdir(parents=True)
    write_atomic(root / "emu/load", "1.0\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "farm.lab.physics.boardsim",
            "--root",
            str(root),
            "--type",
            "vck190",
            "--time-scale",
            "0.005",
            "--rate-hz",
            "20",
            "--ambient-c",
            "50",
            "--inventory",
            str(REPO_ROOT / "inventory"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        temps, clocks, throttled = [], [], False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (throttled and len(temps) > 5):
            state = read_state(root)
            if state is not None:
                temps.append(state.temp_c)
                clocks.append(float((root / "emu/clock_mhz").read_text()))
                throttled = throttled or state.throttled
            time.sleep(0.05)
        assert throttled, f"never throttled; temperatures {temps[:3]} ... {temps[-3:]}"
        assert (
            temps[0] < 75 and max(temps) > 99.5
        )  # it warmed from idle (50 + 0.9 x 22 = 69.8 C) to the limit
        assert clocks[0] == 1250.0 and 625.0 in clocks  # the clock file dropped to half
        assert int((root / "sys/class/hwmon/hwmon1/temp1_input").read_text()) > 90_000
        board_power = int((root / "sys/class/hwmon/hwmon0/power1_input").read_text()) / 1e6
        assert 22.0 < board_power < 61.0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert "throttling" in out  # it says so when the clock drops
    assert json.loads((root / "emu/state.json").read_text())["time_scale"] == 0.005
