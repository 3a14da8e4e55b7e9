"""Run jobs: take a board of the target type, run the agent on it, store the result exactly once."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.accuracy.runs import accuracy_config, accuracy_metrics, extra_timeout_s
from farm.artifacts import ArtifactStore
from farm.config import Settings
from farm.db.models import (
    ArtifactRow,
    JobRow,
    MetricRow,
    ProvenanceRow,
    RunAttachmentRow,
    RunRow,
    SweepRow,
    utcnow,
)
from farm.db.session import session_scope
from farm.errors import FarmError, InfraError
from farm.fleet import states
from farm.fleet.sensors import agent_emulation, agent_sensors
from farm.fleet.transports import forget, transport_for
from farm.inventory import Board, BoardType, Inventory, load_inventory
from farm.provenance import farm_version, git_sha
from farm.services import soak, stability
from farm.services.sweeps import record_failure
from farm.sweep.schema import Sweep
from farm.transport.base import Transport

log = logging.getLogger(__name__)

SAMPLE_MEMORY_BYTES = 256 * 1024 * 1024  # inputs the agent pre-generates, at most
EMULATED_SAMPLES = 16  # distinct inputs on an emulated board (each one's real output is computed once)
NOISE_CHECK_S = 0.5  # the agent's pre-run host noise check (workers/agent/noise.py)

LATENCY_KEYS = {
    "min": "min",
    "max": "max",
    "mean": "mean",
    "p50": "p50",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
    "p99.9": "p99_9",
}


def fingerprint(
    *,
    model: str,
    precision: str,
    board_type: str,
    batch_size: int,
    scenario: str,
    input_shape: list[int],
    mode: str | None = None,
) -> str:
    """Groups results that may be compared over time. Toolchain, runtime and model bytes are left out on
    purpose: a change in those is exactly what history and regression checks must see within one group.
    ``mode`` "soak" keeps thermal soak runs (long, hot) apart from ordinary runs; None leaves the
    fingerprint of an ordinary run as it always was (docs/stability-and-provenance.md)."""
    ident: dict[str, Any] = {
        "model": model,
        "precision": precision,
        "board_type": board_type,
        "batch": batch_size,
        "scenario": scenario,
        "input_shape": input_shape,
    }
    if mode is not None:
        ident["mode"] = mode
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


class BoardUnavailable(FarmError):
    """This worker's board may not take jobs now (bad, drained, retired): the job goes back to the queue."""

    def __init__(self, board: str, state: str) -> None:
        super().__init__(f"board {board} is {state}")
        self.board, self.state = board, state


class NoHealthyBoard(FarmError):
    """No board of the job's type can take it: failing the job beats leaving it queued forever."""


def claim_board(
    settings: Settings, inventory: Inventory, target: str, job_id: int, received: datetime | None = None
) -> Board:
    """The board this job runs on, moved idle -> running atomically, in the same transaction as the job's
    own move to running (started at ``received``, one more attempt, on that board).

    A worker bound to a board (`farm worker --board`) uses that board or hands the job back; an unbound
    worker (embedded mode) takes the first idle board of the type."""
    if settings.board:
        board = inventory.board(settings.board)
        if _claim(settings, board, job_id, received):
            return board
        raise BoardUnavailable(board.name, states.get_state(settings.db_url, board.name).state)
    candidates = [b for b in inventory.boards_of(target) if b.transport == "local"] or inventory.boards_of(
        target
    )
    for board in candidates:
        if _claim(settings, board, job_id, received):
            return board
    usable = [b.name for b in candidates if states.get_state(settings.db_url, b.name).state in states.USABLE]
    if not usable:
        raise NoHealthyBoard(f"no healthy board of type {target!r}: {_states_of(settings, candidates)}")
    raise InfraError(f"every board of type {target!r} is busy")


def _claim(settings: Settings, board: Board, job_id: int, received: datetime | None) -> bool:
    with session_scope(settings.db_url) as s:
        if not states.set_state(
            settings.db_url,
            board.name,
            "running",
            f"job {job_id}",
            only_from=("idle",),
            job_id=job_id,
            session=s,
        ):
            return False
        row = s.get(JobRow, job_id)
        assert row is not None
        row.state, row.started_at, row.board_name = "running", received or utcnow(), board.name
        row.attempts += 1
        return True


def _states_of(settings: Settings, boards: list[Board]) -> str:
    parts = []
    for b in boards:
        st = states.get_state(settings.db_url, b.name)
        parts.append(f"{b.name} {st.state}" + (f" ({st.reason})" if st.reason else ""))
    return "; ".join(parts) or "none in the inventory"


def board_failed(settings: Settings, inventory: Inventory, board: Board, target: str, reason: str) -> None:
    """An infrastructure failure on this board: it goes bad; the job is retried on another board of the
    type if there is one, else it fails now with the reason (a sweep never waits on a queue nobody serves)."""
    states.set_state(settings.db_url, board.name, "bad", reason, only_from=("running", "idle"))
    forget(board.name)
    others = states.boards_usable(settings.db_url, target, exclude=board.name)
    if not others:
        raise NoHealthyBoard(
            f"{reason} (board {board.name} is now bad; no other healthy board of type {target!r})"
        )


def agent_config(
    spec: Sweep,
    job: JobRow,
    artifact: ArtifactRow,
    artifact_path: str,
    backend: str,
    log_dir: str,
    board: Board | None = None,
    board_type: BoardType | None = None,
) -> dict[str, Any]:
    """The agent's config for one run job. With the board and its type, the sensors the type carries
    (read under the board's root) and, for an emulated board, where its state lives and its time scale."""
    shape = (artifact.details or {}).get("input_shape") or [job.batch_size]
    sample_bytes = 4 * math.prod(shape)
    # An emulated board computes each distinct input's real output on this CPU before the timed test (its
    # timing is the model's); fewer distinct inputs keep that preparation short. LoadGen cycles them.
    distinct = EMULATED_SAMPLES if board is not None and board.emulation is not None else 64
    config = {
        "artifact": artifact_path,
        "artifact_sha256": artifact.file_sha256,
        "backend": backend,
        "scenario": job.scenario,
        "batch_size": job.batch_size,
        "loadgen": spec.loadgen.model_dump(),
        "sample_count": int(max(2, min(distinct, SAMPLE_MEMORY_BYTES // max(sample_bytes, 1)))),
        "seed": job.repeat or 0,
        "log_dir": log_dir,
        "sensors": agent_sensors(board_type, board) if board is not None and board_type is not None else [],
        "emulation": agent_emulation(board) if board is not None else None,
        "ambient_path": board.ambient_sensor if board is not None else None,
        "noise_check": NOISE_CHECK_S,
    }
    if job.kind == "soak" and spec.thermal is not None:
        config = soak.soak_agent_config(config, spec.thermal)
    return config


def run_run_job(settings: Settings, job_id: int, *, transport: Transport | None = None) -> str:
    """Measure and store one run job; returns its final state ("done" or "failed"). Raises InfraError for
    the task layer to retry. What follows (repeats, roll-up, result sinks) is :func:`farm.scheduler.after_job`'s,
    called by the task once this returns, with the board already free."""
    received = utcnow()  # the job's start as the farm sees it: overhead is measured from here
    with session_scope(settings.db_url) as s:  # one read for all the job needs (it runs per job)
        job = s.get(JobRow, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        finished = job.state if job.state in ("done", "failed") else None
        if finished is None:
            artifact, spec = _inputs(s, job)
            s.expunge_all()  # detached copies for use after the transaction
    if finished is not None:  # redelivered after it finished: what follows is the scheduler's, as always
        return finished

    inventory = load_inventory(settings.inventory_dir)
    board = claim_board(settings, inventory, job.target, job_id, received)
    released = False  # the board goes back to idle in the result's own transaction when all went well
    try:
        job.board_name = board.name
        try:
            report = _measure(settings, inventory, board, spec, job, artifact, transport)
        except InfraError as exc:
            board_failed(settings, inventory, board, job.target, str(exc))
            raise
        if report.get("status") != "ok":
            err = report.get("error") or {}
            message = err.get("message", "agent reported an error")
            if err.get("kind") == "model":
                record_failure(settings.db_url, job_id, f"{stability.MODEL_ERROR} {message}")
                return "failed"
            board_failed(settings, inventory, board, job.target, f"agent: {message}")
            raise InfraError(f"agent: {message}")
        store_result(
            settings, job, artifact, board, inventory.board_types[job.target].source, report, release=True
        )
        released = True
        return "done"
    finally:
        if not released:
            _release(settings, board, job_id)


def _inputs(s: Session, job: JobRow) -> tuple[ArtifactRow, Sweep]:
    """The artifact a run job measures (its compile job's) and the sweep's spec."""
    parent = s.get(JobRow, job.depends_on_id) if job.depends_on_id else None
    if parent is None or parent.artifact_key is None:
        raise InfraError(f"job {job.id}: its compile job has no artifact yet")
    artifact = s.get(ArtifactRow, parent.artifact_key)
    sweep = s.get(SweepRow, job.sweep_id)
    assert artifact is not None and sweep is not None
    return artifact, Sweep.model_validate(sweep.spec)


def _release(settings: Settings, board: Board, job_id: int, session: Session | None = None) -> None:
    """The board is idle again (only if it is still running this worker's job: a drain or a bad state set
    meanwhile stays)."""
    states.set_state(
        settings.db_url, board.name, "idle", f"job {job_id} finished", only_from=("running",), session=session
    )


def _measure(
    settings: Settings,
    inventory: Inventory,
    board: Board,
    spec: Sweep,
    job: JobRow,
    artifact: ArtifactRow,
    transport: Transport | None,
) -> dict[str, Any]:
    """Ship the artifact, run the agent, parse its report. InfraError for anything the board got wrong."""
    store = ArtifactStore(settings.artifact_dir)
    local_path = store.model_path(artifact.key)
    if not local_path.is_file():
        raise InfraError(f"artifact {artifact.key[:12]} is missing from the store at {settings.artifact_dir}")
    transport = transport or transport_for(inventory, board)
    sent_before = getattr(transport, "bytes_uploaded", 0) + getattr(transport, "agent_bytes_uploaded", 0)
    config = agent_config(
        spec,
        job,
        artifact,
        transport.artifact_path(artifact.key, local_path),
        inventory.board_types[job.target].backend,
        transport.log_dir(settings.data_dir, job.sweep_id, f"job-{job.id}"),
        board,
        inventory.board_types[job.target],
    )
    accuracy = accuracy_config(settings, spec, job, artifact, config, transport)  # farm/accuracy/runs.py
    config.update((k, v) for k, v in accuracy.items() if k in ("reference", "dataset"))
    longest_ms = max(spec.loadgen.min_duration_ms, config["loadgen"]["min_duration_ms"])  # a soak's
    tests = spec.loadgen.server_search_probes if job.scenario == "Server" else 1  # one LoadGen test per probe
    timeout = longest_ms / 1000 * 4 * tests + settings.agent_timeout_margin_s + NOISE_CHECK_S
    timeout += extra_timeout_s(accuracy)
    outcome = transport.run_agent(config, timeout)
    sent = (
        getattr(transport, "bytes_uploaded", 0) + getattr(transport, "agent_bytes_uploaded", 0) - sent_before
    )
    try:
        report = json.loads(outcome.stdout)
        report["farm_bytes_uploaded"] = sent  # artifact and agent bytes this run shipped to the board
        return report
    except json.JSONDecodeError:
        tail = (outcome.stderr or outcome.stdout)[-400:]
        raise InfraError(f"agent crashed (exit {outcome.returncode}) without a report: {tail}") from None


def time_scale(report: dict[str, Any]) -> float:
    """Wall seconds per emulated second of an emulated run (1.0 for a measured one). The virtual lab may run
    its boards faster than real time (docs/virtual-lab.md s3): the emulated backend then paces to
    latency x time_scale, so the wall times the agent measured are divided by it to give board times."""
    value = (report.get("emulation") or {}).get("time_scale")
    return float(value) if isinstance(value, int | float) and 0 < value <= 1 else 1.0


def _metrics(report: dict[str, Any], scenario: str, source: str, batch_size: int = 1) -> list[MetricRow]:
    """LoadGen's latencies. In Offline they run from the one query's issue to each sample's completion,
    not per inference, so they are kept under their own names and `latency_ms_*` stays unmeasured.
    Then power, energy, temperature and clock figures when the board has the sensors."""
    scale = time_scale(report)
    prefix = "offline_completion_ms" if scenario == "Offline" else "latency_ms"
    out = []
    for key, suffix in LATENCY_KEYS.items():
        value = (report.get("latency_ms") or {}).get(key)
        if value is not None:
            out.append(
                MetricRow(name=f"{prefix}_{suffix}", value=float(value) / scale, unit="ms", source=source)
            )
    if report.get("throughput_ips") is not None:
        out.append(
            MetricRow(
                name="throughput_ips",
                value=float(report["throughput_ips"]) * scale,
                unit="1/s",
                source=source,
            )
        )
    out += [MetricRow(name=n, value=v, unit=u, source=source) for n, v, u in scenario_metrics(report)]
    out += [MetricRow(name=n, value=v, unit=u, source=source) for n, v, u in accuracy_metrics(report)]
    return out + [
        MetricRow(name=name, value=value, unit=unit, source=source)
        for name, value, unit in power_metrics(report, batch_size)
    ]


def scenario_metrics(report: dict[str, Any]) -> list[tuple[str, float, str]]:
    """Server's headline (docs/scenarios.md): the highest probed QPS (LoadGen queries/s, one query = one
    batch) whose latency at the bound's percentile stayed under the bound, and LoadGen's p99 at it. None
    found: no metric (never a zero); the probes are kept in provenance.environment.server_search."""
    search = report.get("server_search") or {}
    scale = time_scale(report)
    out: list[tuple[str, float, str]] = []
    if search.get("qps_max") is not None:
        out.append(("server_qps_max", float(search["qps_max"]) * scale, "1/s"))
    if search.get("latency_ms_p99_at_max") is not None:
        out.append(("server_latency_ms_p99_at_max", float(search["latency_ms_p99_at_max"]) / scale, "ms"))
    return out


def attachments(report: dict[str, Any]) -> list[RunAttachmentRow]:
    """LoadGen's summary and detail logs from the report (the agent caps them: docs/scenarios.md), one
    text/plain attachment each, stored with the run in its transaction."""
    out = []
    for kind in ("summary", "detail"):
        entry = (report.get("loadgen_logs") or {}).get(kind)
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            continue
        text = entry["text"].replace("\x00", "")  # PostgreSQL text holds no NUL
        data = text.encode()
        out.append(
            RunAttachmentRow(
                name=str(entry.get("name") or f"mlperf_log_{kind}.txt"),
                media_type="text/plain",
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content=text,
            )
        )
    return out


def _logs_meta(report: dict[str, Any]) -> dict[str, Any] | None:
    """What the agent said about its logs (bytes, truncated, cap), without their text."""
    logs = report.get("loadgen_logs")
    if not isinstance(logs, dict):
        return None
    return {k: {f: v for f, v in e.items() if f != "text"} for k, e in logs.items() if isinstance(e, dict)}


def power_metrics(report: dict[str, Any], batch_size: int = 1) -> list[tuple[str, float, str]]:
    """(name, value, unit) of the power, energy, thermal and clock figures the report carries.

    Energy per inference = average power x LoadGen's measured window / inferences in that window (the
    samples LoadGen completed x the batch); the window is in board time for an emulated run."""
    out: list[tuple[str, float, str]] = []
    power = report.get("power") or {}
    avg, peak, window = power.get("avg_w"), power.get("peak_w"), power.get("window_s")
    if avg is not None:
        out.append(("power_w", float(avg), "W"))
    if peak is not None:
        out.append(("power_w_peak", float(peak), "W"))
    inferences = power.get("inferences")
    if inferences is None and report.get("sample_count") is not None:
        inferences = int(report["sample_count"]) * batch_size
    if avg is not None and window and inferences:
        joules = float(avg) * float(window) / time_scale(report) / int(inferences)
        if joules > 0:
            out.append(("energy_mj_per_inference", joules * 1e3, "mJ"))
            out.append(("inferences_per_joule", 1.0 / joules, "1/J"))
    max_c = (report.get("thermal") or {}).get("max_c")
    if max_c is not None:
        out.append(("temp_c_max", float(max_c), "C"))
    min_mhz = (report.get("clock") or {}).get("min_mhz")
    if min_mhz is not None:
        out.append(("clock_mhz_min", float(min_mhz), "MHz"))
    return out


def traces(report: dict[str, Any]) -> dict[str, Any] | None:
    """The power / thermal / clock traces for `runs.traces`: {"t_s", "values", "unit", "sensor", ...},
    t in seconds from the start of LoadGen's measured window (board time for an emulated run)."""
    scale = time_scale(report)
    out = {}
    for quantity in ("power", "thermal", "clock"):
        obj = report.get(quantity)
        if not isinstance(obj, dict):
            continue
        trace = obj.get("trace") or {}
        out[quantity] = {
            "t_s": [t / scale for t in trace.get("t_s") or []],
            "values": list(trace.get("values") or []),
            "unit": obj.get("unit"),
            "sensor": obj.get("sensor"),
            "rate_hz": obj.get("rate_hz"),
            "resolution": obj.get("resolution"),
            "samples": obj.get("samples"),
            "window_s": obj["window_s"] / scale if obj.get("window_s") is not None else None,
            "note": obj.get("note"),
        }
    if out and scale != 1.0:
        out["time_scale"] = scale
    return out or None


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _nominal_clock_mhz(settings: Settings, board: Board) -> float | None:
    """The board type's nominal accelerator clock from the catalog (None for a CPU, or if unknown)."""
    try:
        accelerator = load_inventory(settings.inventory_dir).board_types[board.type].accelerator
    except Exception:  # provenance is best-effort: never fail storing a result over it
        return None
    return float(accelerator.clock_mhz) if accelerator and accelerator.clock_mhz else None


def store_result(
    settings: Settings,
    job: JobRow,
    artifact: ArtifactRow,
    board: Board,
    source: str,
    report: dict[str, Any],
    *,
    release: bool = False,
) -> bool:
    """Insert the run, its metrics and provenance, and finish the job, in one transaction (with
    ``release``, the board's return to idle too). A second delivery of the same job hits the idempotency
    key and writes nothing; returns False then."""
    env = report.get("environment") or {}
    scale = time_scale(report)
    nominal_mhz = env.get("accelerator_clock_mhz") or _nominal_clock_mhz(settings, board)
    run_traces = traces(report)
    samples = [s / scale for s in (report.get("samples_ms") or [])[:10000]]
    run_metrics = _metrics(report, job.scenario or "", source, job.batch_size)
    flags = stability.noise_flags(report.get("noise"))
    if job.kind == "soak":  # thermal soak: analysed here (farm/services/soak.py)
        analysis = soak.analyse_run(settings.db_url, job.sweep_id, run_traces, samples, report, nominal_mhz)
        run_traces = {**(run_traces or {}), "soak": analysis}
        run_metrics += [
            MetricRow(name=n, value=v, unit=u, source=source) for n, v, u in soak.metrics(analysis)
        ]
        flags += soak.flags(analysis)
    run = RunRow(
        idempotency_key=f"{job.sweep_id}/{job.key}",
        sweep_id=job.sweep_id,
        job_id=job.id,
        artifact_key=artifact.key,
        board_name=board.name,
        model=job.model,
        precision=job.precision,
        target=job.target,
        batch_size=job.batch_size,
        scenario=job.scenario or "",
        repeat=job.repeat or 0,
        source=source,
        result_valid=report.get("result_valid"),
        fingerprint=fingerprint(
            model=job.model,
            precision=job.precision,
            board_type=job.target,
            batch_size=job.batch_size,
            scenario=job.scenario or "",
            input_shape=(artifact.details or {}).get("input_shape") or [],
            mode="soak" if job.kind == "soak" else None,
        ),
        started_at=_ts(report.get("started_at")),
        finished_at=_ts(report.get("finished_at")),
        samples_ms=samples,
        traces=run_traces,
        emulation_model=(report.get("emulation") or {}).get("model_version"),
        noise=report.get("noise"),
        flags=flags or None,
        metrics=run_metrics,
        attachments=attachments(report),
        provenance=ProvenanceRow(
            farm_version=farm_version(),
            farm_git_sha=git_sha(),
            runtime=env.get("runtime"),
            runtime_version=env.get("runtime_version"),
            toolchain=artifact.toolchain,
            toolchain_version=artifact.toolchain_version,
            loadgen_version=env.get("loadgen_version"),
            hostname=env.get("hostname"),
            kernel=env.get("kernel"),
            cpu_model=env.get("cpu_model"),
            board_serial=env.get("board_serial"),
            artifact_sha256=artifact.file_sha256,
            dpu_fingerprint=env.get("dpu_fingerprint"),
            accelerator_clock_mhz=nominal_mhz,
            ambient_c=env.get("ambient_c"),
            environment={
                **env,
                "loadgen": report.get("loadgen"),
                "latency_source": report.get("latency_source"),
                "agent_process_started_at": report.get("process_started_at"),
                "bytes_uploaded": report.get("farm_bytes_uploaded"),
                "emulation": report.get("emulation"),
                "time_scale": scale,
                "headline": report.get("headline"),
                "server_search": report.get("server_search"),
                "loadgen_logs": _logs_meta(report),
            },
        ),
    )
    try:
        with session_scope(settings.db_url) as s:
            s.add(run)
            s.flush()
            row = s.get(JobRow, job.id)
            assert row is not None
            row.state, row.finished_at, row.error = "done", utcnow(), None
            if release:
                _release(settings, board, job.id, s)
        return True
    except IntegrityError:
        log.info("job %s was already stored (redelivery): no second result", job.key)
        with session_scope(settings.db_url) as s:
            row = s.get(JobRow, job.id)
            if row is not None and row.state != "done":
                row.state, row.finished_at = "done", utcnow()
            if release:
                _release(settings, board, job.id, s)
        return False
