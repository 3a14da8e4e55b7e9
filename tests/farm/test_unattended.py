"""The database is the truth: each fault once, at small scale. Leases, the outbox and the reconciler put
back what a killed process, a lost message, a dead submitter or a dead broker left behind; Ctrl-C cancels
an embedded sweep; operators can cancel, retry and release."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from farm import leases
from farm.cli.main import cli
from farm.config import load_settings
from farm.db.models import BoardRow, JobRow, RunRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.fleet import states
from farm.inventory import load_inventory
from farm.publish import publish
from farm.reconciler import reconcile
from farm.services.run import run_run_job
from farm.services.submit import submit_sweep, wait_for
from farm.services.sweeps import create_sweep
from farm.sweep.load import load_sweep
from tests.conftest import TINY_SWEEP, stop_group, write_sweep

SLOW_SWEEP = """\
name: slow
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
batch_sizes: {batches}
scenarios: [SingleStream]
loadgen:
  min_duration_ms: {ms}
  min_query_count: 8
"""


def _jobs(db_url: str, sweep_id: str) -> list[JobRow]:
    with session_scope(db_url) as s:
        rows = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id).order_by(JobRow.id)))
        s.expunge_all()
        return rows


def _runs(db_url: str, sweep_id: str) -> int:
    with session_scope(db_url) as s:
        return len(list(s.scalars(select(RunRow.id).where(RunRow.sweep_id == sweep_id))))


def _written_not_published(settings, sweep_file: Path) -> str:
    """What a submitter that died between writing the sweep and publishing it leaves behind."""
    inventory = load_inventory(settings.inventory_dir)
    sweep_id, _ = create_sweep(settings.db_url, load_sweep(sweep_file, inventory), inventory)
    return sweep_id


def test_a_sweep_whose_submitter_died_before_publishing_is_finished_by_the_reconciler(
    tmp_path: Path, farm_env, tiny_onnx: Path
) -> None:
    sweep_id = _written_not_published(farm_env, write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx)))
    found = reconcile(farm_env.db_url, act=False)
    assert {f.action for f in found.findings} == {"publish it"}  # the compile jobs, never published
    assert all(j.state in ("queued", "pending") for j in _jobs(farm_env.db_url, sweep_id))
    report = reconcile(farm_env.db_url, live_messages=set())
    publish(farm_env.db_url, report.publish)  # embedded: runs the whole sweep here
    with session_scope(farm_env.db_url) as s:
        assert s.get(SweepRow, sweep_id).state == "done"
    assert _runs(farm_env.db_url, sweep_id) == 4
    assert reconcile(farm_env.db_url).findings == []  # nothing left to fix, and nothing twice


def test_a_killed_job_process_is_taken_back_and_its_board_freed(tmp_path: Path, farm_env, tiny_onnx) -> None:
    """kill -9 of the process running a job: its lease names a dead pid, so the job is queued again at once
    (no waiting for Redis's redelivery) and the board it held goes back to idle."""
    sweep_id = _written_not_published(farm_env, write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx)))
    job = next(j for j in _jobs(farm_env.db_url, sweep_id) if j.kind == "compile")
    code = (
        "import os, sys\n"
        "from farm import leases\n"
        "from farm.db.session import session_scope\n"
        "from farm.fleet import states\n"
        f"with session_scope({farm_env.db_url!r}) as s:\n"
        f"    assert leases.take(s, {job.id}, board='local-cpu')\n"
        f"    assert states.set_state({farm_env.db_url!r}, 'local-cpu', 'running', 'job', only_from=('idle',),"
        f" job_id={job.id}, session=s)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ, cwd=Path.cwd(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with session_scope(farm_env.db_url) as s:
        row = s.get(JobRow, job.id)
        assert row.state == "running" and leases.owner_alive(row.lease_owner) is False
        assert s.get(BoardRow, "local-cpu").state == "running"
    report = reconcile(farm_env.db_url, act=False)
    stale = [f for f in report.findings if f.job_id == job.id]
    assert stale and "its worker is gone" in stale[0].problem and "queue it again" in stale[0].action
    reconcile(farm_env.db_url)
    with session_scope(farm_env.db_url) as s:
        row = s.get(JobRow, job.id)
        assert row.state == "queued" and row.lease_owner is None and row.published_at is None
        board = s.get(BoardRow, "local-cpu")
        assert board.state == "idle" and "taken back" in board.state_reason


def test_an_expired_lease_is_taken_back_and_a_live_one_is_never_run_twice(
    tmp_path: Path, farm_env, tiny_onnx
) -> None:
    sub = submit_sweep(farm_env, write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx)))
    assert wait_for(farm_env, sub, lambda _: None)["state"] == "done"
    run_job = next(j for j in _jobs(farm_env.db_url, sub.sweep_id) if j.kind == "run")
    # a second delivery while another worker (another host) holds a live lease: nothing runs, nothing stored
    with session_scope(farm_env.db_url) as s:
        s.execute(
            update(JobRow)
            .where(JobRow.id == run_job.id)
            .values(
                state="running", lease_owner="elsewhere:1:1", lease_expires_at=utcnow() + timedelta(minutes=5)
            )
        )
    assert run_run_job(farm_env, run_job.id) == "duplicate"
    assert reconcile(farm_env.db_url, act=False).findings == []  # a live lease elsewhere is left alone
    # the other host went silent: once its lease expired the job is queued again
    with session_scope(farm_env.db_url) as s:
        s.execute(
            update(JobRow)
            .where(JobRow.id == run_job.id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    found = reconcile(farm_env.db_url, act=False).findings
    assert any("lease expired" in f.problem for f in found)
    report = reconcile(farm_env.db_url, live_messages=set())
    publish(farm_env.db_url, report.publish)
    assert _runs(farm_env.db_url, sub.sweep_id) == 4  # the idempotency key: still one result per job


def test_a_compile_whose_worker_died_before_handing_out_its_runs(tmp_path: Path, farm_env, tiny_onnx) -> None:
    """The artifact is built and the compile job done, but its run jobs were never queued."""
    sub = submit_sweep(farm_env, write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx)))
    assert wait_for(farm_env, sub, lambda _: None)["state"] == "done"
    with session_scope(farm_env.db_url) as s:  # as if the runs had never been handed out
        s.execute(
            update(JobRow)
            .where(JobRow.sweep_id == sub.sweep_id, JobRow.kind == "run")
            .values(state="pending")
        )
        s.execute(update(SweepRow).where(SweepRow.id == sub.sweep_id).values(state="running"))
        s.execute(
            update(RunRow)
            .where(RunRow.sweep_id == sub.sweep_id)
            .values(idempotency_key=RunRow.idempotency_key + "-old")
        )
    found = reconcile(farm_env.db_url, act=False).findings
    assert sum("although its compile job" in f.problem for f in found) == 4
    report = reconcile(farm_env.db_url, live_messages=set())
    assert len(report.publish) == 4
    publish(farm_env.db_url, report.publish)
    with session_scope(farm_env.db_url) as s:
        assert s.get(SweepRow, sub.sweep_id).state == "done"


def test_cancel_and_retry(tmp_path: Path, farm_env, tiny_onnx) -> None:
    sweep_id = _written_not_published(farm_env, write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx)))
    out = CliRunner().invoke(cli, ["cancel", sweep_id[:8]])
    assert out.exit_code == 0 and "6 unfinished job(s) cancelled" in out.output, out.output
    with session_scope(farm_env.db_url) as s:
        assert s.get(SweepRow, sweep_id).state == "cancelled"
    assert reconcile(farm_env.db_url, act=False).findings == []  # cancelled jobs are not published
    out = CliRunner().invoke(cli, ["retry", sweep_id[:8], "--failed"])
    assert out.exit_code == 0, out.output
    assert "6 failed or cancelled job(s) reopened" in out.output and "done" in out.output.splitlines()[-1]
    assert _runs(farm_env.db_url, sweep_id) == 4
    again = CliRunner().invoke(cli, ["retry", sweep_id[:8]])
    assert again.exit_code == 1 and "nothing to retry" in again.output


def test_fleet_release_refuses_a_live_job_and_frees_a_dead_ones_board(farm_env) -> None:
    inventory = load_inventory(farm_env.inventory_dir)
    with session_scope(farm_env.db_url) as s:
        states.sync_boards(s, inventory)
        s.add(SweepRow(id="s" * 36, name="x", source="x", spec_yaml="", spec_hash="", spec={}))
        s.flush()
        job = JobRow(sweep_id="s" * 36, key="k", kind="run", model="m", precision="fp32", target="cpu",
                     batch_size=1, state="running", lease_owner="elsewhere:1:1",
                     lease_expires_at=utcnow() + timedelta(minutes=5))  # fmt: skip
        s.add(job)
        s.flush()
        job_id = job.id
        states.set_state(farm_env.db_url, "local-cpu", "running", "job", job_id=job_id, session=s)
    refused = CliRunner().invoke(cli, ["fleet", "release", "local-cpu"])
    assert refused.exit_code == 1 and "under elsewhere:1:1's lease" in refused.output, refused.output
    forced = CliRunner().invoke(cli, ["fleet", "release", "local-cpu", "--force"])
    assert forced.exit_code == 0 and f"job {job_id} queued again" in forced.output
    assert states.get_state(farm_env.db_url, "local-cpu").state == "idle"
    with session_scope(farm_env.db_url) as s:
        assert s.get(JobRow, job_id).state == "queued"


def _board(db_url: str, name: str = "local-cpu") -> str | None:
    with session_scope(db_url) as s:
        row = s.get(BoardRow, name)
        return row.state if row is not None else None


def _waiting(db_url: str) -> list[str]:
    from farm.queries.sweeps import board_waits

    with session_scope(db_url) as s:
        return [
            w for sweep in s.scalars(select(SweepRow)) for w in board_waits(s, sweep.id, list(sweep.jobs))
        ]


def _farm_proc(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "farm.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _agents_of(data_dir: Path) -> list[int]:
    """Agent processes (farm_agent.py) whose environment names this farm's data dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"farm_agent.py") for a in argv) and f"FARM_DATA_DIR={data_dir}".encode() in env:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _env(farm_env) -> dict:
    return {**os.environ, "FARM_DB_URL": farm_env.db_url, "FARM_DATA_DIR": str(farm_env.data_dir)}


@pytest.mark.slow
def test_ctrl_c_cancels_an_embedded_sweep_and_a_second_submit_waits_its_turn(
    tmp_path: Path, farm_env, tiny_onnx
) -> None:
    env = _env(farm_env)
    slow = write_sweep(tmp_path, SLOW_SWEEP.format(onnx=tiny_onnx, batches=[1], ms=300000), "slow.yaml")
    first = _farm_proc(env, "submit", str(slow))
    deadline = time.monotonic() + 120
    while _board(farm_env.db_url) != "running":  # the first one runs on the cpu
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.2)
    second = _farm_proc(
        env,
        "submit",
        str(write_sweep(tmp_path, SLOW_SWEEP.format(onnx=tiny_onnx, batches=[1], ms=200), "quick.yaml")),
    )
    while not _waiting(farm_env.db_url):  # the second waits for the board the first holds
        assert time.monotonic() < deadline + 120 and second.poll() is None, second.communicate()
        time.sleep(0.5)
    time.sleep(2)  # the second's progress line polls every 0.5 s
    measuring = _agents_of(farm_env.data_dir)  # the first's agent, in a session of its own
    assert measuring
    os.killpg(first.pid, signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert "interrupted: sweep" in err and "cancelled" in err and "agents stopped" in err
    time.sleep(0.5)
    assert not [p for p in measuring if _alive(p)], "the interrupted sweep's agent runs on unowned"
    out2, err2 = second.communicate(timeout=240)
    assert second.returncode == 0, out2 + err2  # it got the board once the first let it go
    assert "waiting for a cpu board" in err2
    with session_scope(farm_env.db_url) as s:
        sweeps = [r.state for r in s.scalars(select(SweepRow).order_by(SweepRow.created_at))]
    assert sweeps == ["cancelled", "done"]
    assert states.get_state(farm_env.db_url, "local-cpu").state == "idle"


@pytest.mark.redis
def test_a_sweep_submitted_while_messages_are_lost_finishes_through_the_reconciler(
    tmp_path: Path, farm_env, tiny_onnx, redis_url: str
) -> None:
    """The broker lost every message (as a Redis restarted from an older save does): the queued jobs are
    found missing from the broker and published again; a real worker finishes the sweep."""
    env = {**_env(farm_env), "FARM_BROKER_URL": redis_url.rsplit("/", 1)[0] + f"/{os.getpid() % 15 + 1}"}
    subprocess.run(["redis-cli", "-u", env["FARM_BROKER_URL"], "FLUSHDB"], check=False, capture_output=True)
    sweep = write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx))
    sub = subprocess.run(
        [sys.executable, "-m", "farm.cli.main", "submit", str(sweep), "--no-wait"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    sweep_id = sub.stdout.split("submitted sweep ")[1].split()[0]
    assert all(j.published_at is not None for j in _jobs(farm_env.db_url, sweep_id) if j.kind == "compile")
    subprocess.run(["redis-cli", "-u", env["FARM_BROKER_URL"], "FLUSHDB"], check=True, capture_output=True)
    with session_scope(farm_env.db_url) as s:  # past the grace a fresh message gets
        s.execute(
            update(JobRow)
            .where(JobRow.sweep_id == sweep_id)
            .values(published_at=utcnow() - timedelta(minutes=5))
        )
    from farm.broker import live_message_ids

    live = live_message_ids(env["FARM_BROKER_URL"], ["compile"])
    assert live == set()
    report = reconcile(farm_env.db_url, live_messages=live, act=False)
    assert sum("not in the broker" in f.problem for f in report.findings) == 2
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "farm.cli.main", "worker", "--beat", "-n", f"t{os.getpid()}@localhost"],
        env={**env, "FARM_RECONCILE_S": "2"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while True:
            with session_scope(farm_env.db_url) as s:
                state = s.get(SweepRow, sweep_id).state
            if state != "running" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert state == "done", (tmp_path / "worker.log").read_text()[-4000:]
        assert _runs(farm_env.db_url, sweep_id) == 4
        status = subprocess.run(
            [sys.executable, "-m", "farm.cli.main", "status", sweep_id[:8], "--format", "json"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert json.loads(status.stdout)["stale"] == []
    finally:
        stop_group(worker)
        log.close()


def test_cancel_stops_a_running_agent_mid_run(
    tmp_path: Path, farm_env, tiny_onnx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`farm cancel` on a job whose agent is measuring: the lease heartbeat notices (every lease_s / 4), the
    agent is killed through its transport, nothing is stored and the board is free well before the run's
    five minutes are up."""
    from farm.services.sweeps import cancel_sweep
    from farm.transport import local

    monkeypatch.setenv("FARM_LEASE_S", "4")  # a heartbeat each second
    slow = write_sweep(tmp_path, SLOW_SWEEP.format(onnx=tiny_onnx, batches=[1], ms=300000), "slow.yaml")
    sub = submit_sweep(load_settings(), slow)
    deadline = time.monotonic() + 120
    while not local._RUNNING or _board(farm_env.db_url) != "running":  # the agent is measuring
        assert time.monotonic() < deadline and not sub.errors, sub.errors
        time.sleep(0.2)
    agents = list(local._RUNNING)
    cancelled_at = time.monotonic()
    assert cancel_sweep(farm_env.db_url, sub.sweep_id, "operator: wrong model")
    sub.runner.join(timeout=60)
    assert not sub.runner.is_alive() and not sub.errors, sub.errors
    took = time.monotonic() - cancelled_at
    assert took < 30, f"the cancelled run went on for {took:.0f} s"
    assert all(p.poll() is not None for p in agents)  # killed, not left measuring
    assert _runs(farm_env.db_url, sub.sweep_id) == 0
    jobs = _jobs(farm_env.db_url, sub.sweep_id)
    assert {j.state for j in jobs if j.kind == "run"} == {"cancelled"}
    assert all(j.error == "operator: wrong model" for j in jobs if j.kind == "run")
    assert _board(farm_env.db_url) == "idle"


def test_a_job_longer_than_its_lease_keeps_it(tmp_path: Path, farm_env, tiny_onnx, monkeypatch) -> None:
    """The heartbeat renews the lease of the thread that took it (it beats on a thread of its own): a run
    three leases long is never taken back, never cancelled, and runs once."""
    monkeypatch.setenv("FARM_LEASE_S", "2")  # a heartbeat every 0.5 s
    sweep = write_sweep(tmp_path, SLOW_SWEEP.format(onnx=tiny_onnx, batches=[1], ms=6000), "long.yaml")
    sub = submit_sweep(load_settings(), sweep)
    assert wait_for(farm_env, sub, lambda _: None)["state"] == "done", sub.errors
    run = next(j for j in _jobs(farm_env.db_url, sub.sweep_id) if j.kind == "run")
    assert run.state == "done" and run.attempts == 1
    assert _runs(farm_env.db_url, sub.sweep_id) == 1
    with session_scope(farm_env.db_url) as s:
        assert s.scalars(select(RunRow)).one().job_id == run.id
