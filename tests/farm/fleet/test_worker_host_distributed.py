"""A worker host for real: one `farm worker --board node-0 --board node-1,node-2` process, Redis and three
sshd boards. It runs a sweep on all three boards at once, each result stored once; then a drained board
takes no job while the other two keep working."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from farm.db.models import BoardRow, JobRow, RunRow
from farm.db.session import session_scope
from tests.conftest import TINY_SWEEP
from tests.farm.fleet.test_fleet_distributed import Cluster, _submit, _wait_for, _wait_for_workers

pytestmark = [pytest.mark.redis, pytest.mark.slow]

BOARDS = ("node-0", "node-1", "node-2")
NODE = "host@test"
#: 9 short run jobs (one compile): fp32, SingleStream, 9 repeats of 100 ms
NINE = (
    TINY_SWEEP.replace("[fp32, int8]", "[fp32]")
    .replace(", Offline", "")
    .replace("min_duration_ms: 200", "min_duration_ms: 100")
    .replace("min_query_count: 32", "min_query_count: 8")
    + "repeats: 9\n"
)


@pytest.fixture
def host_cluster(tmp_path: Path, ssh_lab, redis_url: str, farm_env) -> Iterator[Cluster]:
    servers = ssh_lab(len(BOARDS))
    env = {**os.environ}
    env["FARM_BROKER_URL"] = redis_url.rsplit("/", 1)[0] + "/13"
    env.update(
        FARM_DB_URL=farm_env.db_url,
        FARM_DATA_DIR=str(farm_env.data_dir),
        FARM_HEALTH_INTERVAL_S="2",  # a drained board gives its share up within a round
        FARM_AGENT_TIMEOUT_MARGIN_S="20",
    )
    subprocess.run(["redis-cli", "-u", env["FARM_BROKER_URL"], "FLUSHDB"], check=False, capture_output=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    c = Cluster(env, logs, servers)
    c.start("compile", "-Q", "compile")
    c.start("host", "--board", "node-0", "--board", "node-1,node-2")
    _wait_for_workers(farm_env.db_url, dict.fromkeys(BOARDS, NODE), c)
    _wait_for_checks(farm_env.db_url, c)
    yield c
    for node in list(c.procs):
        c.kill(node, signal.SIGTERM)


def _wait_for_checks(db_url: str, cluster: Cluster, timeout: float = 60) -> None:
    """Until each keeper's first check passed (its board takes jobs from then on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as s:
            checked = {b.name: b.last_health_ok for b in s.scalars(select(BoardRow))}
        if all(checked.get(b) for b in BOARDS):
            return
        time.sleep(0.2)
    raise AssertionError(f"boards not checked: {checked}\n{cluster.log_text()}")


def _run_jobs(db_url: str, sweep_id: str) -> list[JobRow]:
    with session_scope(db_url) as s:
        rows = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.kind == "run")))
        s.expunge_all()
        return rows


def _most_at_once(jobs: list[JobRow]) -> int:
    """The most jobs that were running at one moment (from their start and finish times)."""
    edges = sorted([(j.started_at, 1) for j in jobs] + [(j.finished_at, -1) for j in jobs])
    running = most = 0
    for _, step in edges:  # a finish sorts before a start at the same instant
        running += step
        most = max(most, running)
    return most


def test_one_process_drives_three_boards_at_once_and_a_drained_one_stops(
    host_cluster: Cluster, tmp_path: Path, tiny_onnx, farm_env
) -> None:
    """One cluster for both halves: starting it is most of the test's time."""
    sweep_id = _submit(host_cluster, tmp_path, NINE.format(onnx=tiny_onnx))
    status = _wait_for(host_cluster, sweep_id, timeout=180)
    assert status["state"] == "done" and status["runs_stored"] == 9, host_cluster.log_text()
    jobs = _run_jobs(farm_env.db_url, sweep_id)
    assert len(jobs) == 9 and {j.state for j in jobs} == {"done"}
    runs = _runs(farm_env.db_url, sweep_id)
    assert sorted(job_id for job_id, _ in runs) == sorted(j.id for j in jobs)  # each stored once
    assert {board for _, board in runs} == set(BOARDS)  # all three boards worked
    assert _most_at_once(jobs) >= 2, [(j.board_name, j.started_at, j.finished_at) for j in jobs]
    listed = json.loads(host_cluster.farm("fleet", "list", "--format", "json").stdout)
    assert {b["worker"] for b in listed} == {NODE} and {b["state"] for b in listed} == {"idle"}

    # node-1 is drained: node-0 and node-2 take every job of the next sweep, none is lost or failed
    drained = host_cluster.farm("fleet", "drain", "node-1")
    assert drained.returncode == 0, drained.stderr
    again = _submit(host_cluster, tmp_path, NINE.replace("repeats: 9", "repeats: 6").format(onnx=tiny_onnx))
    status = _wait_for(host_cluster, again, timeout=180)
    assert status["state"] == "done" and status["runs_stored"] == 6, host_cluster.log_text()
    runs = _runs(farm_env.db_url, again)
    assert len(runs) == len({job_id for job_id, _ in runs}) == 6
    assert {board for _, board in runs} == {"node-0", "node-2"}
    assert {j.state for j in _run_jobs(farm_env.db_url, again)} == {"done"}
    with session_scope(farm_env.db_url) as s:
        assert s.get(BoardRow, "node-1").state == "maintenance"


def _runs(db_url: str, sweep_id: str) -> list[tuple[int, str]]:
    """(job id, board) of every stored run of the sweep."""
    with session_scope(db_url) as s:
        return [
            tuple(r)
            for r in s.execute(select(RunRow.job_id, RunRow.board_name).where(RunRow.sweep_id == sweep_id))
        ]
