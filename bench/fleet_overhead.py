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
import statistics
import sys
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlab import FleetLab, naive  # noqa: E402


def _ts(value: str | None) -> datetime | None:
    return naive(datetime.fromisoformat(value)) if value else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=30, help="run jobs per sweep")
    args = parser.parse_args()
    print(
        f"# fleet overhead benchmark {date.today()} on {platform.node()} ({os.cpu_count()} cores), "
        f"{args.boards} sshd boards, {args.jobs} run jobs per sweep"
    )
    with FleetLab(args.boards) as lab:
        sweep = lab.sweep(args.jobs, 200)
        figures = []
        for attempt in (1, 2):
            lab.start_workers()  # fresh processes: nothing cached locally for the second sweep
            started = time.monotonic()
            sweep_id = lab.submit(sweep)
            wall = time.monotonic() - started
            lab.stop_workers()
            figures.append(_analyse(lab.db_url, sweep_id, attempt, wall))
    first, second = figures
    print(
        f"fleet_overhead_ms_median={first['median']:.1f} goal<50 {'PASS' if first['median'] < 50 else 'FAIL'}"
    )
    print(f"rerun_bytes_uploaded={second['uploaded']} goal=0 {'PASS' if second['uploaded'] == 0 else 'FAIL'}")


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
            job_wall = (naive(job.finished_at) - naive(job.started_at)).total_seconds()
            agent_start = _ts(env.get("agent_process_started_at"))
            agent_wall = (naive(run.finished_at) - agent_start).total_seconds()
            measured = (naive(run.finished_at) - naive(run.started_at)).total_seconds()
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
