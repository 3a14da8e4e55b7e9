"""The fleet for real: Redis, one `farm worker --board` process per sshd board, a compile worker, and faults
(a worker killed outright mid-job, an agent that hangs). Every run is stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from farm.db.models import BoardEventRow, BoardRow, JobRow, RunRow
from farm.db.session import session_scope
from farm.lab.sshd import keygen
from tests.conftest import TINY_SWEEP, write_sweep

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class Cluster:
    def __init__(self, env: dict, logs: Path, servers: list) -> None:
        self.env, self.logs, self.procs = env, logs, {}
        self.servers = {f"node-{i}": srv for i, srv in enumerate(servers)}
        self.work_dirs = {f"node-{i}": str(srv.work_dir) for i, srv in enumerate(servers)}

    def agent_pids(self, board: str) -> list[int]:
        """The agent processes on ``board`` (not their guards): argv is python, <work_dir>/agent/.../farm_agent.py, ..."""
        prefix = (self.work_dirs[board] + "/agent/").encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if len(argv) > 1 and argv[1].startswith(prefix) and argv[1].endswith(b"/farm_agent.py"):
                    found.append(int(entry))
        return found

    def start(self, node: str, *args: str) -> None:
        log = open(self.logs / f"{node}.log", "a")  # noqa: SIM115 - the process owns it
        self.procs[node] = subprocess.Popen(
            [sys.executable, "-m", "farm.cli.main", "worker", *args, "-n", f"{node}@test", "-l", "INFO"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, node: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(node)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def farm(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "farm.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def cluster(tmp_path: Path, ssh_lab, redis_url: str, farm_env) -> Iterator[Cluster]:
    servers = ssh_lab(2)
    env = {**os.environ}
    env["FARM_BROKER_URL"] = redis_url.rsplit("/", 1)[0] + "/14"
    env.update(
        FARM_DB_URL=farm_env.db_url,
        FARM_DATA_DIR=str(farm_env.data_dir),
        FARM_HEALTH_INTERVAL_S="1",
        FARM_VISIBILITY_TIMEOUT_S="12",
        FARM_AGENT_TIMEOUT_MARGIN_S="6",
        FARM_BAD_COOLDOWN_S="60",  # a board that failed a job stays out while its job is retried
        FARM_LEASE_S="8",  # a killed worker's job is taken back by its redelivery (12 s), not after 60 s
    )
    subprocess.run(["redis-cli", "-u", env["FARM_BROKER_URL"], "FLUSHDB"], check=False, capture_output=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    c = Cluster(env, logs, servers)
    c.start("compile", "-Q", "compile")
    for board in ("node-0", "node-1"):
        c.start(board, "--board", board)
    _wait_for_workers(farm_env.db_url, {"node-0": "node-0@test", "node-1": "node-1@test"}, c)
    yield c
    for node in list(c.procs):
        c.kill(node, signal.SIGTERM)


def _wait_for_workers(db_url: str, expected: dict[str, str], cluster: Cluster, timeout: float = 120) -> None:
    """Until every board worker is ready (it records itself on its board): a worker that is still
    importing when a sweep starts would leave all the jobs to the other one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as s:
            bound = {b.name: b.worker for b in s.scalars(select(BoardRow))}
        if all(bound.get(board) == worker for board, worker in expected.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"board workers not ready: {bound}\n{cluster.log_text()}")


def _wait_for(cluster: Cluster, sweep_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(cluster.farm("status", sweep_id, "--format", "json").stdout)
        if status["state"] != "running":
            return status
        time.sleep(1)
    raise AssertionError(f"sweep {sweep_id} still running:\n{cluster.log_text()}")


def _running_job(db_url: str, timeout: float = 120) -> JobRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as s:
            job = s.scalars(select(JobRow).where(JobRow.kind == "run", JobRow.state == "running")).first()
            if job is not None and job.board_name:
                s.expunge(job)
                return job
        time.sleep(0.2)
    raise AssertionError("no run job started")


def _submit(cluster: Cluster, tmp_path: Path, body: str) -> str:
    out = cluster.farm("submit", str(write_sweep(tmp_path, body)), "--no-wait")
    assert out.returncode == 0, out.stderr
    return out.stdout.split("submitted sweep ")[1].split()[0]


def test_board_workers_share_the_queue(cluster: Cluster, tmp_path: Path, tiny_onnx, farm_env) -> None:
    body = TINY_SWEEP.format(onnx=tiny_onnx).replace("[fp32, int8]", "[fp32]") + "repeats: 4\n"
    status = _wait_for(cluster, _submit(cluster, tmp_path, body))
    assert status["state"] == "done" and status["runs_stored"] == 8, cluster.log_text()
    listed = json.loads(cluster.farm("fleet", "list", "--format", "json").stdout)
    assert {b["worker"] for b in listed} == {"node-0@test", "node-1@test"}
    assert {b["health"] for b in listed} == {"ok"}  # checked before the first job
    with session_scope(farm_env.db_url) as s:
        boards = list(s.scalars(select(RunRow.board_name)))
    assert len(boards) == 8 and set(boards) <= {"node-0", "node-1"}


def test_worker_killed_mid_job_is_redelivered_once(
    cluster: Cluster, tmp_path: Path, tiny_onnx, farm_env
) -> None:
    body = TINY_SWEEP.format(onnx=tiny_onnx).replace("[fp32, int8]", "[fp32]").replace(", Offline", "")
    body = body.replace("min_duration_ms: 200", "min_duration_ms: 4000")
    sweep_id = _submit(cluster, tmp_path, body)
    job = _running_job(farm_env.db_url)
    cluster.kill(job.board_name)  # kill -9 the whole worker (main process and pool) mid-job
    status = _wait_for(cluster, sweep_id)
    assert status["state"] == "done", cluster.log_text()
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(RunRow).where(RunRow.job_id == job.id)) == 1
        assert s.get(JobRow, job.id).attempts >= 2


def test_hung_agent_is_killed_and_the_job_moves(
    cluster: Cluster, tmp_path: Path, tiny_onnx, farm_env
) -> None:
    body = TINY_SWEEP.format(onnx=tiny_onnx).replace("[fp32, int8]", "[fp32]").replace(", Offline", "")
    # 3 s: room to find and stop the agent before its run ends, even on a loaded machine (1.5 s was not)
    body = body.replace("min_duration_ms: 200", "min_duration_ms: 3000")
    sweep_id = _submit(cluster, tmp_path, body)
    job = _running_job(farm_env.db_url)
    deadline = time.monotonic() + 30
    stopped: list[int] = []
    while not stopped and time.monotonic() < deadline:
        for pid in cluster.agent_pids(job.board_name):  # that board's agent (a session or a one-job process)
            os.kill(pid, signal.SIGSTOP)  # the agent hangs
            stopped.append(pid)
        time.sleep(0.05)
    assert stopped, "the agent process was not found"
    status = _wait_for(cluster, sweep_id)
    assert status["state"] == "done", cluster.log_text()
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(RunRow).where(RunRow.job_id == job.id)).one()
        assert run.board_name != job.board_name  # retried on the other board
        reasons = [e.reason for e in s.scalars(select(BoardEventRow).where(BoardEventRow.to_state == "bad"))]
    assert any("hung" in (r or "") for r in reasons), reasons
    for pid in stopped:  # the hung agent was killed, not left behind
        assert (
            not Path(f"/proc/{pid}").exists() or "T" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )


def test_host_key_changed_mid_sweep(cluster: Cluster, tmp_path: Path, tiny_onnx, farm_env) -> None:
    """The board is reinstalled while a sweep runs: it goes bad saying which key it offered and how to trust
    it, every job completes on the other board, and `farm fleet trust` + a check bring it back."""
    body = TINY_SWEEP.format(onnx=tiny_onnx).replace("[fp32, int8]", "[fp32]") + "repeats: 6\n"
    sweep_id = _submit(cluster, tmp_path, body)
    _stored_on(farm_env.db_url, "node-0")
    board = cluster.servers["node-0"]
    board.stop()  # reinstalled: a new host key on the same address and port
    board.host_key.unlink()
    board.host_pub.unlink()
    keygen(board.host_key, "reinstalled")
    board.start()

    status = _wait_for(cluster, sweep_id)
    assert status["state"] == "done" and status["runs_stored"] == 12, cluster.log_text()
    with session_scope(farm_env.db_url) as s:
        assert not list(s.scalars(select(JobRow).where(JobRow.state == "failed")))
    bad = _board_reason(farm_env.db_url, "node-0", "host key MISMATCH", cluster)
    assert bad.state == "bad" and "farm fleet trust node-0" in bad.state_reason

    assert "pinned in" in cluster.farm("fleet", "trust", "node-0", "--yes").stdout
    checked = cluster.farm("fleet", "check", "node-0")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[1].split()[:3] == ["node-0", "ok", "idle"]  # board, check, state now


def _stored_on(db_url: str, board: str, timeout: float = 180) -> None:
    """Until the board has stored a run (it is connected and working)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as s:
            if s.scalars(select(RunRow.id).where(RunRow.board_name == board)).first() is not None:
                return
        time.sleep(0.2)
    raise AssertionError(f"no run stored on {board}")


def _board_reason(db_url: str, board: str, text: str, cluster: Cluster, timeout: float = 60) -> BoardRow:
    """The board's row once its reason says ``text`` (its keeper's next check may be the one to say it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(db_url) as s:
            row = s.get(BoardRow, board)
            if row is not None and text in (row.state_reason or ""):
                s.expunge(row)
                return row
        time.sleep(0.2)
    raise AssertionError(f"{board} never said {text!r}:\n{cluster.log_text()}")
