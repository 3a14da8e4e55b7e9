"""Seed a results database with a big, realistic history for the dashboard benchmark (and demos).

    .venv/bin/python bench/dashboard_seed.py --db sqlite:////tmp/dash.db --runs 100000
    .venv/bin/python bench/dashboard_seed.py --db postgresql+psycopg://postgres@127.0.0.1:5432/dash

Targets: the CPU (measured), and emulated FPGA boards (pynq-z2, kv260, zcu104, u50, vck190) and an emulated
Jetson AGX Xavier as the GPU baseline. Sweeps of one model each (all targets, precisions, batch sizes 1/4/8,
SingleStream and Offline, 2 repeats) spread over 180 days, with toolchain upgrades that move the figures
(one a regression on the U50), a few failed jobs, a sweep still running, boards with health histories.
One run in 50 (and every run of the newest sweep) stores latency samples and power/thermal/clock traces.

The schema comes from Alembic (ensure_schema); rows go in with bulk INSERTs through the models' tables
(COPY on PostgreSQL, executemany INSERTs on SQLite, 5,000 rows a batch), ids assigned here, sequences moved past them on PostgreSQL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import support  # noqa: F401 - before farm: puts the checkout on sys.path
from sqlalchemy import JSON, func, insert, select, text

from farm.db.migrate import ensure_schema
from farm.db.models import (
    ArtifactRow,
    BoardEventRow,
    BoardRow,
    JobRow,
    MetricRow,
    ProvenanceRow,
    RunRow,
    SweepRow,
)
from farm.db.session import get_engine, redact

# model -> (CPU fp32 latency at batch 1 in ms, input shape)
MODELS = {
    "resnet18": (9.0, [1, 3, 224, 224]),
    "resnet50": (24.0, [1, 3, 224, 224]),
    "mobilenet_v2": (4.5, [1, 3, 224, 224]),
    "squeezenet1_1": (2.6, [1, 3, 224, 224]),
    "googlenet": (7.5, [1, 3, 224, 224]),
    "inception_v3": (31.0, [1, 3, 299, 299]),
}
# target -> family, source, boards, latency factor vs CPU int8, Offline parallelism, static W, dynamic W,
#           ambient C, C per W, temperature limit, nominal clock MHz, toolchain, precisions
TARGETS: dict[str, dict[str, Any]] = {
    "cpu": dict(
        family="cpu",
        source="measured",
        boards=4,
        lat=1.0,
        par=3.5,
        sw=35.0,
        dw=60.0,
        amb=30,
        rth=0.35,
        limit=95,
        clock=3000,
        toolchain="onnxruntime_cpu",
        precisions=("fp32", "int8"),
    ),
    "jetson-agx-xavier": dict(
        family="gpu",
        source="emulated",
        boards=2,
        lat=0.45,
        par=3.0,
        sw=9.0,
        dw=21.0,
        amb=25,
        rth=1.2,
        limit=97,
        clock=1377,
        toolchain="gpu_emulator",
        precisions=("fp32", "int8"),
    ),
    "pynq-z2": dict(
        family="fpga",
        source="emulated",
        boards=3,
        lat=7.5,
        par=1.05,
        sw=1.9,
        dw=1.6,
        amb=25,
        rth=9.0,
        limit=85,
        clock=200,
        toolchain="dpu_emulator",
        precisions=("int8",),
    ),
    "kv260": dict(
        family="fpga",
        source="emulated",
        boards=3,
        lat=1.1,
        par=1.6,
        sw=5.0,
        dw=6.5,
        amb=25,
        rth=3.5,
        limit=100,
        clock=300,
        toolchain="dpu_emulator",
        precisions=("int8",),
    ),
    "zcu104": dict(
        family="fpga",
        source="emulated",
        boards=3,
        lat=0.8,
        par=2.6,
        sw=9.0,
        dw=12.0,
        amb=25,
        rth=1.6,
        limit=100,
        clock=300,
        toolchain="dpu_emulator",
        precisions=("int8",),
    ),
    "u50": dict(
        family="fpga",
        source="emulated",
        boards=2,
        lat=0.9,
        par=6.0,
        sw=18.0,
        dw=34.0,
        amb=30,
        rth=0.7,
        limit=97,
        clock=300,
        toolchain="dpu_emulator",
        precisions=("int8",),
    ),
    "vck190": dict(
        family="fpga",
        source="emulated",
        boards=2,
        lat=0.22,
        par=4.0,
        sw=22.0,
        dw=38.0,
        amb=25,
        rth=0.9,
        limit=100,
        clock=1250,
        toolchain="dpu_emulator",
        precisions=("int8",),
    ),
}
BATCHES = (1, 4, 8)
SCENARIOS = ("SingleStream", "Offline")
REPEATS = 2
DAYS = 180
# toolchain releases: (day, version, speed factor, targets it applies to (None: all))
RELEASES = ((0, "3.0.0", 1.00, None), (60, "3.5.0", 0.94, None), (125, "3.5.1", 1.12, {"u50"}))
PERCENTILES = {"p50": 0.0, "p90": 1.2816, "p95": 1.6449, "p99": 2.3263, "p99_9": 3.0902}
CHUNK = 5000


def fingerprint(model: str, precision: str, target: str, batch: int, scenario: str, shape: list[int]) -> str:
    """The same identity farm.services.run.fingerprint hashes (kept in step with it)."""
    ident = {"model": model, "precision": precision, "board_type": target, "batch": batch,
             "scenario": scenario, "input_shape": [batch, *shape[1:]]}  # fmt: skip
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def release(day: float, target: str) -> tuple[str, float]:
    version, factor = RELEASES[0][1], 1.0
    for start, ver, f, only in RELEASES:
        if day >= start:
            version = ver
            if only is None or target in only:
                factor *= f
    return version, factor


class Seeder:
    def __init__(self, url: str, runs: int, seed: int) -> None:
        self.url, self.target_runs, self.rng = url, runs, random.Random(seed)
        self.engine = get_engine(url)
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        self.counts: dict[str, int] = {}

    # -- ids continue after what is there, so seeding twice adds to a database
    def next_ids(self) -> None:
        with self.engine.connect() as conn:
            self.job_id = (conn.scalar(select(func.max(JobRow.id))) or 0) + 1
            self.run_id = (conn.scalar(select(func.max(RunRow.id))) or 0) + 1
            self.metric_id = (conn.scalar(select(func.max(MetricRow.id))) or 0) + 1
            self.event_id = (conn.scalar(select(func.max(BoardEventRow.id))) or 0) + 1
            self.known_boards = set(conn.scalars(select(BoardRow.name)))
            self.known_artifacts = set(conn.scalars(select(ArtifactRow.key)))

    def add(self, table: Any, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)
        if len(self.rows[table]) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Tables in foreign-key order: COPY on PostgreSQL, one executemany INSERT on SQLite."""
        order = (BoardRow, BoardEventRow, SweepRow, ArtifactRow, JobRow, RunRow, MetricRow, ProvenanceRow)
        with self.engine.begin() as conn:
            for model in order:
                batch = self.rows.pop(model, None)
                if not batch:
                    continue
                if conn.dialect.name == "postgresql":
                    copy_rows(conn, model.__table__, batch)
                else:
                    conn.execute(insert(model.__table__), batch)
                self.counts[model.__tablename__] = self.counts.get(model.__tablename__, 0) + len(batch)

    # -- the fleet
    def boards(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        start = self.now - timedelta(days=DAYS)
        for target, spec in TARGETS.items():
            names = [f"{target}-{i:02d}" for i in range(1, spec["boards"] + 1)]
            out[target] = names
            for name in names:
                if name in self.known_boards:
                    continue
                self.add(BoardRow, dict(name=name, board_type=target, family=spec["family"], state="idle",
                                        state_changed_at=start, first_seen=start, last_health_at=self.now,
                                        last_health_ok=True))  # fmt: skip
                self.event(name, start, kind="state", to_state="idle", reason="added from the inventory")
                at = start
                while at < self.now:  # a health check every 4 hours; a bad spell now and then
                    at += timedelta(hours=4, minutes=self.rng.randint(-20, 20))
                    ok = self.rng.random() > 0.01
                    self.event(name, at, kind="health", ok=ok,
                               reason="ok" if ok else "ssh: connection refused (board unreachable)")  # fmt: skip
                    if not ok:
                        self.event(name, at, kind="state", from_state="idle", to_state="bad",
                                   reason="health check failed: ssh: connection refused")  # fmt: skip
                        self.event(name, at + timedelta(minutes=10), kind="state", from_state="bad",
                                   to_state="idle", reason="health check passed")  # fmt: skip
        self.flush()
        return out

    def event(self, board: str, at: datetime, **values: Any) -> None:
        self.add(BoardEventRow, dict(id=self.event_id, board_name=board, at=at, from_state=None,
                                     to_state=None, ok=None, reason=None, details=None) | values)  # fmt: skip
        self.event_id += 1

    # -- sweeps, jobs, runs
    def run(self) -> None:
        self.next_ids()
        boards = self.boards()
        combos = [(p, t, b, sc) for t, spec in TARGETS.items() for p in spec["precisions"]
                  for b in BATCHES for sc in SCENARIOS]  # fmt: skip
        per_sweep = len(combos) * REPEATS
        tail = min(40, self.target_runs)  # runs stored by the newest sweep, which is still going
        n_sweeps = max(math.ceil((self.target_runs - tail) / (per_sweep * 0.995)), 1)
        made, i = 0, 0
        while made < self.target_runs - tail:  # failed jobs store no run: go on until the count is exact
            day = (DAYS - 1) * min(i / n_sweeps, 1.0)
            budget = min(per_sweep, self.target_runs - tail - made)
            made += self.sweep(i, self.now - timedelta(days=DAYS - day), day, combos, boards, budget,
                               running=False, detailed=False)  # fmt: skip
            i += 1
        self.sweep(i, self.now - timedelta(hours=1), DAYS, combos, boards, self.target_runs - made,
                   running=True, detailed=True)  # fmt: skip
        self.flush()
        self.finish_boards(boards)

    def sweep(self, index: int, created: datetime, day: float, combos: list[tuple], boards: dict,
              budget: int, *, running: bool, detailed: bool) -> int:  # fmt: skip
        rng = self.rng
        model = list(MODELS)[index % len(MODELS)]
        sweep_id = str(uuid.UUID(int=rng.getrandbits(128)))
        spec_yaml = (f"name: nightly-{model}\nmodels: [{model}]\nprecisions: [fp32, int8]\n"
                     f"targets: [{', '.join(TARGETS)}]\nbatch_sizes: [1, 4, 8]\n"
                     f"scenarios: [SingleStream, Offline]\nrepeats: {REPEATS}\n")  # fmt: skip
        self.add(SweepRow, dict(id=sweep_id, name=f"nightly-{model}", source=f"sweeps/nightly-{model}.yaml",
                                spec_yaml=spec_yaml, spec_hash=hashlib.sha256(spec_yaml.encode()).hexdigest(),
                                spec={"name": f"nightly-{model}"}, state="running" if running else "done",
                                created_at=created,
                                finished_at=None if running else created + timedelta(hours=2)))  # fmt: skip
        t = created
        stored = waiting = 0
        compile_ids: dict[tuple, int] = {}
        for precision, target, batch, scenario in combos:
            if stored >= budget and not running:
                break
            spec = TARGETS[target]
            version, speed = release(day, target)
            akey = hashlib.sha256(f"{model}/{precision}/{target}/{batch}/{version}".encode()).hexdigest()
            ckey = (precision, target, batch)
            if ckey not in compile_ids:
                if akey not in self.known_artifacts:
                    self.known_artifacts.add(akey)
                    self.add(ArtifactRow, dict(key=akey, model=model, model_sha256=hashlib.sha256(model.encode()).hexdigest(),
                                               precision=precision, target_arch=target, batch_size=batch,
                                               toolchain=spec["toolchain"], toolchain_version=version,
                                               quant_config=None, file_sha256=akey, size_bytes=rng.randint(2, 90) * 2**20,
                                               top1_agreement=rng.uniform(0.85, 1.0) if precision == "int8" else None,
                                               sqnr_db=rng.uniform(12, 25) if precision == "int8" else None,
                                               details={"input_shape": [batch, *MODELS[model][1][1:]]},
                                               compile_seconds=rng.uniform(5, 120), compile_runner="local",
                                               compile_host=None, toolchain_image=None, created_at=t))  # fmt: skip
                compile_ids[ckey] = self.job(sweep_id, f"compile/{model}/{precision}/{target}/b{batch}", "compile",
                                             "cached" if rng.random() < 0.7 else "done", model, precision, target,
                                             batch, None, None, None, akey, None, t, 8.0)  # fmt: skip
            for repeat in range(REPEATS):
                key = f"run/{model}/{precision}/{target}/b{batch}/{scenario}/r{repeat}"
                board = rng.choice(boards[target])
                t += timedelta(seconds=rng.uniform(8, 40))
                if stored >= budget:  # the newest sweep is still going: a few jobs running, the rest queued
                    waiting += 1
                    self.job(sweep_id, key, "run", "running" if waiting <= 4 else "queued", model,
                             precision, target, batch, scenario, repeat, compile_ids[ckey], akey, board, t, None)  # fmt: skip
                    continue
                if rng.random() < 0.006:
                    err = rng.choice(["InfraError: ssh: connection reset by peer (3 attempts)",
                                      "ModelError: DPU compiler: unsupported op HardSwish",
                                      "InfraError: agent timed out after 180 s"])  # fmt: skip
                    self.job(sweep_id, key, "run", "failed", model, precision, target, batch, scenario, repeat,
                             compile_ids[ckey], akey, board, t, 30.0, error=err)  # fmt: skip
                    continue
                job_id = self.job(sweep_id, key, "run", "done", model, precision, target, batch, scenario,
                                  repeat, compile_ids[ckey], akey, board, t, 15.0)  # fmt: skip
                self.result(sweep_id, job_id, key, akey, board, model, precision, target, batch, scenario,
                            repeat, speed, version, t, detailed or rng.random() < 0.02)  # fmt: skip
                stored += 1
        return stored

    def job(self, sweep_id: str, key: str, kind: str, state: str, model: str, precision: str, target: str,
            batch: int, scenario: str | None, repeat: int | None, depends: int | None, akey: str,
            board: str | None, t: datetime, duration: float | None, error: str | None = None) -> int:  # fmt: skip
        job_id = self.job_id
        self.job_id += 1
        finished = state in ("done", "cached", "failed")
        self.add(JobRow, dict(id=job_id, sweep_id=sweep_id, key=key, kind=kind, state=state, model=model,
                              precision=precision, target=target, batch_size=batch, scenario=scenario,
                              repeat=repeat, depends_on_id=depends, artifact_key=akey,
                              board_name=board, attempts=1 if state != "queued" else 0, error=error, created_at=t,
                              started_at=t if state != "queued" else None,
                              finished_at=t + timedelta(seconds=duration * self.rng.uniform(0.7, 1.4))
                              if finished and duration else None))  # fmt: skip
        return job_id

    def result(self, sweep_id: str, job_id: int, key: str, akey: str, board: str, model: str, precision: str,
               target: str, batch: int, scenario: str, repeat: int, speed: float, version: str, t: datetime,
               detailed: bool) -> None:  # fmt: skip
        rng, spec = self.rng, TARGETS[target]
        base = MODELS[model][0] * (0.6 if precision == "int8" else 1.0) * spec["lat"] * speed
        p50 = base * (1 + 0.8 * (batch - 1)) * math.exp(rng.gauss(0, 0.03))
        sigma = 0.04 if spec["family"] == "fpga" else 0.12  # FPGAs are steadier than a shared CPU
        run_id = self.run_id
        self.run_id += 1
        metrics: dict[str, tuple[float, str]] = {}
        if scenario == "SingleStream":
            for name, z in PERCENTILES.items():
                metrics[f"latency_ms_{name}"] = (p50 * math.exp(sigma * z), "ms")
            metrics["latency_ms_mean"] = (p50 * math.exp(sigma**2 / 2), "ms")
            ips, util = batch * 1000.0 / p50, 0.55
        else:
            ips, util = batch * 1000.0 / p50 * spec["par"] * math.exp(rng.gauss(0, 0.02)), 0.95
            for name, z in PERCENTILES.items():
                metrics[f"offline_completion_ms_{name}"] = (5000.0 * (0.5 + 0.1 * z), "ms")
        metrics["throughput_ips"] = (ips, "1/s")
        watts = spec["sw"] + spec["dw"] * util * math.exp(rng.gauss(0, 0.02))
        temp = min(spec["amb"] + spec["rth"] * watts, spec["limit"] + 1)
        throttled = temp > spec["limit"]
        clock = spec["clock"] * (0.5 if throttled else 1.0)
        has_power = not (target == "cpu" and run_id % 20 == 0)  # RAPL is missing in some CPU hosts (a VM)
        if has_power:
            metrics |= {"power_w": (watts, "W"), "power_w_peak": (watts * 1.08, "W"),
                        "energy_mj_per_inference": (1000.0 * watts / ips, "mJ"),
                        "inferences_per_joule": (ips / watts, "1/J")}  # fmt: skip
        metrics |= {"temp_c_max": (temp, "C"), "clock_mhz_min": (clock, "MHz")}
        source = spec["source"]
        samples = traces = None
        if detailed:
            n = 1000
            samples = (
                [round(p50 * math.exp(sigma * rng.gauss(0, 1)), 4) for _ in range(n)]
                if scenario == "SingleStream"
                else None
            )
            ts = [i * 0.05 for i in range(300)]
            traces = {
                "power": {"t_s": ts, "values": [round(watts * (1 + 0.03 * rng.gauss(0, 1)), 3) for _ in ts],
                          "unit": "W", "sensor": "hwmon:ina226"},
                "thermal": {"t_s": ts, "values": [round(spec["amb"] + (temp - spec["amb"]) * (1 - math.exp(-x / 5)), 2) for x in ts],
                            "unit": "C", "sensor": "hwmon-temp"},
                "clock": {"t_s": ts, "values": [clock] * len(ts), "unit": "MHz", "sensor": "clock"},
            }  # fmt: skip
        finished = t + timedelta(seconds=12)
        self.add(RunRow, dict(id=run_id, idempotency_key=f"{sweep_id}/{key}", sweep_id=sweep_id, job_id=job_id,
                              artifact_key=akey, board_name=board, model=model, precision=precision, target=target,
                              batch_size=batch, scenario=scenario, repeat=repeat, source=source, result_valid=True,
                              fingerprint=fingerprint(model, precision, target, batch, scenario, MODELS[model][1]),
                              started_at=t, finished_at=finished, created_at=finished, samples_ms=samples,
                              traces=traces,
                              emulation_model=("farm-gpu-perf/1" if spec["family"] == "gpu" else "farm-dpu-perf/1")
                              if source == "emulated" else None))  # fmt: skip
        for name, (value, unit) in metrics.items():
            self.add(MetricRow, dict(id=self.metric_id, run_id=run_id, name=name, value=value, unit=unit,
                                     source=source))  # fmt: skip
            self.metric_id += 1
        runtime = (
            "onnxruntime"
            if target == "cpu"
            else ("emulated-gpu" if spec["family"] == "gpu" else "emulated-dpu")
        )
        self.add(ProvenanceRow, dict(run_id=run_id, farm_version="0.1.0", farm_git_sha="0" * 40, runtime=runtime,
                                     runtime_version="1.22.0", toolchain=spec["toolchain"], toolchain_version=version,
                                     loadgen_version="4.1", hostname=board, kernel="6.1.0-28-amd64",
                                     cpu_model="x86-64" if target == "cpu" else "Cortex-A53",
                                     board_serial=f"EMU-{board}" if source == "emulated" else None,
                                     environment={"seeded": True, "board": board} if detailed else None))  # fmt: skip

    def finish_boards(self, boards: dict[str, list[str]]) -> None:
        """The present: one board bad, one drained, a few running the newest sweep's jobs."""
        from sqlalchemy import update

        with self.engine.begin() as conn:
            running = conn.execute(
                select(JobRow.id, JobRow.board_name)
                .where(JobRow.state == "running")
                .order_by(JobRow.id.desc())
            ).all()
            busy: set[str] = set()
            for job_id, board in running:
                if board and board not in busy:
                    busy.add(board)
                    conn.execute(update(BoardRow).where(BoardRow.name == board).values(
                        state="running", current_job_id=job_id, state_reason="running a job",
                        worker=f"farm-worker@{board}"))  # fmt: skip
            for name, state, reason in (
                (boards["u50"][-1], "bad", "health check failed: xbutil: device not found"),
                (boards["pynq-z2"][-1], "maintenance", "drained: SD card swap"),
            ):
                if name not in busy:
                    conn.execute(update(BoardRow).where(BoardRow.name == name).values(
                        state=state, state_reason=reason, state_changed_at=self.now, last_health_ok=state != "bad"))  # fmt: skip
            if self.engine.dialect.name == "postgresql":  # ids were given here: move the sequences past them
                for table in ("jobs", "runs", "metrics", "board_events"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))  # fmt: skip
                conn.execute(text("ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))


def copy_rows(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY through psycopg (several times faster than INSERTs); JSON values as JSON text."""
    columns = [c for c in table.columns if c.key in rows[0]]
    is_json = [isinstance(c.type, JSON) for c in columns]
    names = ", ".join(f'"{c.name}"' for c in columns)
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[c.key]) if j and row[c.key] is not None else row[c.key]
                    for c, j in zip(columns, is_json, strict=True)
                ]
            )


def seed(url: str, runs: int, seed_value: int = 0) -> dict[str, int]:
    ensure_schema(url)
    seeder = Seeder(url, runs, seed_value)
    seeder.run()
    return seeder.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL (SQLite file or PostgreSQL database)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    counts = seed(args.db, args.runs, args.seed)
    took = time.perf_counter() - started
    print(f"seeded {redact(args.db)} in {took:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
