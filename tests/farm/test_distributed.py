"""A sweep through a real Redis broker and a real `farm worker` process (Celery prefork pool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from farm.db.models import RunRow
from farm.db.session import session_scope
from tests.conftest import TINY_SWEEP, stop_group, write_sweep

pytestmark = pytest.mark.redis


def _farm(env: dict, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "farm.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str, farm_env) -> Iterator[dict]:
    """Environment for a distributed farm on our own redis-server, with one worker process running."""
    env = {**os.environ, "FARM_BROKER_URL": redis_url.rsplit("/", 1)[0] + f"/{os.getpid() % 15 + 1}"}
    env["FARM_DB_URL"] = farm_env.db_url
    env["FARM_DATA_DIR"] = str(farm_env.data_dir)
    subprocess.run(["redis-cli", "-u", env["FARM_BROKER_URL"], "FLUSHDB"], check=False, capture_output=True)
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "farm.cli.main",
            "worker",
            "-n",
            f"test-{os.getpid()}@localhost",
            "-l",
            "INFO",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield {"env": env, "worker": worker, "log": tmp_path / "worker.log"}
    stop_group(worker)
    log.close()


def test_sweep_through_redis_and_worker(tmp_path: Path, tiny_onnx: Path, cluster: dict) -> None:
    env = cluster["env"]
    sweep = write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx))
    done = _farm(env, "submit", str(sweep), "--format", "json")
    worker_log = cluster["log"].read_text()
    assert done.returncode == 0, done.stderr + done.stdout + worker_log
    assert "compile jobs executed: 2" in done.stdout and "runs stored: 4" in done.stdout
    assert "farm.compile" in worker_log and "farm.run" in worker_log  # it really went through the worker
    rows = json.loads(done.stdout[done.stdout.index("[") :])
    assert len(rows) == 4 and all(r["throughput_ips"] > 0 for r in rows)

    # --no-wait returns at once with the id; the worker finishes the sweep on its own.
    quick = _farm(env, "submit", str(sweep), "--no-wait")
    assert quick.returncode == 0, quick.stderr
    sweep_id = quick.stdout.split("submitted sweep ")[1].split()[0]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = json.loads(_farm(env, "status", sweep_id, "--format", "json").stdout)
        if status["state"] != "running":
            break
        time.sleep(1)
    assert status["state"] == "done" and status["compile_executed"] == 0 and status["runs_stored"] == 4
    with session_scope(env["FARM_DB_URL"]) as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 8


def test_worker_refuses_without_broker(farm_env) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FARM_BROKER_URL"}
    out = _farm(env, "worker", timeout=60)
    assert out.returncode == 1 and "needs a broker" in out.stderr
