"""`farm submit --dry-run`: what a sweep would do, validated exactly as a real submit, and nothing written.

The plan: jobs per (model, precision, target, batch) and scenario, the compiles whose artifact a previous
sweep stored (reused when the model file and the toolchain are unchanged: the artifact key decides at run
time), and an estimate of the time. The estimate comes from the database's own history where it has one
(the median wall time of the newest runs and compiles of the same configuration), else from the sweep's
LoadGen settings; it says which. The database is only read, and not even created when it does not exist.
"""

from __future__ import annotations

import contextlib
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select

from farm.config import Settings
from farm.db.models import ArtifactRow, JobRow, RunRow
from farm.db.session import get_engine, session_scope
from farm.inventory import load_inventory
from farm.sweep.expand import PlannedJob, expand
from farm.sweep.load import LoadedSweep, load_sweep

COMPILE_GUESS_S = 20.0  # a compile with no history (the zoo's models on this machine: 5-60 s)
AGENT_START_S = 3.0  # agent start, model load and warm-up around LoadGen's own duration
HISTORY = 20  # newest runs of a configuration the estimate reads


@dataclass
class Plan:
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # per configuration: compiles, runs, estimate
    jobs: int = 0
    compiles: int = 0
    reused: int = 0
    estimate_s: float = 0.0
    from_history: int = 0  # jobs whose estimate is their configuration's history
    parallel: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _history_ready(db_url: str) -> bool:
    """Whether the database exists and holds the farm's tables (a dry run creates nothing)."""
    if db_url.startswith("sqlite:///"):
        path = db_url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not Path(path).is_file():
            return False
    try:
        return inspect(get_engine(db_url)).has_table("runs")
    except Exception:  # unreachable: no history, still a plan
        return False


def _run_guess_s(loaded: LoadedSweep, job: PlannedJob) -> float:
    lg = loaded.spec.loadgen
    tests = lg.server_search_probes if job.scenario == "Server" else 1
    return tests * lg.min_duration_ms / 1000.0 + AGENT_START_S


def plan_sweep(settings: Settings, path: str | Path, *, max_jobs: int | None = None) -> Plan:
    """The sweep's plan (SweepError for bad input, exactly as `farm submit` would say it)."""
    inventory = load_inventory(settings.inventory_dir)
    loaded = load_sweep(path, inventory, max_jobs=max_jobs or settings.max_jobs)
    planned = expand(loaded.spec, inventory.precisions_of(loaded.spec.targets))
    plan = Plan(name=loaded.spec.name, jobs=len(planned), warnings=list(loaded.warnings))
    history = _history_ready(settings.db_url)
    rows: dict[tuple, dict[str, Any]] = {}
    per_target_s: dict[str, float] = defaultdict(float)
    compile_s = 0.0
    with session_scope(settings.db_url) if history else contextlib.nullcontext() as s:
        for job in planned:
            key = (job.model, job.precision, job.target, job.batch_size)
            row = rows.setdefault(
                key,
                dict(zip(("model", "precision", "target", "batch"), key, strict=True))
                | {"compile": "", "runs": defaultdict(int), "estimate_s": 0.0},
            )
            if job.kind == "compile":
                plan.compiles += 1
                stored, seconds = _stored_artifact(s, job) if history else (None, None)
                if stored:
                    plan.reused += 1
                    row["compile"] = f"stored {stored[:12]}"
                    seconds = 0.0
                else:
                    row["compile"] = "new"
                took = seconds if seconds is not None else COMPILE_GUESS_S
                plan.from_history += seconds is not None
                compile_s += took
                row["estimate_s"] += took
                continue
            row["runs"][job.scenario or "?"] += 1
            past = _past_run_s(s, job) if history else None
            took = past if past is not None else _run_guess_s(loaded, job)
            plan.from_history += past is not None
            per_target_s[job.target] += took
            row["estimate_s"] += took
    plan.rows = [dict(r, runs=dict(r["runs"])) for r in rows.values()]
    if settings.embedded:  # one process runs every job in turn
        plan.estimate_s = compile_s + sum(per_target_s.values())
        plan.parallel = "embedded: one job at a time"
    else:  # each target's boards in parallel; compiles on the compile hosts (at least one)
        boards = {t: max(1, len(inventory.boards_of(t))) for t in per_target_s}
        hosts = max(1, len(inventory.docker_hosts))
        plan.estimate_s = compile_s / hosts + max(
            (per_target_s[t] / boards[t] for t in per_target_s), default=0.0
        )
        plan.parallel = f"distributed: {', '.join(f'{t} x{n}' for t, n in sorted(boards.items()))} boards, {hosts} compile hosts"
    return plan


def _stored_artifact(s: Any, job: PlannedJob) -> tuple[str | None, float | None]:
    """The newest artifact a finished compile of this configuration stored, and its compile time."""
    found = s.execute(
        select(ArtifactRow.key, ArtifactRow.compile_seconds)
        .join(JobRow, JobRow.artifact_key == ArtifactRow.key)
        .where(
            JobRow.kind == "compile",
            JobRow.model == job.model,
            JobRow.precision == job.precision,
            JobRow.target == job.target,
            JobRow.batch_size == job.batch_size,
            JobRow.state.in_(("done", "cached")),
        )
        .order_by(JobRow.id.desc())
        .limit(1)
    ).first()
    return (found[0], found[1]) if found else (None, None)


def _past_run_s(s: Any, job: PlannedJob) -> float | None:
    """The median wall time of the newest runs of this configuration (None: no history)."""
    rows = s.execute(
        select(RunRow.started_at, RunRow.finished_at)
        .where(
            RunRow.model == job.model,
            RunRow.precision == job.precision,
            RunRow.target == job.target,
            RunRow.batch_size == job.batch_size,
            RunRow.scenario == (job.scenario or ""),
            RunRow.started_at.is_not(None),
            RunRow.finished_at.is_not(None),
        )
        .order_by(RunRow.id.desc())
        .limit(HISTORY)
    ).all()
    took = [(b - a).total_seconds() for a, b in rows if b >= a]
    return statistics.median(took) + AGENT_START_S if took else None
