"""Fleet utilisation: 20 boards, 400 short jobs; utilisation = sum of job durations / (boards x makespan),
goal >= 0.95.

A job's duration is its wall time as the farm records it (task start -> result stored); the makespan runs
from the first job's start to the last job's end. Boards are real sshd hosts on loopback addresses, each
driven by its own `farm worker --board`; the workers are all up and their boards checked healthy before
the sweep is submitted, so start-up is not counted against the fleet.

    .venv/bin/python bench/fleet_utilisation.py [--boards 20] [--jobs 400] [--min-duration-ms 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlab import FleetLab, naive  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--min-duration-ms", type=int, default=1000)
    parser.add_argument("--db", default=None, help="results DB URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    print(
        f"# fleet utilisation benchmark {date.today()} on {platform.node()} ({os.cpu_count()} cores): "
        f"{args.boards} sshd boards, {args.jobs} jobs of min_duration {args.min_duration_ms} ms"
    )
    from sqlalchemy import select

    from farm.db.models import JobRow
    from farm.db.session import session_scope

    with FleetLab(args.boards, args.db) as lab:
        lab.start_workers()
        sweep_id = lab.submit(lab.sweep(args.jobs, args.min_duration_ms), allow_failures=True)
        with session_scope(lab.db_url) as s:
            jobs = list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.kind == "run")))
            spans = [
                (naive(j.started_at), naive(j.finished_at), j.board_name) for j in jobs if j.state == "done"
            ]
            failed = [(j.key, (j.error or "")[:200]) for j in jobs if j.state != "done"]
    for key, error in failed[:5]:
        print(f"NOT DONE {key}: {error}")
    start = min(a for a, _, _ in spans)
    end = max(b for _, b, _ in spans)
    makespan = (end - start).total_seconds()
    busy = sum((b - a).total_seconds() for a, b, _ in spans)
    per_board: dict[str, int] = {}
    for _, _, board in spans:
        per_board[board] = per_board.get(board, 0) + 1
    utilisation = busy / (args.boards * makespan)
    print(
        f"{len(spans)} jobs done on {len(per_board)} boards (per board {min(per_board.values())}..{max(per_board.values())}); "
        f"makespan {makespan:.1f} s; mean job {busy / len(spans):.2f} s"
    )
    verdict = "PASS" if utilisation >= 0.95 and not failed else "FAIL"
    print(f"jobs not done: {len(failed)}")
    print(f"fleet_utilisation={utilisation:.3f} goal>=0.95 {verdict}")


if __name__ == "__main__":
    main()
