"""`farm lab set BOARD clock_mhz=N ambient_c=N | --reset` on a running virtual lab (farm/lab/processes.py):
the board's simulator takes the change, the emulated backend's next run on that board is slower by the
clock-bound part, the run's environment (provenance) records the clock and ambient, the board heats up in a
hotter room, --reset goes back; and every bad request is a clear error with a non-zero exit.

The run is driven at the agent's emulated backend on the board's real emulation root: that is where a run's
latency comes from (a full sweep would prove the same in tens of seconds more)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import helper, save

from farm.cli.main import cli
from farm.config import Settings, load_settings
from farm.inventory import load_inventory
from farm.lab import processes
from farm.lab.physics.boardsim import BoardSim, load_catalog
from tests.conftest import tiny_model
from tests.workers.agent import agent_modules

INPUT_SHAPE = (3, 16, 16)  # tiny_model()'s input
TIME_SCALE = 0.01  # the ZCU104's 100 s thermal time constant passes in 1 s
#: A DPU profile for the tiny model: 1 ms fixed + 3 ms clock-bound at the nominal 300 MHz.
PROFILE = {
    "model_version": "farm-dpu-perf/1",
    "kind": "dpu",
    "device": "DPUCZDX8G-B4096",
    "cores": 2,
    "clock_mhz": 300.0,
    "batch_size": 1,
    "latency_ms": 4.0,
    "clock_scaled_ms": 3.0,
    "fps_mt": 500.0,
    "utilisation_st": 0.6,
    "utilisation_mt": 0.9,
}


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def zcu104_root(lab: Callable[[str, float], Path]) -> Path:
    """A running lab with zcu104-1 (emulated) and local-cpu (real): zcu104-1's emulation root."""
    lab_file = lab("zcu104,local-cpu", TIME_SCALE)
    board = load_inventory(load_settings().inventory_dir, lab=str(lab_file)).board("zcu104-1")
    assert board.emulation is not None
    return Path(board.emulation.root)


@pytest.fixture(scope="module")
def agent() -> Iterator[object]:
    with agent_modules.imported() as ns:
        ns.emulated = agent_modules.module("backends.emulated")
        yield ns


def _run_ms(agent, model: str, root: Path, queries: int = 25) -> tuple[float, dict]:
    """One short SingleStream-like run on the board: mean wall ms per query, and the run's environment."""
    backend = agent.emulated.EmulatedBackend()
    backend.configure({"scenario": "SingleStream", "batch_size": 1, "emulation": {"root": str(root)}})
    backend.load(model)
    batch = np.random.default_rng(0).random((1, *INPUT_SHAPE), dtype=np.float32)
    backend.prepare([batch])
    start = time.perf_counter()
    for _ in range(queries):
        backend.predict(batch)
    elapsed_ms = (time.perf_counter() - start) * 1000 / queries
    env = agent.environment.collect(backend, None, {"root": str(root), "time_scale": 1.0})
    backend.close()
    return elapsed_ms, env


def _model(tmp_path: Path) -> str:
    model = tiny_model(batch=1)
    helper.set_model_props(model, {"farm.emulation": json.dumps(PROFILE)})
    path = tmp_path / "tiny-emu.onnx"
    save(model, str(path))
    return str(path)


def test_half_clock_slows_the_next_run_and_reset_restores_it(tmp_path, zcu104_root, agent) -> None:
    model = _model(tmp_path)
    nominal_ms, env = _run_ms(agent, model, zcu104_root)
    assert "accelerator_clock_mhz" not in env  # not set: the farm records the catalog's nominal clock
    assert env["ambient_c"] == pytest.approx(25.0)

    result = _cli("lab", "set", "zcu104-1", "clock_mhz=150", "ambient_c=35")
    assert result.exit_code == 0, result.output
    assert "zcu104-1: set: clock 150 MHz (set), ambient 35 C" in result.output
    assert (zcu104_root / "emu" / "clock_mhz").read_text().strip() == "150.000"  # what the backend reads
    slow_ms, env = _run_ms(agent, model, zcu104_root)
    # 1 ms + 3 ms x 300/150 = 7 ms against 4 ms: 1.75x, measured on this machine in this test
    assert slow_ms / nominal_ms > 1.5, (nominal_ms, slow_ms)
    assert env["accelerator_clock_mhz"] == 150.0 and env["ambient_c"] == 35.0  # the run's provenance

    status = _cli("lab", "status")
    assert status.exit_code == 0 and "clock 150 MHz (set; nominal 300)" in status.output
    assert "ambient 35 C (set)" in status.output
    rows = {r["name"]: r for r in json.loads(_cli("lab", "status", "--format", "json").output)}
    assert rows["zcu104-1"]["clock_mhz"] == 150.0 and rows["zcu104-1"]["clock_set_mhz"] == 150.0

    result = _cli("lab", "set", "zcu104-1", "--reset")
    assert result.exit_code == 0, result.output
    assert "reset to the catalog's values: clock 300 MHz (nominal), ambient 25 C" in result.output
    back_ms, env = _run_ms(agent, model, zcu104_root)
    assert back_ms / nominal_ms < 1.25 and slow_ms / back_ms > 1.5, (nominal_ms, slow_ms, back_ms)
    assert "accelerator_clock_mhz" not in env and env["ambient_c"] == pytest.approx(25.0)
    assert "(set" not in _cli("lab", "status").output


def test_a_hotter_room_heats_the_board(zcu104_root) -> None:
    settings = load_settings()

    def temp() -> float:
        (row,) = [r for r in processes.status(settings) if r.name == "zcu104-1"]
        assert row.temp_c is not None
        return row.temp_c

    before = temp()
    assert _cli("lab", "set", "zcu104-1", "ambient_c=60").exit_code == 0
    deadline = time.monotonic() + 6 * 100 * TIME_SCALE  # six time constants: far more than needed
    while temp() < before + 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert temp() >= before + 20, (before, temp())  # 35 C more ambient: the idle board follows it


def test_down_clears_what_was_set(zcu104_root, farm_env: Settings) -> None:
    assert _cli("lab", "set", "zcu104-1", "clock_mhz=200").exit_code == 0
    assert (zcu104_root / "emu" / "clock_set_mhz").exists()
    processes.down(farm_env)
    assert not (zcu104_root / "emu" / "clock_set_mhz").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope-1", "clock_mhz=100"], "no board 'nope-1' in the virtual lab (boards: zcu104-1, local-cpu)"),
        (["local-cpu", "clock_mhz=100"], "local-cpu is a real board of this machine, not emulated"),
        (["zcu104-1", "voltage=0.8"], "unknown key 'voltage' (keys: clock_mhz, ambient_c)"),
        (["zcu104-1", "clock_mhz=fast"], "'fast' is not a number"),
        (["zcu104-1", "clock_mhz=nan"], "not a finite number"),
        (["zcu104-1", "clock_mhz"], "expected KEY=VALUE"),
        (["zcu104-1", "clock_mhz=0"], "clock_mhz=0: out of range for zcu104-1 (> 0 and <= 450 MHz"),
        (["zcu104-1", "clock_mhz=451"], "<= 450 MHz, 1.5 x its nominal 300 MHz"),
        (["zcu104-1", "ambient_c=90"], "ambient_c=90: out of range (-40 to 85 C)"),
        (["zcu104-1", "ambient_c=-41"], "out of range (-40 to 85 C)"),
        (["zcu104-1", "clock_mhz=1", "clock_mhz=2"], "clock_mhz is given twice"),
        (["zcu104-1"], "give KEY=VALUE settings (clock_mhz, ambient_c) or --reset, not neither"),
        (["zcu104-1", "--reset", "clock_mhz=100"], "not both"),
    ],
)
def test_bad_requests_are_refused_with_exit_2(zcu104_root, args: list[str], message: str) -> None:
    result = _cli("lab", "set", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (zcu104_root / "emu" / "clock_set_mhz").exists()  # nothing was changed


def test_no_lab_running_is_a_clear_error(farm_env: Settings) -> None:
    result = _cli("lab", "set", "zcu104-1", "clock_mhz=150")
    assert result.exit_code == 1
    assert "error: the virtual lab is not up (farm lab up starts it)" in result.output


def test_the_simulator_follows_a_set_clock_in_clock_and_power(tmp_path: Path) -> None:
    """The board simulator alone (no processes): clock_set_mhz is re-read each step, the clock and the
    dynamic power follow it, throttling still halves it, and removing the file goes back to nominal."""
    board_type = load_catalog(load_settings().inventory_dir)["zcu104"]
    sim = BoardSim(tmp_path, "zcu104", board_type, time_scale=0.01, noise=False)
    sim.start()
    full = sim.step(0.1, utilisation=1.0)
    assert full.clock_mhz == 300.0 and full.clock_set_mhz is None
    (tmp_path / "emu" / "clock_set_mhz").write_text("150\n")
    half = sim.step(0.1, utilisation=1.0)
    assert half.clock_mhz == 150.0 and half.clock_set_mhz == 150.0
    assert (tmp_path / "emu" / "clock_mhz").read_text().strip() == "150.000"
    # P = 9 W static + 12 W dynamic x utilisation x clock fraction
    assert full.power_w == pytest.approx(21.0) and half.power_w == pytest.approx(15.0)
    sim.throttled = True
    assert sim.clock_mhz == 75.0  # throttling halves the set clock
    sim.throttled = False
    (tmp_path / "emu" / "clock_set_mhz").unlink()
    assert sim.step(0.1, utilisation=1.0).clock_mhz == 300.0


def test_a_sweep_after_lab_set_is_slower_and_its_provenance_says_why(tmp_path, farm_env, lab) -> None:
    """The whole path once: `farm submit` to a board at its nominal clock, `farm lab set` to half, the same
    sweep again (compiled artifact reused): the stored run is slower and its provenance has 150 MHz, 40 C."""
    from sqlalchemy import select

    from farm.db.models import RunRow
    from farm.db.session import session_scope
    from farm.zoo.tiny import heavy_sweep
    from tests.conftest import write_sweep
    from tests.virtual_lab import heavy_model

    lab("zcu104", 0.05)
    sweep = write_sweep(
        tmp_path, heavy_sweep(heavy_model(tmp_path / "h.onnx"), name="lab-set", min_duration_ms=300)
    )
    assert _cli("submit", str(sweep)).exit_code == 0
    assert _cli("lab", "set", "zcu104-1", "clock_mhz=150", "ambient_c=40").exit_code == 0
    result = _cli("submit", str(sweep))
    assert result.exit_code == 0, result.output
    with session_scope(farm_env.db_url) as s:
        first, second = s.scalars(select(RunRow).order_by(RunRow.id)).all()
        p50 = [{m.name: m.value for m in run.metrics}["latency_ms_p50"] for run in (first, second)]
        assert first.provenance.accelerator_clock_mhz == 300.0 and first.provenance.ambient_c == 25.0
        assert second.provenance.accelerator_clock_mhz == 150.0 and second.provenance.ambient_c == 40.0
    assert p50[1] > 1.3 * p50[0], p50  # the DPU-bound model: nearly twice as slow at half the clock
