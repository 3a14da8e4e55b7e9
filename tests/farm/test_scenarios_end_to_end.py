"""`farm submit` with MultiStream and Server on the measured CPU (embedded mode): scenario metrics stored,
LoadGen's logs kept as run attachments, exactly once even when the job is delivered again."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.db.models import BoardRow, JobRow, MetricRow, ProvenanceRow, RunAttachmentRow, RunRow
from farm.db.session import session_scope
from farm.services.run import run_run_job
from farm.transport.local import LocalTransport
from tests.conftest import write_sweep

SWEEP = """\
name: scenarios
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
batch_sizes: [1]
scenarios: [MultiStream, Server]
loadgen:
  min_duration_ms: 200
  min_query_count: 16
  multi_stream_samples_per_query: 4
  server_target_latency_ms: 50
  server_search_probes: 3
"""


def _attachments(db_url: str) -> list[tuple[int, str, int, str]]:
    with session_scope(db_url) as s:
        rows = s.execute(
            select(
                RunAttachmentRow.run_id,
                RunAttachmentRow.name,
                RunAttachmentRow.size_bytes,
                RunAttachmentRow.content,
            )
        ).all()
    return [tuple(r) for r in rows]


def test_submit_multistream_and_server(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    sweep = write_sweep(tmp_path, SWEEP.format(onnx=tiny_onnx))
    out = CliRunner().invoke(cli, ["submit", str(sweep)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "runs stored: 2" in out.output

    res = CliRunner().invoke(cli, ["results", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = {r["scenario"]: r for r in json.loads(res.output)}
    assert set(rows) == {"MultiStream", "Server"}
    ms, server = rows["MultiStream"], rows["Server"]
    assert 0 < ms["latency_ms_p50"] <= ms["latency_ms_p99"] and ms["throughput_ips"] > 0
    assert ms["server_qps_max"] is None
    assert server["server_qps_max"] > 0  # the tiny model answers far within 50 ms
    assert 0 < server["server_latency_ms_p99_at_max"] <= 50
    assert server["latency_ms_p99"] == server["server_latency_ms_p99_at_max"]

    with session_scope(farm_env.db_url) as s:
        runs = {r.scenario: r for r in s.scalars(select(RunRow))}
        prov = {p.run_id: p for p in s.scalars(select(ProvenanceRow))}
        env_ms = prov[runs["MultiStream"].id].environment
        env_server = prov[runs["Server"].id].environment
        names = set(s.scalars(select(MetricRow.name).where(MetricRow.run_id == runs["Server"].id)))
    assert env_ms["loadgen"]["settings"]["multi_stream_samples_per_query"] == 4
    assert env_ms["headline"]["name"] == "latency_ms_p99"
    search = env_server["server_search"]
    assert 1 <= len(search["probes"]) <= 3 and search["latency_bound_ms"] == 50
    assert search["qps_max"] == max(p["qps"] for p in search["probes"] if p["passed"])
    assert {"server_qps_max", "server_latency_ms_p99_at_max", "throughput_ips"} <= names
    assert env_server["loadgen_logs"]["detail"]["truncated"] is False
    assert "text" not in env_server["loadgen_logs"]["detail"]  # the text lives in the attachment only

    attached = _attachments(farm_env.db_url)
    assert sorted((run_id, name) for run_id, name, _, _ in attached) == sorted(
        (runs[sc].id, name)
        for sc in ("MultiStream", "Server")
        for name in ("mlperf_log_detail.txt", "mlperf_log_summary.txt")
    )
    for run_id, name, size, content in attached:
        assert size == len(content.encode()) > 0
        if name == "mlperf_log_summary.txt":
            scenario = "MultiStream" if run_id == runs["MultiStream"].id else "Server"
            assert f"Scenario : {scenario}" in content

    # A redelivered job (its row still says running) measures again but stores no second attachment.
    with session_scope(farm_env.db_url) as s:
        job = s.scalars(select(JobRow).where(JobRow.kind == "run", JobRow.scenario == "MultiStream")).one()
        job.state = "running"
        job_id = job.id
    assert run_run_job(farm_env, job_id, transport=LocalTransport()) == "done"
    assert sorted(a[:2] for a in _attachments(farm_env.db_url)) == sorted(a[:2] for a in attached)
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 2


def test_server_metrics_in_board_time_and_none_when_nothing_found() -> None:
    from farm.services.results import attachments, scenario_metrics

    found = {
        "emulation": {"time_scale": 0.5},
        "server_search": {"qps_max": 400.0, "latency_ms_p99_at_max": 6.0},
    }
    assert scenario_metrics(found) == [
        ("server_qps_max", 200.0, "1/s"),  # 400/s of wall time at half scale = 200/s of board time
        ("server_latency_ms_p99_at_max", 12.0, "ms"),
    ]
    assert scenario_metrics({"server_search": {"qps_max": None, "latency_ms_p99_at_max": None}}) == []
    assert scenario_metrics({}) == []
    logs = {
        "loadgen_logs": {"summary": {"name": "mlperf_log_summary.txt", "text": "a\x00b", "truncated": False}}
    }
    (only,) = attachments(logs)
    assert (only.name, only.content, only.size_bytes, only.media_type) == (
        "mlperf_log_summary.txt",
        "ab",
        2,
        "text/plain",
    )
    assert attachments({}) == [] and attachments({"loadgen_logs": {"detail": None}}) == []


def test_server_slower_than_its_bound_is_a_stored_run_and_a_healthy_board(
    tmp_path: Path, farm_env, tiny_onnx: Path
) -> None:
    """A bound no load can meet (1 us against the tiny model's tens of microseconds: the Pynq-Z2's 48 ms
    against 10 ms in miniature) ends after one probe with the reason, not in a timeout that marks the
    board bad."""
    sweep = write_sweep(
        tmp_path,
        SWEEP.format(onnx=tiny_onnx)
        .replace("[MultiStream, Server]", "[Server]")
        .replace("server_target_latency_ms: 50", "server_target_latency_ms: 0.001")
        .replace("server_search_probes: 3", "server_search_probes: 6"),
    )
    out = CliRunner().invoke(cli, ["submit", str(sweep)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "runs stored: 1" in out.output
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(RunRow)).one()
        search = s.get(ProvenanceRow, run.id).environment["server_search"]
        names = set(s.scalars(select(MetricRow.name).where(MetricRow.run_id == run.id)))
        boards = {b.name: (b.state, b.state_reason) for b in s.scalars(select(BoardRow))}
    assert len(search["probes"]) == 1 and search["unreachable"] and not search["found"]
    assert search["note"].startswith("no load meets the 0.001 ms bound: one query takes")
    assert "server_qps_max" not in names and "latency_ms_p99" in names  # the probe's own figures
    assert all(state == "idle" for state, _ in boards.values()), boards
