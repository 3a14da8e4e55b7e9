"""Regression alerts at scale: `farm alerts scan` over N series of P points, and the per-run check of a
stored run (the post-store hook), against a real results database built by Alembic.

    .venv/bin/python bench/alerts_scan.py [--series 10000] [--points 200] [--db sqlite|postgresql]

The history is written with the database's own bulk insert (SQLite: one transaction with foreign keys
off; PostgreSQL: executemany), not through the farm: seeding is not what is measured. 5 % of the series
get a 20 % step in their last 50 points, the rest are flat (1 % CV). Prints the seed time, the scan time
and what it found (true and false positives), and the per-run check of a new slow and a new normal run
on a 200-point series (median of 50 calls each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import support  # noqa: F401 (the checkout on sys.path)

from farm.alerts import detection
from farm.db.migrate import ensure_schema
from farm.db.session import session_scope

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def seed(url: str, n_series: int, n_points: int, rng: np.random.Generator) -> set[str]:
    """Returns the fingerprints that got a step."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    sweep_id = str(uuid.uuid4())
    stepped: set[str] = set()
    runs, mets = [], []
    rid = 0
    for i in range(n_series):
        fp = f"{i:064x}"
        values = 10.0 * (1 + rng.normal(0, 0.01, n_points))
        if rng.random() < 0.05:
            at = n_points - int(rng.integers(10, 50))
            values[at:] *= 1.2
            stepped.add(fp)
        for j, v in enumerate(values):
            rid += 1
            runs.append(
                {"id": rid, "idempotency_key": f"{fp}:{j}", "sweep_id": sweep_id, "job_id": 1, "artifact_key": "a" * 64,
                 "board_name": "b0", "model": f"m{i % 50}", "precision": "int8", "target": "zcu104",
                 "batch_size": 1 + i // 50, "scenario": "SingleStream", "repeat": 0, "source": "emulated",
                 "result_valid": True, "fingerprint": fp, "created_at": T0 + timedelta(hours=j)}
            )  # fmt: skip
            mets.append(
                {
                    "run_id": rid,
                    "name": "latency_ms_p99",
                    "value": float(v),
                    "unit": "ms",
                    "source": "emulated",
                }
            )
    meta = sa.MetaData()
    meta.reflect(engine, only=["sweeps", "jobs", "runs", "metrics", "artifacts", "boards"])
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.execute(
            meta.tables["sweeps"].insert(),
            [
                {
                    "id": sweep_id,
                    "name": "bench",
                    "source": "bench",
                    "spec_yaml": "",
                    "spec_hash": "0",
                    "spec": {},
                    "state": "done",
                    "created_at": T0,
                    "purpose": "sweep",
                }
            ],
        )
        conn.execute(
            meta.tables["boards"].insert(),
            [{"name": "b0", "board_type": "zcu104", "family": "fpga", "state": "idle", "first_seen": T0}],
        )
        conn.execute(
            meta.tables["artifacts"].insert(),
            [
                {
                    "key": "a" * 64,
                    "model": "m",
                    "model_sha256": "0",
                    "precision": "int8",
                    "target_arch": "x",
                    "batch_size": 1,
                    "toolchain": "t",
                    "toolchain_version": "1",
                    "file_sha256": "0",
                    "size_bytes": 1,
                    "created_at": T0,
                }
            ],
        )
        conn.execute(
            meta.tables["jobs"].insert(),
            [
                {
                    "id": 1,
                    "sweep_id": sweep_id,
                    "key": "k",
                    "kind": "run",
                    "state": "done",
                    "model": "m",
                    "precision": "int8",
                    "target": "zcu104",
                    "batch_size": 1,
                    "attempts": 0,
                    "created_at": T0,
                }
            ],
        )
        for chunk in range(0, len(runs), 50000):
            conn.execute(meta.tables["runs"].insert(), runs[chunk : chunk + 50000])
            conn.execute(meta.tables["metrics"].insert(), mets[chunk : chunk + 50000])
    engine.dispose()
    return stepped


def add_one(url: str, fingerprint: str, value: float) -> int:
    """One more stored run of a series, through the models."""
    from farm.db.models import MetricRow, RunRow, SweepRow

    with session_scope(url) as s:
        template = s.query(RunRow).filter(RunRow.fingerprint == fingerprint).first()
        run = RunRow(
            idempotency_key=uuid.uuid4().hex, sweep_id=s.query(SweepRow.id).scalar(), job_id=1,
            artifact_key=template.artifact_key, board_name="b0", model=template.model, precision="int8",
            target="zcu104", batch_size=template.batch_size, scenario="SingleStream", repeat=0, source="emulated",
            result_valid=True, fingerprint=fingerprint,
            metrics=[MetricRow(name="latency_ms_p99", value=value, unit="ms", source="emulated")],
        )  # fmt: skip
        s.add(run)
        s.flush()
        return run.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="farm-alerts-bench-"))
    if args.db == "sqlite":
        url = f"sqlite:///{work / 'farm.db'}"
    else:
        import sqlalchemy as sa

        name = f"farm_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    ensure_schema(url)
    t = time.perf_counter()
    stepped = seed(url, args.series, args.points, rng)
    print(
        f"seeded {args.series} series x {args.points} points ({args.db}) in {time.perf_counter() - t:.1f} s"
    )

    t = time.perf_counter()
    with session_scope(url) as s:
        scans = detection.scan(s)
    scan_s = time.perf_counter() - t
    found = {x.series.fingerprint for x in scans if x.candidate}
    tp, fp = len(found & stepped), len(found - stepped)
    print(
        f"scan: {len(scans)} series in {scan_s:.2f} s ({scan_s / max(len(scans), 1) * 1000:.3f} ms per series)"
    )
    print(
        f"  candidates: {len(found)} ({tp} of {len(stepped)} stepped series found, {fp} false alarms in {args.series - len(stepped)} flat)"
    )

    # the per-run check of one more run on a 200-point series (what every stored run costs)
    flat = next(f"{i:064x}" for i in range(args.series) if f"{i:064x}" not in stepped)
    timings = {}
    for label, factor in (("slow", 1.3), ("normal", 1.0)):
        calls = []
        for _ in range(50):
            run_id = add_one(url, flat, 10.0 * factor)
            t = time.perf_counter()
            with session_scope(url) as s:
                result = detection.check_run(s, run_id)
            calls.append(time.perf_counter() - t)
            with session_scope(url) as s:  # take it back out: the series stays as seeded
                from farm.db.models import RunRow

                s.delete(s.get(RunRow, run_id))
        timings[label] = (statistics.median(calls) * 1000, len(result))
    for label, (ms, n) in timings.items():
        print(f"per-run check ({label} run): {ms:.1f} ms median of 50, {n} candidate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
