"""Long-lived agent sessions over real sshd: one agent process per board runs job after job on one channel.

A fake serve-mode agent (it carries the protocol string the transport looks for) reports its pid, so the
tests can tell a reused session from a new one; the real agent runs at the end. The board-side session
guard is also driven directly (the boards are this machine) for what is hard to provoke over SSH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from farm.artifacts import sha256_file
from farm.errors import InfraError
from farm.transport import ssh
from farm.transport.agent_session import JOB_END_MARK, SERVE_PROTOCOL
from farm.transport.hostside import HOSTSIDE_DIR, SESSION_GUARD
from farm.transport.ssh import agent_hash
from farm.workers.agent import AGENT_DIR
from tests.farm.transport.conftest import BOARD_PYTHON, write_agent
from tests.sshd import _descendants, _processes_mentioning

SERVE_AGENT = f"""\
# speaks {SERVE_PROTOCOL}
import json, os, subprocess, sys, time
jobs = 0
while True:
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    config = json.loads(line)
    jobs += 1
    sys.stderr.write(config.get("stderr", ""))
    sys.stderr.flush()
    if config.get("hang"):
        # A child in the same process group, as a real backend's worker process would be.
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", config["hang"]])
        time.sleep(300)
    if config.get("crash"):
        os._exit(config["crash"])
    sys.stderr.write("{JOB_END_MARK}\\n" % jobs)
    sys.stderr.flush()
    report = {{"config": config, "argv": sys.argv[1:], "pid": os.getpid(), "pgid": os.getpgrp(), "job": jobs}}
    sys.stdout.write(json.dumps({{"exit": config.get("exit", 0), "report": report}}) + "\\n")
    sys.stdout.flush()
"""


@pytest.fixture
def serve_agent(tmp_path: Path) -> Path:
    return write_agent(tmp_path / "serve-agent", main=SERVE_AGENT)


def _gone(pids: list[int] | int, within_s: float = 5.0) -> bool:
    pids = [pids] if isinstance(pids, int) else pids
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, within_s: float = 10.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _run(transport, config, timeout_s=30.0):
    outcome = transport.run_agent(config, timeout_s)
    return outcome, json.loads(outcome.stdout)


# ---------------------------------------------------------------- sessions over SSH


def test_jobs_share_one_agent_process(sshd_host, make_transport, serve_agent):
    transport = make_transport(sshd_host, agent_dir=serve_agent)

    first, doc1 = _run(transport, {"n": 1, "stderr": "one\n", "text": "ünïcode 'q' $(x)"})
    second, doc2 = _run(transport, {"n": 2, "exit": 2, "stderr": "model is corrupt\n"})
    third, doc3 = _run(transport, {"n": 3})

    assert doc1["pid"] == doc2["pid"] == doc3["pid"]  # one agent process ran all three
    assert [doc1["job"], doc2["job"], doc3["job"]] == [1, 2, 3]
    assert doc1["config"] == {"n": 1, "stderr": "one\n", "text": "ünïcode 'q' $(x)"}
    assert doc1["argv"] == ["--config", "-", "--serve"]
    assert doc1["pgid"] != doc1["pid"]  # its own process group, owned by the guard
    assert (first.returncode, second.returncode, third.returncode) == (0, 2, 0)
    # Each job gets its own stderr, without the protocol's end-of-job marks.
    assert (first.stderr, second.stderr, third.stderr) == ("one\n", "model is corrupt\n", "")
    assert transport.agent_sessions_started == 1 and transport.connects == 1
    # The session's pid file is there while it runs (the farm kills the group through it).
    (pidfile,) = (sshd_host.work_dir / "run").iterdir()
    assert int(pidfile.read_text()) == doc1["pgid"]


def test_large_config_and_report_go_through_one_line_each(sshd_host, make_transport, serve_agent):
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    config = {"samples": ["x" * 100] * 3000}  # ~300 KB each way: more than a pipe or an SSH window holds
    started = time.monotonic()
    _, doc = _run(transport, config)
    assert doc["config"] == config
    assert time.monotonic() - started < 10


def test_hung_job_is_killed_and_the_next_job_gets_a_fresh_session(sshd_host, make_transport, serve_agent):
    marker = f"farm-session-hang-{uuid.uuid4().hex}"
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, before = _run(transport, {"n": 1})

    started = time.monotonic()
    with pytest.raises(InfraError, match=r"agent hung \(no result within 1.5 s\): killed its process group"):
        transport.run_agent({"hang": marker, "stderr": "hanging\n"}, 1.5)
    elapsed = time.monotonic() - started

    assert 1.5 <= elapsed < 6
    assert _gone(before["pid"]) and _processes_mentioning(marker) == []  # its child (same group) too
    _, after = _run(transport, {"n": 2})
    assert after["pid"] != before["pid"] and after["job"] == 1
    assert transport.agent_sessions_started == 2 and transport.connects == 1
    assert len(list((sshd_host.work_dir / "run").iterdir())) == 1  # the dead session's pid file is gone


def test_crashed_agent_is_an_infra_error_with_its_stderr(sshd_host, make_transport, serve_agent):
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, before = _run(transport, {"n": 1})

    with pytest.raises(InfraError, match=r"agent crashed \(exit 3\) without a report: segfault-ish"):
        transport.run_agent({"crash": 3, "stderr": "segfault-ish\n"}, 30)

    _, after = _run(transport, {"n": 2})
    assert after["pid"] != before["pid"] and transport.agent_sessions_started == 2
    assert _wait_for(lambda: len(list((sshd_host.work_dir / "run").iterdir())) == 1)


def test_closing_the_transport_leaves_no_agent_on_the_board(sshd_host, make_transport, serve_agent):
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, doc = _run(transport, {"n": 1})
    remote_agent = str(sshd_host.work_dir / "agent")
    assert doc["pid"] in _processes_mentioning(remote_agent)

    transport.close()

    assert _gone(doc["pid"])
    assert _wait_for(lambda: _processes_mentioning(remote_agent) == [])
    assert _wait_for(lambda: list((sshd_host.work_dir / "run").iterdir()) == [])
    # The transport is still usable: a new connection, a new session.
    _, again = _run(transport, {"n": 2})
    assert again["pid"] != doc["pid"] and transport.connects == 2


def test_dropped_ssh_session_mid_job_kills_the_agent(sshd_host, make_transport, serve_agent):
    """The connection goes (sshd's per-connection processes die) while the job runs: this side gets an
    InfraError, and the board-side guard, seeing its stdin end, kills the agent and its children."""
    marker = f"farm-session-drop-{uuid.uuid4().hex}"
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, doc = _run(transport, {"n": 1})

    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(transport.run_agent, {"hang": marker}, 60)
        _wait_for(lambda: _processes_mentioning(marker))
        sessions = [
            pid
            for pid in _descendants(sshd_host.pid)
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith("sshd")
        ]
        assert sessions
        started = time.monotonic()
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(InfraError, match="connection lost|crashed"):
            job.result(timeout=30)
        assert time.monotonic() - started < 5

    assert _gone(doc["pid"])
    assert _wait_for(lambda: _processes_mentioning(marker) == [])
    assert _wait_for(lambda: _processes_mentioning(str(sshd_host.work_dir / "agent")) == [])
    assert sshd_host.pid is not None  # the server itself still runs: the next job reconnects
    _, after = _run(transport, {"n": 2})
    assert after["pid"] != doc["pid"] and transport.connects == 2


def test_killed_sshd_mid_job_is_an_infra_error(sshd_host, make_transport, serve_agent):
    marker = f"farm-session-down-{uuid.uuid4().hex}"
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(transport.run_agent, {"hang": marker}, 60)
        _wait_for(lambda: _processes_mentioning(marker))
        started = time.monotonic()
        sshd_host.stop()
        with pytest.raises(InfraError, match="connection lost|crashed"):
            job.result(timeout=30)
        assert time.monotonic() - started < 5
    with pytest.raises(InfraError, match="cannot connect"):
        transport.run_agent({"n": 1}, 10)


def test_restarted_sshd_between_jobs_reconnects_transparently(sshd_host, make_transport, serve_agent):
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, before = _run(transport, {"n": 1})
    sshd_host.stop()
    sshd_host.start()

    outcome, after = _run(transport, {"n": 2})

    assert outcome.returncode == 0 and after["config"] == {"n": 2}
    assert after["pid"] != before["pid"]
    assert (transport.connects, transport.agent_sessions_started) == (2, 2)


def test_agent_update_restarts_the_session(sshd_host, make_transport, serve_agent):
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, before = _run(transport, {"n": 1})
    old_hash = agent_hash(serve_agent)

    script = serve_agent / "farm_agent.py"
    script.write_text(script.read_text() + "# version 2\n")
    _, after = _run(transport, {"n": 2})

    assert agent_hash(serve_agent) != old_hash
    assert after["pid"] != before["pid"] and after["job"] == 1
    assert _gone(before["pid"])  # the old session ended with the switch
    assert transport.ensure_agent() == f"{sshd_host.work_dir}/agent/{agent_hash(serve_agent)}/farm_agent.py"
    assert transport.agent_sessions_started == 2 and transport.connects == 1


def test_idle_session_outlives_the_guards_per_job_limit(sshd_host, make_transport, serve_agent, monkeypatch):
    """The board-side limit is per job (timeout + grace, disarmed by the response): an idle session lives on."""
    monkeypatch.setattr(ssh, "GUARD_GRACE_S", 0.0)
    transport = make_transport(sshd_host, agent_dir=serve_agent)
    _, first = _run(transport, {"n": 0})  # the session starts (its start-up counts against a job's limit)
    _, before = _run(transport, {"n": 1}, timeout_s=1.0)
    time.sleep(1.5)  # longer than that job's limit on the board
    _, after = _run(transport, {"n": 2}, timeout_s=1.0)
    assert first["pid"] == before["pid"] == after["pid"] and after["job"] == 3


def test_agent_without_serve_mode_runs_once_per_job(sshd_host, make_transport):
    transport = make_transport(sshd_host)  # the echo agent: no serve protocol
    _, doc1 = _run(transport, {"n": 1})
    _, doc2 = _run(transport, {"n": 2})
    assert doc1["argv"] == ["--config", "-"] and doc1["pid"] != doc2["pid"]
    assert transport.agent_sessions_started == 0


# ---------------------------------------------------------------- the session guard itself


def _guard(tmp_path: Path, agent: str) -> tuple[subprocess.Popen, Path]:
    pidfile = tmp_path / "run" / f"{uuid.uuid4().hex}.pid"
    proc = subprocess.Popen(
        [BOARD_PYTHON, f"{HOSTSIDE_DIR}/{SESSION_GUARD}", str(pidfile), BOARD_PYTHON, "-c", agent],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, pidfile


GUARDED_AGENT = """\
import subprocess, sys, time
for line in iter(sys.stdin.readline, ""):
    if "hang" in line:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", line.strip()])
        time.sleep(300)
    sys.stdout.write("done " + line)
    sys.stdout.flush()
"""


def test_guard_kills_a_job_that_outlives_its_limit_and_keeps_idle_sessions(tmp_path):
    marker = f"farm-guard-hang-{uuid.uuid4().hex}"
    proc, pidfile = _guard(tmp_path, GUARDED_AGENT)
    try:
        for request in (b"30 job-1\n", b"1.0 job-2\n"):  # (the first waits for the agent to start)
            proc.stdin.write(request)
            proc.stdin.flush()
            # The limit prefix is stripped on the way in.
            assert proc.stdout.readline() == b"done " + request.split(b" ", 1)[1]
        time.sleep(1.5)  # idle past job-2's limit: nothing is killed
        proc.stdin.write(f"0.5 hang {marker}\n".encode())
        proc.stdin.flush()
        _wait_for(lambda: _processes_mentioning(marker))
        started = time.monotonic()
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert time.monotonic() - started < 2
        assert b"killing the agent's process group" in proc.stderr.read()
        assert _wait_for(lambda: _processes_mentioning(marker) == [])
        assert not pidfile.exists()
    finally:
        proc.kill()


def test_guard_kills_a_busy_agent_when_its_stdin_ends(tmp_path):
    marker = f"farm-guard-eof-{uuid.uuid4().hex}"
    proc, pidfile = _guard(tmp_path, GUARDED_AGENT)
    try:
        proc.stdin.write(f"600 hang {marker}\n".encode())
        proc.stdin.flush()
        _wait_for(lambda: _processes_mentioning(marker))
        assert pidfile.exists()
        proc.stdin.close()  # the SSH channel closed
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert _wait_for(lambda: _processes_mentioning(marker) == [])
        assert not pidfile.exists()
    finally:
        proc.kill()


def test_guard_passes_the_agents_exit_status_on(tmp_path):
    proc, pidfile = _guard(tmp_path, "import sys; sys.stdout.write('last words\\n'); sys.exit(7)")
    try:
        assert proc.stdout.read() == b"last words\n"  # stdin stays open: the agent ended by itself
        assert proc.wait(timeout=10) == 7
        assert not pidfile.exists()
    finally:
        proc.kill()


# ---------------------------------------------------------------- the real agent


def test_real_agent_runs_jobs_in_one_session(sshd_host, make_transport, tiny_onnx, tmp_path):
    transport = make_transport(sshd_host, agent_dir=AGENT_DIR)
    remote = transport.artifact_path(sha256_file(tiny_onnx), tiny_onnx)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(tiny_onnx.read_bytes()[:200])
    base = {
        "backend": "onnxruntime_cpu",
        "scenario": "SingleStream",
        "loadgen": {"min_duration_ms": 50, "min_query_count": 8},
        "warmup_queries": 1,
    }

    docs, outcomes = [], []
    for i, artifact in enumerate((remote, str(corrupt), remote)):
        config = {**base, "artifact": artifact, "log_dir": f"{sshd_host.work_dir}/loadgen/{i}"}
        outcome, doc = _run(transport, config, timeout_s=120)
        outcomes.append(outcome)
        docs.append(doc)

    assert [o.returncode for o in outcomes] == [0, 2, 0], outcomes[1].stderr
    assert docs[0]["status"] == docs[2]["status"] == "ok" and docs[2]["query_count"] >= 8
    assert docs[1]["error"]["kind"] == "model"
    assert "model error" in outcomes[1].stderr and "model error" not in outcomes[2].stderr
    assert [d["session_job"] for d in docs] == [1, 2, 3]
    assert len({d["session_started_at"] for d in docs}) == 1  # one process ran all three
    assert docs[2]["process_started_at"] > docs[0]["finished_at"]  # per job: when its line arrived
    assert transport.agent_sessions_started == 1
