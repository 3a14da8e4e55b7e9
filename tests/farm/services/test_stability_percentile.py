"""Stability decides on the headline the agent reports: MultiStream's latency at the sweep's configured
percentile (``loadgen.multi_stream_target_latency_percentile``), not always p99."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from farm.db.models import RunRow
from farm.db.session import session_scope
from farm.services import run as run_service
from farm.services import stability
from farm.services.submit import submit_sweep, wait_for
from farm.transport.base import AgentOutcome
from farm.transport.local import LocalTransport
from tests.conftest import write_sweep

SWEEP = """\
name: ms
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
scenarios: [MultiStream]
loadgen:
  min_duration_ms: 100
  min_query_count: 8
{percentile}stability: {{cv_threshold_pct: 3.5, min_repeats: 3, max_repeats: 4}}
"""

# p90 barely moves; p99 swings by 20 %: the percentile the sweep names decides
P90S = [10.0, 10.1, 9.95, 10.05]
P99S = [12.0, 18.0, 12.0, 18.0]


class SteadyP90NoisyP99(LocalTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def run_agent(self, config, timeout_s) -> AgentOutcome:
        i, self.calls = self.calls, self.calls + 1
        p90, p99 = P90S[i % len(P90S)], P99S[i % len(P99S)]
        report = {
            "status": "ok",
            "scenario": config["scenario"],
            "latency_ms": {"p50": 9.0, "p90": p90, "p99": p99},
            "throughput_ips": 400.0,
            "result_valid": True,
            "samples_ms": [9.0] * 10,
            "environment": {"runtime": "onnxruntime", "runtime_version": "1.x"},
        }
        return AgentOutcome(0, json.dumps(report), "")


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> SteadyP90NoisyP99:
    fake = SteadyP90NoisyP99()
    monkeypatch.setattr(run_service, "transport_for", lambda inventory, board: fake)
    return fake


def _summary(tmp_path: Path, settings, onnx: Path, percentile: str) -> tuple[dict, list[RunRow]]:
    sub = submit_sweep(settings, write_sweep(tmp_path, SWEEP.format(onnx=onnx, percentile=percentile)))
    assert wait_for(settings, sub, lambda _: None)["state"] == "done"
    with session_scope(settings.db_url) as s:
        (row,) = stability.summary(s, sub.sweep_id)
        runs = list(s.scalars(select(RunRow).order_by(RunRow.repeat)))
        s.expunge_all()
    return row, runs


def test_a_multistream_sweep_at_p90_decides_on_p90(tmp_path, farm_env, tiny_onnx, agent) -> None:
    row, runs = _summary(tmp_path, farm_env, tiny_onnx, "  multi_stream_target_latency_percentile: 90\n")
    assert row["metric"] == "latency_ms_p90" and row["state"] == "stable"
    assert len(runs) == 3 and agent.calls == 3 and all(not r.flags for r in runs)


def test_the_default_percentile_still_decides_on_p99(tmp_path, farm_env, tiny_onnx, agent) -> None:
    row, runs = _summary(tmp_path, farm_env, tiny_onnx, "")
    assert row["metric"] == "latency_ms_p99" and row["state"] == "unstable"
    assert len(runs) == 4 and all(r.flags[0].startswith("unstable: cv ") for r in runs)


def test_headline_value_follows_the_percentile() -> None:
    values = {"latency_ms_p90": 1.0, "latency_ms_p95": 2.0, "latency_ms_p99": 7.0, "throughput_ips": 5.0}
    assert stability.headline("MultiStream", values) == 7.0
    assert stability.headline("MultiStream", values, 95.0) == 2.0
    assert stability.headline("MultiStream", values, 99.9) is None  # not stored: no value, never another
    assert stability.headline("Offline", values, 95.0) == 5.0
    assert stability.headline_name("MultiStream", 90.0) == "latency_ms_p90"
    assert stability.headline_name("Batch") is None
