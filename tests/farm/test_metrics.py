"""The metric catalog (farm/metrics.py): complete and consistent, the read side's lists come from it in the
order they always had, the headline is the contract's, and every metric a real sweep stores is in it
with the unit it is stored with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm import metrics
from farm.cli.main import cli
from farm.cli.render import TABLE_COLUMNS
from farm.db.models import MetricRow
from farm.db.session import session_scope
from farm.inventory import load_inventory
from farm.queries.runs import COMPARE_METRICS, RESULT_METRICS, TREND_METRICS
from farm.services import soak
from farm.services.results import power_metrics, scenario_metrics
from farm.workers.agent.protocol import SCENARIOS, headline_metric
from tests.conftest import write_sweep

# The read side's lists as they were before the catalog: their contents and order are outputs (the
# results JSON/CSV columns, the Compare table, the Trends choices) and must not move.
OLD_RESULT_METRICS = (
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
    "latency_ms_p99_9",
    "latency_ms_mean",
    "throughput_ips",
    "server_qps_max",
    "server_latency_ms_p99_at_max",
    "power_w",
    "energy_mj_per_inference",
    "temp_c_max",
    "int8_fp32_top1_agreement",
    "int8_fp32_sqnr_db",
    "accuracy_top1",
    "accuracy_top5",
    "accuracy_samples",
    "int8_fp32_dataset_top1_agreement",
)
OLD_COMPARE_METRICS = (
    *(f"latency_ms_{p}" for p in ("p50", "p90", "p95", "p99", "p99_9")),
    "latency_ms_mean",
    "throughput_ips",
    "power_w",
    "energy_mj_per_inference",
    "inferences_per_joule",
    "temp_c_max",
    "clock_mhz_min",
)
OLD_TREND_METRICS = (
    *OLD_COMPARE_METRICS,
    "power_w_peak",
    "offline_completion_ms_p50",
    "offline_completion_ms_p99",
)
OLD_TABLE_HEADERS = {
    "latency_ms_p50": "p50 ms",
    "latency_ms_p90": "p90 ms",
    "latency_ms_p99": "p99 ms",
    "throughput_ips": "inf/s",
    "power_w": "W",
    "energy_mj_per_inference": "mJ/inf",
    "int8_top1_agreement": "int8 top1 agr",
}


def test_every_entry_is_unique_and_complete() -> None:
    names = [m.name for m in metrics.CATALOG]
    assert len(names) == len(set(names))
    for m in metrics.CATALOG:
        assert m.unit and m.label, m
        assert m.better in get_args(metrics.Better), m
        assert m.kind in get_args(metrics.Kind), m
        assert m.origin in get_args(metrics.Origin), m
        assert m.views <= set(metrics.VIEWS), m
        assert (
            metrics.get(m.name) is m and metrics.unit(m.name) == m.unit and metrics.better(m.name) == m.better
        )


def test_the_read_side_lists_come_from_the_catalog_unchanged() -> None:
    catalog = set(metrics.names())
    for listed in (RESULT_METRICS, COMPARE_METRICS, TREND_METRICS):
        assert set(listed) <= catalog and len(set(listed)) == len(listed)
    assert RESULT_METRICS == OLD_RESULT_METRICS
    assert COMPARE_METRICS == OLD_COMPARE_METRICS
    assert TREND_METRICS == OLD_TREND_METRICS
    assert {k: v for k, v in TABLE_COLUMNS.items() if metrics.find(k)} == OLD_TABLE_HEADERS


def test_lookups() -> None:
    assert metrics.get("throughput_ips").title == "Throughput (inferences/s)"
    assert metrics.title("energy_mj_per_inference") == "Energy per inference (mJ)"
    assert metrics.label("no_such_metric") == "no_such_metric" and metrics.find("no_such_metric") is None
    with pytest.raises(KeyError, match="not in the metric catalog"):
        metrics.get("no_such_metric")
    assert metrics.stored("power_w", 12) == ("power_w", 12.0, "W")
    with pytest.raises(KeyError):
        metrics.stored("power_watts", 12.0)
    with pytest.raises(ValueError, match="unknown view"):
        metrics.names(view="nowhere")
    assert metrics.names(kind="efficiency") == ("inferences_per_joule",)
    assert set(metrics.names(kind="latency", headline=True)) == {
        f"latency_ms_{p}" for p in metrics.PERCENTILES
    }
    assert (
        metrics.get("inferences_per_joule").derived
        and metrics.get("int8_top1_agreement").origin == "artifact"
    )


@pytest.mark.parametrize(
    "name, before, after, improved, regressed",
    [
        ("latency_ms_p99", 10.0, 9.0, True, False),
        ("latency_ms_p99", 10.0, 11.0, False, True),
        ("throughput_ips", 100.0, 120.0, True, False),
        ("throughput_ips", 100.0, 80.0, False, True),
        ("clock_mhz_min", 300.0, 200.0, False, True),  # a lower minimum clock: it throttled
        ("accuracy_samples", 96.0, 200.0, False, False),  # a count has no better direction
        ("power_w", 12.0, 12.0, False, False),
    ],
)
def test_direction(name: str, before: float, after: float, improved: bool, regressed: bool) -> None:
    assert metrics.is_improvement(name, before, after) is improved
    assert metrics.is_regression(name, before, after) is regressed


def test_the_headline_is_the_contracts() -> None:
    for scenario in SCENARIOS:
        name = metrics.headline(scenario)
        assert name == headline_metric(scenario) and metrics.get(name).headline
    assert metrics.headline("MultiStream") == "latency_ms_p99"
    for pct, suffix in ((50.0, "p50"), (90.0, "p90"), (95.0, "p95"), (99.0, "p99"), (99.9, "p99_9")):
        assert metrics.headline("MultiStream", pct) == f"latency_ms_{suffix}"
        assert metrics.get(f"latency_ms_{suffix}").headline
    assert metrics.headline("Offline", 90.0) == "throughput_ips"  # the percentile is MultiStream's only
    with pytest.raises(ValueError, match="unknown scenario"):
        metrics.headline("Batch")


def _assert_catalogued(produced: list[tuple[str, float, str]]) -> set[str]:
    for name, _value, unit in produced:
        assert metrics.find(name) is not None, f"{name} is stored but not in farm/metrics.py"
        assert unit == metrics.unit(name), (name, unit)
    return {name for name, _, _ in produced}


def test_every_producer_writes_catalogued_names_and_units() -> None:
    """Each figure the store can write, from reports that carry all of them (a real sweep below covers
    what a CPU and an emulated board report; a soak and a sensor-less board are covered here)."""
    report = {
        "server_search": {"qps_max": 120.0, "latency_ms_p99_at_max": 40.0},
        "power": {"avg_w": 12.0, "peak_w": 13.5, "window_s": 0.5, "inferences": 200},
        "thermal": {"max_c": 61.0},
        "clock": {"min_mhz": 290.0},
    }
    found = _assert_catalogued(scenario_metrics(report)) | _assert_catalogued(power_metrics(report))
    assert {"server_qps_max", "power_w_peak", "inferences_per_joule", "clock_mhz_min"} <= found
    analysis = {
        "time_to_steady_s": 120.0,
        "steady_temp_c": 70.0,
        "throttling": {"throttled": True, "throttle_at_s": 240.0},
        "latency": {"drift_pct": 12.5},
    }
    assert len(_assert_catalogued(soak.metrics(analysis))) == 5


LAB_SWEEP = """\
name: catalogued
models: [shapes_net]
precisions: [int8]  # INT8 stores all FP32 does, and its agreement with FP32
targets: [cpu, zcu104]
batch_sizes: [1]
scenarios: [SingleStream, MultiStream, Server, Offline]
dataset: shapes
quantization:
  calibration_samples: 100
loadgen:
  min_duration_ms: 100
  min_query_count: 16
  multi_stream_samples_per_query: 4
  server_target_latency_ms: 50
  server_search_probes: 2
"""


def test_every_metric_a_real_sweep_stores_is_catalogued(tmp_path: Path, farm_env, monkeypatch) -> None:
    """The measured CPU and an emulated ZCU104 with sensors, every scenario, INT8 (FP32 stores a subset), a dataset:
    every stored name is in the catalog, stored with the catalog's unit."""
    from farm.lab.physics.sensorfs import SensorFs, SensorState

    inventory_dir = Path(__file__).resolve().parents[2] / "inventory"
    root = tmp_path / "zcu104-root"
    SensorFs(root, load_inventory(inventory_dir).board_types["zcu104"], "zcu104").layout().write(
        SensorState(power_w=14.0, temp_c=55.0, clock_mhz=300.0, static_w=9.0)
    )
    lab = tmp_path / "lab.yaml"
    lab.write_text(
        "boards:\n"
        "  - name: local-cpu\n    type: cpu\n"
        f"  - name: zcu104-emu-0\n    type: zcu104\n    emulation: {{root: {root}, time_scale: 0.2}}\n"
    )
    monkeypatch.setenv("FARM_LAB", str(lab))
    made = CliRunner().invoke(
        cli, ["datasets", "make", "shapes", str(tmp_path / "shapes"), "--per-class", "4"]
    )
    assert made.exit_code == 0, made.output
    out = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, LAB_SWEEP))], catch_exceptions=False)
    assert out.exit_code == 0, out.output

    with session_scope(farm_env.db_url) as s:
        stored = {(m.name, m.unit) for m in s.scalars(select(MetricRow))}
    names = _assert_catalogued([(name, 0.0, unit) for name, unit in stored])
    expected = {
        "latency_ms_p90",
        "latency_ms_p99",
        "throughput_ips",
        "offline_completion_ms_p50",
        "server_qps_max",
        "power_w",
        "energy_mj_per_inference",
        "temp_c_max",
        "clock_mhz_min",
        "accuracy_top1",
        "int8_fp32_top1_agreement",
    }
    assert expected <= names, expected - names
    rows = json.loads(CliRunner().invoke(cli, ["results", "--format", "json"]).output)
    assert {r["scenario"] for r in rows} == set(SCENARIOS)
