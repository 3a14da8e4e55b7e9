"""32 concurrent first `farm submit`s to a brand-new database (SQLite file and PostgreSQL): all must succeed.

Before issue 10, 5 of 32 crashed with IntegrityError (two processes creating the schema, two adding the
same board). Each submit is a real process running the farm CLI; they import the farm, then wait at a
start line (a file) so their first database use really is concurrent. The broker is ``memory://``: it
answers and keeps nothing, so the sweeps are written and published and nobody runs them.

    python bench/first_use.py [-n 32] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import support  # noqa: F401  (puts the checkout first on sys.path)

SWEEP = """\
name: first-use
models: [resnet18]
precisions: [fp32]
targets: [cpu]
batch_sizes: [1]
scenarios: [SingleStream]
"""

#: One submitter: import the farm and what `farm submit` uses, say so, wait for the start line, then run
#: `farm submit --no-wait SWEEP`; so the timing is the database work, not 32 interpreters importing pandas.
SUBMITTER = """
import os, sys, time
from farm.cli.main import main
import farm.cli.submit, farm.sweep.load, farm.zoo.registry
go, ready = sys.argv[1], sys.argv[3]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
sys.argv = ["farm", "submit", "--no-wait", sys.argv[2]]
main()
"""


def first_submits(url: str, n: int, tmp: Path) -> tuple[int, float, list[str]]:
    """Start n submitters against ``url``; return how many succeeded, the wall time from the start line,
    and the first line of each failure's stderr."""
    tmp.mkdir(parents=True, exist_ok=True)
    sweep = tmp / "sweep.yaml"
    sweep.write_text(SWEEP)
    go = tmp / f"go-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "FARM_DATA_DIR": str(tmp / "data"),
        "FARM_DB_URL": url,
        "FARM_BROKER_URL": "memory://localhost/",
    }
    env["PYTHONPATH"] = os.pathsep.join([str(support.ROOT), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, str(go), str(sweep), str(tmp / f"ready-{i}")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    while len(list(tmp.glob("ready-*"))) < n and all(p.poll() is None for p in procs):
        time.sleep(0.1)
    started = time.perf_counter()
    go.touch()
    failures = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            failures.append((err.strip().splitlines() or ["?"])[-1])
    return n - len(failures), time.perf_counter() - started, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=32, help="concurrent first submits (default 32)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("FARM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server to create the throwaway database on ('' to skip)",
    )
    args = parser.parse_args()
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    print(f"# first-use benchmark {date.today()} on {platform.node()} ({os.cpu_count()} cores), n={args.n}")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'data' / 'new.db'}", None)]
        admin = None
        if args.pg_url:
            name = f"farm_bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
            targets.append(("postgresql", pg, name))
        try:
            for kind, url, _ in targets:
                ok, wall, failures = first_submits(url, args.n, Path(tmp) / kind)
                verdicts.append(ok == args.n)
                print(
                    f"{kind}: first_submits_ok={ok}/{args.n} wall_s={wall:.1f} {'PASS' if ok == args.n else 'FAIL'}"
                )
                for line in failures:
                    print(f"  {line}")
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    for _, _, name in targets:
                        if name:
                            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    sys.exit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
