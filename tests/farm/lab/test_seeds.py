"""Issue 13 section 2: the seeds' own systems in the virtual lab. MobileNetV2 on a PYNQ-Z2: its DPU B512 at
150 MHz against the board's own dual Cortex-A9 (`pynq-z2:cpu:1`, `pynq-z2:cpu`), through the same agent,
with a board-level power figure from the (emulated) external meter; ResNet-18 on the ZCU104 against the
published model zoo; the PYNQ-Z2's throttling at 85 C. The figures and the misses are in docs/seeds.md.

The seed's figures: DPU about 15 ms and 1.8 W, Cortex-A9 about 800 ms single-core and 420 ms dual-core
(NEON), a speedup of about 53x. The CPU figures are what farm/perfmodel/armcpu.py is calibrated on; the DPU
figure is NOT in the DPU model's calibration set (no B512 row is published), and the model, validated
on 3,000 published rows of larger DPUs, puts it at 22 ms: those checks are strict xfails that say so."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.config import REPO_ROOT
from farm.db.models import MetricRow, RunRow
from farm.db.session import session_scope
from farm.lab.physics.boardsim import BoardSim, load_catalog
from farm.lab.physics.sensorfs import write_atomic
from farm.perfmodel.api import predict_board
from farm.perfmodel.armcpu import cpu_target, predict_cpu
from farm.perfmodel.graph import analyse
from farm.zoo.registry import build_zoo_model
from tests.conftest import write_sweep

SEED_DPU_MS, SEED_DPU_W, SEED_A9_1T_MS, SEED_A9_2T_MS = 15.0, 1.8, 800.0, 420.0
SEED_CLOCK_MHZ = 150.0
ZOO = REPO_ROOT.parent / "shared" / "data" / "published_dpu_perf_zoo.csv"


def _dpu_ms(model: str, board: str, clock_mhz: float | None = None) -> float:
    return predict_board(build_zoo_model(model, 1), board, clock_mhz=clock_mhz)[1].latency_ms


def _cpu_ms(model: str, target: str, precision: str = "fp32") -> float:
    return predict_cpu(analyse(build_zoo_model(model, 1)), cpu_target(target), precision).latency_ms


def test_the_cortex_a9_matches_the_seed_single_and_dual_core() -> None:
    assert _cpu_ms("mobilenet_v2", "pynq-z2:cpu:1") == pytest.approx(SEED_A9_1T_MS, rel=0.30)
    assert _cpu_ms("mobilenet_v2", "pynq-z2:cpu") == pytest.approx(SEED_A9_2T_MS, rel=0.30)


def test_resnet18_on_the_zcu104_is_within_20_percent_of_the_published_zoo() -> None:
    """The model zoo's ZCU104 ResNet-18 rows (every release that published one, single-thread latency)."""
    rows = (
        [r for r in csv.DictReader(line for line in ZOO.open() if not line.startswith("#"))]
        if ZOO.is_file()
        else []
    )
    published = [
        float(r["latency_ms"])
        for r in rows
        if r["board"] == "zcu104" and r["model"] == "resnet18" and r.get("latency_ms")
    ]
    if not published:
        pytest.skip(f"{ZOO} is not here (the shared reference data sits beside the repository)")
    ours = _dpu_ms("resnet18", "zcu104")
    assert all(ours == pytest.approx(p, rel=0.20) for p in published), (ours, published)


@pytest.mark.xfail(strict=True, reason="the DPU model puts B512 at 150 MHz at 22.0 ms (docs/seeds.md)")
def test_the_b512_at_150_mhz_matches_the_seeds_15_ms() -> None:
    assert _dpu_ms("mobilenet_v2", "pynq-z2", SEED_CLOCK_MHZ) == pytest.approx(SEED_DPU_MS, rel=0.20)


@pytest.mark.xfail(strict=True, reason="22.0 ms on the DPU: 36x over one A9 core, not 53x (docs/seeds.md)")
def test_the_dpu_over_one_a9_core_speedup_is_the_seeds_53x() -> None:
    speedup = _cpu_ms("mobilenet_v2", "pynq-z2:cpu:1") / _dpu_ms("mobilenet_v2", "pynq-z2", SEED_CLOCK_MHZ)
    assert speedup == pytest.approx(SEED_A9_1T_MS / SEED_DPU_MS, rel=0.20)


def test_the_pynq_z2_throttles_at_85_c_to_the_catalogs_clock_step(tmp_path: Path) -> None:
    """At a 25 C room a PYNQ-Z2 never reaches 85 C (25 + 9 C/W x 3.5 W = 56.5 C); in a 60 C enclosure at
    full load it does (91.5 C), and the DPU clock drops to the catalog's throttle fraction (0.5)."""
    catalog = load_catalog(REPO_ROOT / "inventory")
    bt = catalog["pynq-z2"]
    sim = BoardSim(tmp_path, "pynq-z2", bt, time_scale=1.0, noise=False)
    sim.start()
    cool = sim.step(10 * bt.thermal.tau_s, utilisation=1.0)
    assert not cool.throttled and cool.temp_c < bt.thermal.limit_c
    write_atomic(tmp_path / "emu/ambient_c", "60\n")
    states = [sim.step(bt.thermal.tau_s / 10, utilisation=1.0) for _ in range(60)]
    first = next(s for s in states if s.throttled)
    assert first.temp_c >= bt.thermal.limit_c - 0.5
    assert first.clock_mhz == pytest.approx(bt.accelerator.clock_mhz * bt.thermal.throttle_clock_fraction)


SWEEP = """\
name: seeds
models: [mobilenet_v2]
precisions: [fp32, int8]
targets: [pynq-z2, "pynq-z2:cpu:1", "pynq-z2:cpu"]
scenarios: [SingleStream]
quantization: {calibration_samples: 16}
loadgen: {min_duration_ms: 100, min_query_count: 8}
"""


def _farm(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_seeds_comparison_end_to_end_in_the_virtual_lab(tmp_path, farm_env, lab) -> None:
    """`farm submit` runs the DPU and the board's own CPU on the same emulated PYNQ-Z2 (one board, one
    queue), each labelled emulated, each with a board-level power figure from the meter; `farm compare`
    puts the DPU over the board's CPU with the cross-precision warning. At time scale 0.25 (the A9 runs take
    800 ms a query): the runs are flagged time-scaled, so compare is asked to include them."""
    lab("pynq-z2", 0.25)
    _farm("lab", "set", "pynq-z2-1", f"clock_mhz={SEED_CLOCK_MHZ:g}")
    _farm("submit", str(write_sweep(tmp_path, SWEEP)))
    with session_scope(farm_env.db_url) as s:
        runs = {
            (r.target, r.precision): (
                r.board_name,
                r.source,
                dict(
                    s.execute(select(MetricRow.name, MetricRow.value).where(MetricRow.run_id == r.id)).all()
                ),
            )
            for r in s.scalars(select(RunRow))
        }
    assert set(runs) == {
        ("pynq-z2", "int8"),
        *((t, p) for t in ("pynq-z2:cpu:1", "pynq-z2:cpu") for p in ("fp32", "int8")),
    }
    assert {board for board, _, _ in runs.values()} == {"pynq-z2-1"}
    assert {source for _, source, _ in runs.values()} == {"emulated"}
    with session_scope(farm_env.db_url) as s:
        assert all(
            any(f.startswith("time-scaled:") for f in r.flags or []) for r in s.scalars(select(RunRow))
        )
    p50 = {k: m["latency_ms_p50"] for k, (_, _, m) in runs.items()}
    assert p50[("pynq-z2:cpu:1", "fp32")] == pytest.approx(SEED_A9_1T_MS, rel=0.30)
    assert p50[("pynq-z2:cpu", "fp32")] == pytest.approx(SEED_A9_2T_MS, rel=0.30)
    # the meter: a board-level figure for every run, the DPU run above the idle board, the CPU runs too
    idle_w = load_catalog(REPO_ROOT / "inventory")["pynq-z2"].power.static_w
    watts = {k: m["power_w"] for k, (_, _, m) in runs.items()}
    assert all(w > idle_w for w in watts.values()), watts

    doc = json.loads(
        _farm(
            "compare",
            "--include-time-scaled",
            "--model",
            "mobilenet_v2",
            "--precision",
            "int8",
            "--precision",
            "fp32",
            "--format",
            "json",
        )
    )
    families = {(t["target"], t["precision"]): t["family"] for t in doc["targets"]}
    assert families[("pynq-z2", "int8")] == "fpga" and families[("pynq-z2:cpu:1", "fp32")] == "cpu"
    (ratio,) = [
        r
        for r in doc["ratios"]
        if r["baseline"] == "pynq-z2:cpu:1" and "fp32" in r["baseline_label"] and r["metric"] == "speedup_p50"
    ]
    assert ratio["ratio"] == pytest.approx(
        p50[("pynq-z2:cpu:1", "fp32")] / p50[("pynq-z2", "int8")], rel=0.02
    )
    assert any("across precisions" in w for w in ratio["warnings"])
