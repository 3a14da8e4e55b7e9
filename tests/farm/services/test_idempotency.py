"""A redelivered or concurrently delivered job never produces a second result."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from farm.db.models import ArtifactRow, JobRow, RunRow
from farm.db.session import session_scope
from farm.inventory import load_inventory
from farm.services.results import store_result
from farm.services.run import run_run_job
from farm.services.submit import submit_sweep, wait_for
from farm.transport.base import AgentOutcome
from farm.transport.local import LocalTransport
from tests.conftest import TINY_SWEEP, write_sweep


def _finished_sweep(tmp_path: Path, settings, tiny_onnx: Path) -> str:
    body = TINY_SWEEP.format(onnx=tiny_onnx).replace("[fp32, int8]", "[fp32]").replace(", Offline", "")
    sub = submit_sweep(settings, write_sweep(tmp_path, body))
    assert wait_for(settings, sub, lambda _: None)["state"] == "done"
    return sub.sweep_id


def _runs(settings) -> int:
    with session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(RunRow))


class CountingTransport(LocalTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def run_agent(self, config, timeout_s) -> AgentOutcome:
        self.calls += 1
        return super().run_agent(config, timeout_s)


def test_redelivery_after_done_is_a_no_op(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    assert _runs(farm_env) == 1
    with session_scope(farm_env.db_url) as s:
        job_id = s.scalar(select(JobRow.id).where(JobRow.kind == "run"))
    transport = CountingTransport()
    assert run_run_job(farm_env, job_id, transport=transport) == "done"
    assert transport.calls == 0 and _runs(farm_env) == 1


def test_redelivery_while_marked_running_stores_once(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    """The worker died after storing but before acking: the job row may still say running on redelivery
    paths that race; the idempotency key keeps the second write out."""
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    with session_scope(farm_env.db_url) as s:
        job = s.scalars(select(JobRow).where(JobRow.kind == "run")).one()
        job.state = "running"  # as if the first delivery's bookkeeping never landed
        job_id = job.id
    transport = CountingTransport()
    assert run_run_job(farm_env, job_id, transport=transport) == "done"
    assert transport.calls == 1  # it measured again...
    assert _runs(farm_env) == 1  # ...but stored nothing new
    with session_scope(farm_env.db_url) as s:
        assert s.get(JobRow, job_id).state == "done"


def test_store_result_twice(tmp_path: Path, farm_env, tiny_onnx: Path) -> None:
    _finished_sweep(tmp_path, farm_env, tiny_onnx)
    board = load_inventory(farm_env.inventory_dir).boards[0]
    with session_scope(farm_env.db_url) as s:
        job = s.scalars(select(JobRow).where(JobRow.kind == "run")).one()
        artifact = s.scalars(select(ArtifactRow)).one()
        run = s.scalars(select(RunRow)).one()
        report = {"status": "ok", "latency_ms": {"p50": 1.0}, "throughput_ips": 5.0, "environment": {}}
        s.expunge_all()
    assert store_result(farm_env, job, artifact, board, "measured", json.loads(json.dumps(report))) is False
    assert _runs(farm_env) == 1
    with session_scope(farm_env.db_url) as s:
        assert s.get(RunRow, run.id).metrics  # the original metrics are intact
