"""MultiStream and Server on an emulated board: it paces every inference to the profile's single-thread
latency and serves one inference at a time (a single-queue device), so Server's answer sits below
1 / latency, never near the multi-thread fps. Wall times only as ratios to the profile."""

from __future__ import annotations

import pytest

from tests.workers.agent import agent_modules
from tests.workers.agent.test_backend_emulated import PROFILE, backend_for, save_model

LATENCY_MS = 4.0  # PROFILE's single-thread latency; its fps_mt is 500/s (2 ms per inference)


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        ns.emulated = agent_modules.module("backends.emulated")
        yield ns


def test_emulated_server_is_a_single_queue_device(agent, tmp_path):
    assert PROFILE["latency_ms"] == LATENCY_MS and PROFILE["fps_mt"] == 500.0
    backend = backend_for(agent, save_model(tmp_path / "m.onnx"), scenario="Server")
    result = agent.loadgen_driver.run_test(
        backend,
        "Server",
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={
            "min_duration_ms": 300,
            "min_query_count": 32,
            "server_target_latency_ms": 40 * LATENCY_MS,
            "server_search_probes": 4,
        },
        sample_count=4,
        warmup_queries=4,
    )
    search = result["server_search"]
    assert search["found"], search["probes"]
    capacity = 1000.0 / LATENCY_MS  # 250/s: one paced inference at a time
    assert 0.2 * capacity <= search["qps_max"] <= 1.1 * capacity < PROFILE["fps_mt"]
    assert all(p["completed_qps"] <= 1.1 * capacity for p in search["probes"])
    assert backend.emulation()["paced_to"] == "single-thread latency"
    backend.close()


def test_emulated_multistream_query_takes_samples_per_query_inferences(agent, tmp_path):
    backend = backend_for(agent, save_model(tmp_path / "m.onnx"), scenario="MultiStream")
    result = agent.loadgen_driver.run_test(
        backend,
        "MultiStream",
        log_dir=str(tmp_path / "lg"),
        loadgen_cfg={"min_duration_ms": 200, "min_query_count": 8, "multi_stream_samples_per_query": 3},
        sample_count=4,
        warmup_queries=2,
    )
    assert result["sample_count"] == 3 * result["query_count"]
    ratio = result["latency_ms"]["p50"] / (3 * LATENCY_MS)
    assert 0.98 <= ratio <= 1.5  # three paced inferences back to back, plus LoadGen and Python
    backend.close()
