"""Fleet benchmark: farm overhead per run job with Redis and SSH boards (goal: median under 50 ms), and
bytes uploaded to boards when an identical sweep runs again (goal: 0).

Sets up, on loopback only: a redis-server, N real sshd "boards" (tests/sshd.py), one `farm worker --board`
per board and a compile worker. Runs a sweep of R short SingleStream jobs on a tiny model, then the same
sweep again after restarting every worker (so no local cache helps).

Overhead per job = the job's wall time as the farm sees it (task start -> result stored) minus the agent
process's wall time on the board (its first line -> its report). It holds scheduling, database writes,
the SSH round trips, upload checks and the agent's interpreter start-up; not the agent's own imports,
model load, warm-up or measurement. Also printed: the same including the agent's start-up and load.

    .venv/bin/python bench/fleet_overhead.py [--boards 2] [--jobs 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import tiny_model  # noqa: E402
from tests.farm.fleet.conftest import write_lab  # noqa: E402
from tests.sshd import ClientKey, SshdFactory, _keygen  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ts(value: str | None) -> datetime | None:
    return _naive(datetime.fromisoformat(value)) if value else None


def _naive(ts: datetime) -> datetime:
    """UTC without its zone: SQLite hands stored timestamps back that way."""
    return ts.replace(tzinfo=None) if ts.tzinfo else ts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=30, help="run jobs per sweep")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="farm-fleet-bench-"))
    procs: list[subprocess.Popen] = []
    port = _free_port()
    procs.append(
        subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
    )
    key = tmp / "client" / "id_ed25519"
    key.parent.mkdir()
    _keygen(key, "farm-bench")
    factory = SshdFactory(tmp / "sshd", ClientKey(key, Path(f"{key}.pub")))
    (tmp / "sshd").mkdir()
    try:
        servers = factory.start(args.boards)
        inventory = write_lab(tmp / "inventory", servers)
        env = {
            **os.environ,
            "FARM_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "FARM_DB_URL": f"sqlite:///{tmp / 'farm.db'}",
            "FARM_DATA_DIR": str(tmp / "data"),
            "FARM_INVENTORY": str(inventory),
            "FARM_LAB": "lab.yaml",
            "FARM_HEALTH_INTERVAL_S": "60",
        }
        import onnx

        onnx.save(tiny_model(batch="N"), tmp / "tiny.onnx")
        sweep = tmp / "sweep.yaml"
        sweep.write_text(
            f"name: fleet-bench\nmodels:\n  - name: tiny\n    onnx: {tmp / 'tiny.onnx'}\nprecisions: [fp32]\n"
            f"targets: [cpu]\nscenarios: [SingleStream]\nrepeats: {args.jobs}\n"
            "loadgen: {min_duration_ms: 200, min_query_count: 64}\n"
        )
        farm = [sys.executable, "-m", "farm.cli.main"]
        subprocess.run([*farm, "db", "upgrade"], env=env, check=True, capture_output=True)

        def start_workers() -> list[subprocess.Popen]:
            ws = [
                subprocess.Popen(
                    [*farm, "worker", "-Q", "compile", "-n", "compile@bench", "-l", "WARNING"],
                    env=env,
                    start_new_session=True,
                )
            ]
            for i in range(args.boards):
                ws.append(
                    subprocess.Popen(
                        [*farm, "worker", "--board", f"node-{i}", "-n", f"node-{i}@bench", "-l", "WARNING"],
                        env=env,
                        start_new_session=True,
                    )
                )
            return ws

        def stop_workers(ws: list[subprocess.Popen]) -> None:
            for w in ws:
                os.killpg(w.pid, signal.SIGTERM)
            for w in ws:
                w.wait(timeout=60)

        print(
            f"# fleet overhead benchmark {date.today()} on {platform.node()} ({os.cpu_count()} cores), "
            f"{args.boards} sshd boards, {args.jobs} run jobs per sweep"
        )
        figures = []
        for attempt in (1, 2):
            workers = start_workers()
            started = time.monotonic()
            out = subprocess.run(
                [*farm, "submit", str(sweep), "--format", "json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            wall = time.monotonic() - started
            stop_workers(workers)
            if out.returncode != 0:
                raise SystemExit(f"sweep failed: {out.stderr}\n{out.stdout}")
            sweep_id = out.stdout.split("submitted sweep ")[1].split()[0]
            figures.append(_analyse(env["FARM_DB_URL"], sweep_id, attempt, wall))
        first, second = figures
        print(
            f"fleet_overhead_ms_median={first['median']:.1f} goal<50 {'PASS' if first['median'] < 50 else 'FAIL'}"
        )
        print(
            f"rerun_bytes_uploaded={second['uploaded']} goal=0 {'PASS' if second['uploaded'] == 0 else 'FAIL'}"
        )
    finally:
        factory.stop_all()
        for p in procs:
            p.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def _analyse(db_url: str, sweep_id: str, attempt: int, wall: float) -> dict:
    from sqlalchemy import select

    from farm.db.models import JobRow, ProvenanceRow, RunRow
    from farm.db.session import session_scope

    overheads, with_startup, uploaded = [], [], 0
    with session_scope(db_url) as s:
        rows = s.execute(
            select(JobRow, RunRow, ProvenanceRow)
            .join(RunRow, RunRow.job_id == JobRow.id)
            .join(ProvenanceRow, ProvenanceRow.run_id == RunRow.id)
            .where(JobRow.sweep_id == sweep_id)
        ).all()
        for job, run, prov in rows:
            env = prov.environment or {}
            job_wall = (_naive(job.finished_at) - _naive(job.started_at)).total_seconds()
            agent_start = _ts(env.get("agent_process_started_at"))
            agent_wall = (_naive(run.finished_at) - agent_start).total_seconds()
            measured = (_naive(run.finished_at) - _naive(run.started_at)).total_seconds()
            overheads.append(1000 * (job_wall - agent_wall))
            with_startup.append(1000 * (job_wall - measured))
            uploaded += env.get("bytes_uploaded") or 0
    q = statistics.quantiles(overheads, n=10)
    print(
        f"sweep {attempt}: {len(rows)} runs, wall {wall:.1f} s; farm overhead per job ms: median {statistics.median(overheads):.1f} "
        f"p10 {q[0]:.1f} p90 {q[-1]:.1f}; including agent start-up and model load: median {statistics.median(with_startup):.0f}; "
        f"bytes uploaded to boards: {uploaded}"
    )
    return {"median": statistics.median(overheads), "uploaded": uploaded}


if __name__ == "__main__":
    main()
