"""The four LoadGen scenarios through the agent: MultiStream samples per query, the bounded Server search
(against a backend whose service time we set), LoadGen's logs in the report, every scenario through the
harness on a tiny ONNX model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.workers.agent.agent_modules import imported, module


@pytest.fixture(scope="module")
def agent():
    with imported() as ns:
        ns.server_search = module("server_search")
        yield ns


def sleeping_backend(agent, service_s):
    """A single-queue device: every predict takes ``service_s`` (sleep), and never two at once."""

    class Sleeper(agent.backends_base.Backend):
        name = "sleeper"
        runtime = "numpy"

        def __init__(self):
            self.calls = 0
            self.concurrent = 0
            self.max_concurrent = 0
            self.lock = threading.Lock()

        @property
        def input_shape(self):
            return (None, 4)

        @property
        def input_dtype(self):
            return np.dtype(np.float32)

        def predict(self, batch):
            with self.lock:
                self.calls += 1
                self.concurrent += 1
                self.max_concurrent = max(self.max_concurrent, self.concurrent)
            time.sleep(service_s)
            with self.lock:
                self.concurrent -= 1
            return batch.sum(axis=1)

    return Sleeper()


# --------------------------------------------------------------------------- the search, pure logic


@pytest.mark.parametrize("capacity", [3.0, 97.0, 1000.0, 40000.0])
@pytest.mark.parametrize("probes", [1, 3, 6, 10])
def test_search_is_bounded_and_never_answers_a_failing_qps(agent, capacity, probes):
    calls = []

    def probe(qps):
        calls.append(qps)
        return {"passed": qps <= capacity}

    best, record = agent.server_search.search(probe, 100.0, probes)
    assert len(calls) == len(record) <= probes
    assert [p["step"] for p in record] == list(range(1, len(record) + 1))
    if best is not None:
        assert best["passed"] and best["qps"] <= capacity
        assert best["qps"] == max(p["qps"] for p in record if p["passed"])


def test_search_converges_on_the_threshold_with_enough_probes(agent):
    best, record = agent.server_search.search(lambda q: {"passed": q <= 321.0}, 200.0, 12)
    assert best is not None and 321.0 / best["qps"] < 1.06
    assert len(record) < 12  # stops once lo and hi are within 5 %


def test_search_stops_at_an_unreachable_probe(agent):
    """A board slower than the bound (Pynq-Z2 resnet18 INT8: 48 ms a query, 10 ms bound): one probe, not a
    halving series whose probes double in length until the farm's timeout."""
    calls = []

    def probe(qps):
        calls.append(qps)
        return {"passed": False, "unreachable": True}

    best, record = agent.server_search.search(probe, 14.6, 6)
    assert best is None and calls == [14.6] and len(record) == 1


def test_search_goes_on_while_lower_loads_may_pass(agent):
    best, record = agent.server_search.search(lambda q: {"passed": q <= 10.0, "unreachable": False}, 100.0, 6)
    assert best is not None and best["qps"] <= 10.0 and len(record) > 1


def test_capped_start_only_when_the_warmup_is_above_the_bound(agent):
    cap = agent.server_search.capped_start
    assert cap(500.0, 2 * 10**6, 10.0) == (500.0, None)  # 2 ms inferences: the bound may be met
    qps, why = cap(500.0, 48 * 10**6, 10.0)  # 48 ms inferences: a light load, one short probe
    assert qps == pytest.approx(0.7 * 1000 / 48) and "48 ms" in why and "10 ms bound" in why
    assert cap(1.0, 48 * 10**6, 10.0) == (1.0, None)  # already light: left as configured
    assert cap(500.0, None, 10.0) == (500.0, None)


def test_search_start_qps(agent):
    assert agent.server_search.start_qps(50, 10**6) == (50.0, "config")
    qps, source = agent.server_search.start_qps(None, 2 * 10**6)
    assert qps == pytest.approx(0.7 * 500) and source.startswith("warmup")


# --------------------------------------------------------------------------- LoadGen, in-process


def test_multi_stream_queries_hold_samples_per_query(agent, tmp_path):
    backend = sleeping_backend(agent, 0.0005)
    result = agent.loadgen_driver.run_test(
        backend,
        "MultiStream",
        batch_size=2,
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={"min_duration_ms": 200, "min_query_count": 16, "multi_stream_samples_per_query": 3},
        sample_count=8,
        warmup_queries=2,
    )
    assert result["query_count"] >= 16
    assert result["sample_count"] == 3 * result["query_count"]
    assert backend.calls == 2 + result["sample_count"]
    assert result["loadgen"]["settings"]["multi_stream_samples_per_query"] == 3
    assert result["loadgen"]["effective"]["samples_per_query"] == 3
    assert result["headline"]["name"] == "latency_ms_p99"
    assert result["headline"]["value"] == result["latency_ms"]["p99"]
    # LoadGen's per-query latency covers all three inferences of a query
    assert result["latency_ms"]["min"] >= 3 * 0.5
    assert result["throughput_ips"] > 0 and result["throughput_source"] == "sut"


def test_server_search_finds_a_qps_under_the_bound(agent, tmp_path):
    service_s, bound_ms = 0.002, 50.0
    backend = sleeping_backend(agent, service_s)
    result = agent.loadgen_driver.run_test(
        backend,
        "Server",
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={
            "min_duration_ms": 400,
            "min_query_count": 32,
            "server_target_latency_ms": bound_ms,
            "server_search_probes": 5,
        },
        sample_count=8,
        warmup_queries=5,
    )
    search = result["server_search"]
    assert 1 <= len(search["probes"]) <= 5
    assert backend.max_concurrent == 1  # a single-queue device: one inference at a time
    assert search["found"], search["probes"]
    assert search["latency_ms_p99_at_max"] <= bound_ms
    assert result["latency_ms"]["p99"] == search["latency_ms_p99_at_max"]
    assert result["headline"] == {"name": "server_qps_max", "value": search["qps_max"], "unit": "1/s"}
    capacity = 1.0 / service_s  # at best; sleep overshoots, so the real one is lower
    # Generous: the answer lies between a fifth of the capacity and the capacity (plus noise).
    assert 0.2 * capacity <= search["qps_max"] <= 1.1 * capacity
    for p in search["probes"]:
        if p["passed"]:
            assert p["qps"] <= search["qps_max"]
        assert (tmp_path / "lg" / f"server-probe-{p['step']}" / "mlperf_log_summary.txt").is_file()
    assert result["loadgen"]["settings"]["server_target_qps"] == pytest.approx(search["qps_max"])
    assert "Server" in result["loadgen_logs"]["summary"]["text"]


def test_server_bound_below_the_service_time_finds_nothing(agent, tmp_path):
    backend = sleeping_backend(agent, 0.003)
    result = agent.loadgen_driver.run_test(
        backend,
        "Server",
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={
            "min_duration_ms": 100,
            "min_query_count": 8,
            "server_target_latency_ms": 1.0,
            "server_search_probes": 2,
        },
        sample_count=4,
        warmup_queries=2,
    )
    search = result["server_search"]
    # One probe: its service time alone is above the bound, so no lower load can pass (no second probe).
    assert not search["found"] and search["qps_max"] is None and len(search["probes"]) == 1
    assert search["unreachable"] and search["probes"][0]["service_ms_at_percentile"] > 1.0
    assert search["note"].startswith("no load meets the 1 ms bound: one query takes")
    assert search["first_qps"] <= 0.7 * 1000 / 3.0  # a light load: the one probe is short
    assert result["headline"]["value"] is None


def test_logs_are_capped_with_a_marker(agent, tmp_path):
    (tmp_path / "mlperf_log_summary.txt").write_text("short summary\n")
    (tmp_path / "mlperf_log_detail.txt").write_text("x" * 5000 + "\nRESULT AT THE END\n")
    logs = agent.loadgen_logs.read_log_texts(
        str(tmp_path / "mlperf_log_summary.txt"), str(tmp_path / "mlperf_log_detail.txt"), {"detail": 2000}
    )
    assert logs["summary"] == {
        "name": "mlperf_log_summary.txt",
        "text": "short summary\n",
        "bytes": 14,
        "truncated": False,
        "cap_bytes": agent.loadgen_logs.LOG_CAPS["summary"],
    }
    detail = logs["detail"]
    assert detail["truncated"] and detail["bytes"] == 5019 and len(detail["text"].encode()) <= 2000
    assert "bytes of this log cut here" in detail["text"] and detail["text"].endswith("RESULT AT THE END\n")


@pytest.mark.parametrize(
    "bad",
    [
        {"multi_stream_samples_per_query": 0},
        {"server_target_latency_percentile": 100},
        {"multi_stream_target_latency_percentile": 0},
        {"server_target_qps": -5},
        {"server_target_latency_ms": 0},
        {"server_search_probes": 0},
    ],
)
def test_config_settings_loadgen_would_reject(agent, bad):
    base = {"artifact": "/m.onnx", "backend": "onnxruntime_cpu", "scenario": "Server"}
    with pytest.raises(agent.backends_base.InfraError, match=next(iter(bad))):
        agent.harness.normalize_config(dict(base, loadgen=bad))


def test_config_server_bound_defaults(agent):
    cfg = agent.harness.normalize_config(
        {"artifact": "/m.onnx", "backend": "onnxruntime_cpu", "scenario": "Server",
         "loadgen": {"server_target_latency_ms": None}}
    )  # fmt: skip
    assert cfg["loadgen"]["server_target_latency_ms"] == 100.0
    assert cfg["loadgen"]["multi_stream_samples_per_query"] == 8
    assert cfg["loadgen"]["server_search_probes"] == 6


# --------------------------------------------------------------------------- the harness, tiny model


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_every_scenario_through_the_harness(agent, tmp_path: Path, tiny_onnx: Path, scenario):
    doc, code = agent.harness.run(
        {
            "artifact": str(tiny_onnx),
            "backend": "onnxruntime_cpu",
            "scenario": scenario,
            "threads": 1,
            "sample_count": 8,
            "warmup_queries": 5,
            "log_dir": str(tmp_path / "lg"),
            "loadgen": {
                "min_duration_ms": 150,
                "min_query_count": 16,
                "multi_stream_samples_per_query": 4,
                "server_search_probes": 2,
            },
        }
    )
    assert code == 0, doc["error"]
    assert list(doc) == list(agent.protocol.REPORT_KEYS)
    assert doc["status"] == "ok" and doc["scenario"] == scenario
    assert doc["throughput_ips"] > 0
    logs = doc["loadgen_logs"]
    assert f"Scenario : {scenario}" in logs["summary"]["text"]
    assert ":::MLLOG" in logs["detail"]["text"] and not logs["detail"]["truncated"]
    expected = {
        "SingleStream": "latency_ms_p90",
        "MultiStream": "latency_ms_p99",
        "Server": "server_qps_max",
        "Offline": "throughput_ips",
    }[scenario]
    assert doc["headline"]["name"] == expected
    if scenario == "MultiStream":
        assert doc["sample_count"] == 4 * doc["query_count"]
    if scenario == "Server":
        assert len(doc["server_search"]["probes"]) <= 2
        assert doc["headline"]["value"] is None or doc["headline"]["value"] > 0
    else:
        assert doc["server_search"] is None
        assert doc["headline"]["value"] > 0
