"""loadgen_driver / harness in-process: inputs, LoadGen log parsing, the SUT's error handling."""

from __future__ import annotations

import importlib
import os
import sys
import time
import types

import numpy as np
import pytest

AGENT_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "workers",
    "agent",
)
# Agent modules import each other by bare name; they are imported with AGENT_DIR on sys.path and taken
# out of sys.path/sys.modules again afterwards so that no other test sees them.
AGENT_MODULES = (
    "stats", "environment", "protocol", "protocol_checks", "loadgen_scenarios", "loadgen_logs", "loadgen_sut",
    "loadgen_driver", "harness", "backends", "backends.base", "sensors", "server_search",
)  # fmt: skip


@pytest.fixture(scope="module")
def agent():
    saved_path = list(sys.path)
    names = [n for n in sys.modules if n in AGENT_MODULES or n.startswith(("backends.", "sensors."))]
    saved = dict((n, sys.modules.pop(n)) for n in names)
    sys.path.insert(0, AGENT_DIR)
    try:
        yield types.SimpleNamespace(
            **dict((n.replace(".", "_"), importlib.import_module(n)) for n in AGENT_MODULES)
        )
    finally:
        sys.path[:] = saved_path
        for name in [n for n in sys.modules if n in AGENT_MODULES or n.startswith(("backends.", "sensors."))]:
            del sys.modules[name]
        sys.modules.update(saved)


def stub_backend(agent, shape=(None, 4), fail_after=None, delay_s=0.0):
    """A pure-numpy backend; optionally raises on call number ``fail_after`` (counting warmup)."""

    class Stub(agent.backends_base.Backend):
        name = "stub"
        runtime = "numpy"

        def __init__(self):
            self.calls = 0
            self.seen = []

        @property
        def input_shape(self):
            return shape

        @property
        def input_dtype(self):
            return np.dtype(np.float32)

        def predict(self, batch):
            self.calls += 1
            self.seen.append(batch.shape)
            if fail_after is not None and self.calls >= fail_after:
                raise RuntimeError(f"device lost on call {self.calls}")
            if delay_s:
                time.sleep(delay_s)
            return batch.sum(axis=1)

    return Stub()


def test_make_batches_is_deterministic(agent):
    make = agent.loadgen_driver.make_batches
    a = make((2, 3, 8, 8), np.float32, 5, seed=7)
    b = make((2, 3, 8, 8), np.float32, 5, seed=7)
    c = make((2, 3, 8, 8), np.float32, 5, seed=8)
    assert len(a) == 5 and all(x.shape == (2, 3, 8, 8) and x.dtype == np.float32 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=False))
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])
    ints = make((1, 4), np.uint8, 2, seed=0)
    assert ints[0].dtype == np.uint8 and ints[0].max() < 128


def test_make_batches_caps_distinct_memory(agent):
    batches = agent.loadgen_driver.make_batches((1, 256), np.float32, 10, seed=0, max_bytes=3 * 1024)
    assert len(batches) == 10
    assert batches[3] is batches[0] and batches[4] is batches[1]  # 3 distinct 1 KiB batches, reused


def test_resolve_shape(agent):
    resolve, model_error = agent.backends_base.resolve_shape, agent.backends_base.ModelError
    assert resolve((None, 3, 32, 32), 4) == (4, 3, 32, 32)
    assert resolve((2, 10), 2) == (2, 10)
    with pytest.raises(model_error, match="fixed batch dimension of 1"):
        resolve((1, 3, 32, 32), 8)
    with pytest.raises(model_error, match="dimension 2 is dynamic"):
        resolve((None, 3, None, 32), 1)


SUMMARY_6_0_17 = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 1148848
Result is : VALID
  Min duration satisfied : Yes

================================================
Additional Stats
================================================
QPS w/ loadgen overhead         : 864.66
QPS w/o loadgen overhead        : 869.38

Min latency (ns)                : 1072896
Max latency (ns)                : 5616578
Mean latency (ns)               : 1150246
50.00 percentile latency (ns)   : 1122208
90.00 percentile latency (ns)   : 1148848
95.00 percentile latency (ns)   : 1153436
97.00 percentile latency (ns)   : 1182930
99.00 percentile latency (ns)   : 1484354
99.90 percentile latency (ns)   : 5616578
"""


def test_summary_fallback_when_detail_log_is_missing(agent, tmp_path):
    (tmp_path / "mlperf_log_summary.txt").write_text(SUMMARY_6_0_17)
    values, summary_path, detail_path = agent.loadgen_logs.read_results(str(tmp_path))
    assert not os.path.exists(detail_path) and os.path.exists(summary_path)
    assert values["result_validity"] == "VALID"
    assert values["result_50.00_percentile_latency_ns"] == 1122208
    assert values["result_99.90_percentile_latency_ns"] == 5616578
    assert values["result_qps_with_loadgen_overhead"] == 864.66
    # the headline "90.0th percentile" line is not mistaken for the detailed one
    assert "result_90.0_percentile_latency_ns" not in values
    sut = types.SimpleNamespace(
        latencies_ns=[1000000, 2000000], first_issue_ns=0, last_complete_ns=10**9, completed=2, queries=2
    )
    result = agent.loadgen_driver._result(
        "SingleStream", 1, values, sut, [1000], {}, summary_path, detail_path
    )
    assert result["latency_ms"]["p50"] == 1.122208
    assert result["latency_ms"]["mean"] == 1.150246
    assert set(result["latency_source"].values()) == {"loadgen"}
    assert result["throughput_ips"] == 864.66
    assert result["query_count"] == 2  # not in the summary: SUT-side count


def test_detail_log_wins_and_missing_figures_are_marked_sut(agent, tmp_path):
    (tmp_path / "mlperf_log_summary.txt").write_text(SUMMARY_6_0_17)
    (tmp_path / "mlperf_log_detail.txt").write_text(
        ':::MLLOG {"key": "result_mean_latency_ns", "value": 2000000, "time_ms": 1.0}\n'
        "garbage line\n"
        ':::MLLOG {"key": "result_query_count", "value": 7}\n'
    )
    values, summary_path, detail_path = agent.loadgen_logs.read_results(str(tmp_path))
    assert values["result_mean_latency_ns"] == 2000000 and values["result_query_count"] == 7
    del values["result_95.00_percentile_latency_ns"]
    sut = types.SimpleNamespace(
        latencies_ns=[3000000] * 5, first_issue_ns=0, last_complete_ns=10**9, completed=5, queries=5
    )
    result = agent.loadgen_driver._result("SingleStream", 1, values, sut, [], {}, summary_path, detail_path)
    assert result["latency_ms"]["mean"] == 2.0
    assert result["latency_ms"]["p95"] == 3.0 and result["latency_source"]["p95"] == "sut"
    assert result["latency_source"]["p50"] == "loadgen"
    assert result["query_count"] == 7


def test_no_loadgen_output_is_an_infra_error(agent, tmp_path):
    values, summary_path, detail_path = agent.loadgen_logs.read_results(str(tmp_path))
    assert values == {}
    sut = types.SimpleNamespace(
        latencies_ns=[], first_issue_ns=None, last_complete_ns=None, completed=0, queries=0
    )
    with pytest.raises(agent.backends_base.InfraError, match="LoadGen wrote no results"):
        agent.loadgen_driver._result("Offline", 1, values, sut, [], {}, summary_path, detail_path)


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_run_test_with_a_stub_backend(agent, tmp_path, scenario):
    backend = stub_backend(agent, shape=(None, 4), delay_s=0.0002)
    result = agent.loadgen_driver.run_test(
        backend,
        scenario,
        batch_size=3,
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={"min_duration_ms": 200, "min_query_count": 16},
        sample_count=8,
        warmup_queries=4,
    )
    assert set(backend.seen) == {(3, 4)}
    assert result["warmup"]["queries"] == 4
    assert backend.calls == 4 + result["sample_count"]  # every issued sample ran exactly once
    assert result["samples_total"] == result["sample_count"]
    assert result["result_valid"] is True, result["loadgen"]["invalid_reason"]
    assert all(v == "loadgen" for v in result["latency_source"].values())
    lat = result["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert result["loadgen"]["effective"]["performance_sample_count"] == 8
    if scenario == "SingleStream":
        assert result["query_count"] == result["sample_count"] >= 16
        assert lat["min"] >= 0.2  # every query sleeps 0.2 ms inside LoadGen's window
    else:
        assert result["query_count"] == 1
        # Offline latency is LoadGen's "query issue -> sample done": the last sample sees ~ the whole run.
        assert lat["max"] >= 200.0


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Offline"])
def test_a_slow_warmup_does_not_leave_the_test_too_short(agent, tmp_path, scenario):
    """Warmup inferences 20x slower than the steady state (a noisy host): the pace guessed from them
    leaves LoadGen too few queries for min_duration_ms. The driver runs once more, paced from what the
    first test measured, and that one fills min_duration_ms; the first test is on record."""
    backend = stub_backend(agent, shape=(None, 4), delay_s=0.0005)
    fast_predict = backend.predict

    def predict(batch):
        if backend.calls < 3:  # the three warmup calls
            time.sleep(0.01)
        return fast_predict(batch)

    backend.predict = predict
    result = agent.loadgen_driver.run_test(
        backend,
        scenario,
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={"min_duration_ms": 300, "min_query_count": 8, "multi_stream_samples_per_query": 2},
        sample_count=8,
        warmup_queries=3,
    )
    assert result["loadgen"]["min_duration_met"] is True
    if scenario != "MultiStream":  # MultiStream's p99 needs more queries than 0.3 s gives (early stopping)
        assert result["result_valid"] is True, result["loadgen"]["invalid_reason"]
    assert result["duration_s"] >= 0.29  # the SUT-side window starts a hair after LoadGen's clock
    settings = result["loadgen"]["settings"]
    rerun = settings["rerun"]
    assert rerun["first_duration_s"] < 0.3 and "min_duration_ms" in rerun["why"]
    assert rerun["first_invalid_reason"]
    if scenario != "MultiStream":
        pace = "offline_expected_qps" if scenario == "Offline" else "single_stream_expected_latency"
        assert settings[f"{pace}_source"] == "rerun"
    # LoadGen's logs are the second test's (the stored attachments match the stored figures).
    assert "Min duration satisfied : Yes" in result["loadgen_logs"]["summary"]["text"]


def test_a_configured_pace_is_not_second_guessed(agent, tmp_path):
    result = agent.loadgen_driver.run_test(
        stub_backend(agent),
        "Offline",
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={"min_duration_ms": 200, "min_query_count": 1, "offline_expected_qps": 10},
        sample_count=4,
        warmup_queries=1,
    )
    assert result["result_valid"] is False  # too short, as configured: reported, not re-run
    assert "rerun" not in result["loadgen"]["settings"]


@pytest.mark.parametrize("scenario", ["SingleStream", "Offline"])
def test_failure_inside_loadgen_is_a_model_error_not_a_crash(agent, tmp_path, scenario):
    # Warmup (1 call) passes; the 6th call, inside a LoadGen callback, raises.
    backend = stub_backend(agent, fail_after=6)
    with pytest.raises(agent.backends_base.ModelError, match="device lost on call 6"):
        agent.loadgen_driver.run_test(
            backend,
            scenario,
            log_dir=str(tmp_path / "lg"),
            loadgen_cfg={"min_duration_ms": 50, "min_query_count": 8, "offline_expected_qps": 100},
            sample_count=4,
            warmup_queries=1,
        )
    assert backend.calls == 6  # after the failure no more inferences are attempted
    # LoadGen itself finished cleanly and can run again in the same process.
    ok = agent.loadgen_driver.run_test(
        stub_backend(agent),
        scenario,
        log_dir=str(tmp_path / "lg2"),
        loadgen_cfg={"min_duration_ms": 50, "min_query_count": 8},
        sample_count=4,
        warmup_queries=1,
    )
    assert ok["sample_count"] >= 1


def test_target_latency_and_expected_qps_from_config(agent):
    import mlperf_loadgen as lg

    ss, ss_record = agent.loadgen_scenarios.build_settings(
        lg, "SingleStream", {"target_latency_ms": 2.5, "max_query_count": 100}, [10**6], 16
    )
    assert ss_record["single_stream_expected_latency_ns"] == 2500000
    assert ss_record["single_stream_expected_latency_source"] == "config"
    assert ss.max_query_count == 100 and ss.single_stream_expected_latency_ns == 2500000
    off, off_record = agent.loadgen_scenarios.build_settings(
        lg, "Offline", {"offline_expected_qps": 50}, [10**6], 16
    )
    assert off.offline_expected_qps == 50 and off_record["offline_expected_qps_source"] == "config"
    # From warmup: fastest warmup 1 ms -> 1000/s, with 50 % head-room.
    _, est = agent.loadgen_scenarios.build_settings(lg, "Offline", {}, [2 * 10**6, 10**6], 16)
    assert est["offline_expected_qps"] == pytest.approx(1500.0)
    _, est = agent.loadgen_scenarios.build_settings(lg, "SingleStream", {}, [2 * 10**6, 10**6], 16)
    assert est["single_stream_expected_latency_ns"] == 500000  # half the fastest: never more than real


def test_normalize_config_defaults_and_types(agent):
    cfg = agent.harness.normalize_config(
        {"artifact": "/m.onnx", "backend": "onnxruntime_cpu", "scenario": "Offline"}
    )
    assert cfg["batch_size"] == 1 and cfg["warmup_queries"] == 10 and cfg["sample_count"] == 64
    assert cfg["seed"] == 0 and cfg["threads"] is None and cfg["log_dir"] is None and cfg["sensors"] == []
    assert cfg["loadgen"] == {
        "min_duration_ms": 2000,
        "min_query_count": 64,
        "max_query_count": 0,
        "target_latency_ms": None,
        "offline_expected_qps": None,
        "multi_stream_samples_per_query": 8,
        "multi_stream_target_latency_percentile": 99.0,
        "server_target_qps": None,
        "server_target_latency_ms": 100.0,
        "server_target_latency_percentile": 99.0,
        "server_search_probes": 6,
    }
    base = {"artifact": "/m.onnx", "backend": "onnxruntime_cpu", "scenario": "Offline"}
    for bad in (
        {"batch_size": True},
        {"threads": 0},
        {"loadgen": {"min_duration_ms": "2s"}},
        {"sample_count": 1.5},
    ):
        with pytest.raises(agent.backends_base.InfraError):
            agent.harness.normalize_config(dict(base, **bad))


def test_harness_run_reports_infra_error_without_raising(agent, tmp_path):
    doc, code = agent.harness.run(
        {"artifact": str(tmp_path / "x.onnx"), "backend": "onnxruntime_cpu", "scenario": "Offline"}
    )
    assert code == 1
    assert doc["status"] == "error" and doc["error"]["kind"] == "infra"
    assert list(doc) == list(agent.protocol.REPORT_KEYS)
    assert doc["environment"]["agent_version"] == "1"
