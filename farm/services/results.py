"""Result recording: the agent's report, checked against the contract (workers/agent/protocol.py REPORT),
becomes one run with its metrics, traces, LoadGen logs and provenance, stored exactly once (the job's
idempotency key), with the fingerprint that groups comparable runs."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from farm.accuracy.runs import accuracy_metrics
from farm.alerts.series import TIME_SCALED
from farm.config import Settings
from farm.db.models import ArtifactRow, JobRow, MetricRow, ProvenanceRow, RunAttachmentRow, RunRow, utcnow
from farm.db.session import session_scope
from farm.errors import InfraError
from farm.inventory import Board, load_inventory
from farm.metrics import stored
from farm.provenance import farm_version, git_sha
from farm.services import claims, soak, stability
from farm.targets import is_board_cpu
from farm.transport.base import AgentOutcome
from farm.workers.agent import protocol
from farm.workers.agent.protocol import read, section, time_scale

log = logging.getLogger(__name__)

#: Most SUT-side latency samples stored with a run.
SAMPLES_STORED = 10000


def received_report(outcome: AgentOutcome, bytes_uploaded: int) -> dict[str, Any]:
    """The agent's report from its output, checked against the contract, with the bytes this run shipped
    to the board. InfraError when there is none (the agent crashed) or it breaks the contract (every bad
    field named): the board, not the model, got something wrong."""
    try:
        report = json.loads(outcome.stdout)
    except json.JSONDecodeError:
        tail = (outcome.stderr or outcome.stdout)[-400:]
        raise InfraError(f"agent crashed (exit {outcome.returncode}) without a report: {tail}") from None
    try:
        protocol.check_report(report)
    except protocol.ContractError as exc:
        raise InfraError(f"agent (exit {outcome.returncode}) sent a bad report: {exc}") from None
    report["farm_bytes_uploaded"] = bytes_uploaded  # artifact and agent bytes this run shipped to the board
    return report


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


def _metrics(report: dict[str, Any], scenario: str, source: str, batch_size: int = 1) -> list[MetricRow]:
    """LoadGen's latencies. In Offline they run from the one query's issue to each sample's completion,
    not per inference, so they are kept under their own names and `latency_ms_*` stays unmeasured.
    Then power, energy, temperature and clock figures when the board has the sensors."""
    scale = time_scale(report)
    prefix = "offline_completion_ms" if scenario == "Offline" else "latency_ms"
    out = []
    for key in protocol.LATENCY_KEYS:
        value = read(report, "latency_ms", key)
        if value is not None:
            name = f"{prefix}_{key.replace('.', '_')}"
            out.append(_row(stored(name, float(value) / scale), source))
    throughput = read(report, "throughput_ips")
    if throughput is not None:
        out.append(_row(stored("throughput_ips", float(throughput) * scale), source))
    produced = scenario_metrics(report) + accuracy_metrics(report) + power_metrics(report, batch_size)
    return out + [_row(m, source) for m in produced]


def _row(metric: tuple[str, float, str], source: str) -> MetricRow:
    name, value, unit = metric
    return MetricRow(name=name, value=value, unit=unit, source=source)


def scenario_metrics(report: dict[str, Any]) -> list[tuple[str, float, str]]:
    """Server's headline (docs/scenarios.md): the highest probed QPS (LoadGen queries/s, one query = one
    batch) whose latency at the bound's percentile stayed under the bound, and LoadGen's p99 at it. None
    found: no metric (never a zero); the probes are kept in provenance.environment.server_search."""
    scale = time_scale(report)
    qps, p99 = (
        read(report, "server_search", "qps_max"),
        read(report, "server_search", "latency_ms_p99_at_max"),
    )
    out: list[tuple[str, float, str]] = []
    if qps is not None:
        out.append(stored("server_qps_max", float(qps) * scale))
    if p99 is not None:
        out.append(stored("server_latency_ms_p99_at_max", float(p99) / scale))
    return out


def attachments(report: dict[str, Any]) -> list[RunAttachmentRow]:
    """LoadGen's summary and detail logs from the report (the agent caps them: docs/scenarios.md), one
    text/plain attachment each, stored with the run in its transaction."""
    out = []
    for kind in ("summary", "detail"):
        text = read(report, "loadgen_logs", kind, "text")
        if not isinstance(text, str):
            continue
        text = text.replace("\x00", "")  # PostgreSQL text holds no NUL
        data = text.encode()
        out.append(
            RunAttachmentRow(
                name=str(read(report, "loadgen_logs", kind, "name") or f"mlperf_log_{kind}.txt"),
                media_type="text/plain",
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content=text,
            )
        )
    return out


def _logs_meta(report: dict[str, Any]) -> dict[str, Any] | None:
    """What the agent said about its logs (bytes, truncated, cap), without their text."""
    logs = read(report, "loadgen_logs")
    if not isinstance(logs, dict):
        return None
    return {k: {f: v for f, v in e.items() if f != "text"} for k, e in logs.items() if isinstance(e, dict)}


def power_metrics(report: dict[str, Any], batch_size: int = 1) -> list[tuple[str, float, str]]:
    """(name, value, unit) of the power, energy, thermal and clock figures the report carries.

    Energy per inference = the energy over LoadGen's measured window / inferences in that window (the
    samples LoadGen completed x the batch). The energy is the report's ``energy_j`` where the agent read an
    energy counter (``energy_source: "counter"``: RAPL, NVML's total-energy counter; ``avg_w`` is then that
    energy over the window), else average power x the window; in wall time, so divided by the time scale
    for an emulated run."""
    out: list[tuple[str, float, str]] = []
    avg, peak = read(report, "power", "avg_w"), read(report, "power", "peak_w")
    window = read(report, "power", "window_s")
    energy = read(report, "power", "energy_j")
    if read(report, "power", "energy_source") != "counter" or avg is None:
        energy = float(avg) * float(window) if avg is not None and window else None
    if avg is not None:
        out.append(stored("power_w", float(avg)))
    if peak is not None:
        out.append(stored("power_w_peak", float(peak)))
    inferences = read(report, "power", "inferences")
    if inferences is None and read(report, "sample_count") is not None:
        inferences = int(read(report, "sample_count")) * batch_size
    if energy is not None and inferences:
        joules = float(energy) / time_scale(report) / int(inferences)
        if joules > 0:
            out.append(stored("energy_mj_per_inference", joules * 1e3))
            out.append(stored("inferences_per_joule", 1.0 / joules))
    max_c = read(report, "thermal", "max_c")
    if max_c is not None:
        out.append(stored("temp_c_max", float(max_c)))
    min_mhz = read(report, "clock", "min_mhz")
    if min_mhz is not None:
        out.append(stored("clock_mhz_min", float(min_mhz)))
    return out


THROTTLED = "throttled:"


def gpu_throttle_flags(report: dict[str, Any]) -> list[str]:
    """["throttled: gpu sw_power_cap (40% of 250 samples), ..."] when the GPU said, in any sample of the
    measured window, that power or heat held its clocks down (NVML's clock event reasons,
    protocol.GPU_THROTTLING; idle, application clocks and sync boost are not throttling). A label, as the
    soak's clock flag: the run is kept, compared and counted."""
    seen = read(report, "clock", "throttle_reasons")
    if not isinstance(seen, list):
        return []
    hits = [r for r in seen if r in protocol.GPU_THROTTLING]
    if not hits:
        return []
    counts = section(report, "clock", "throttle_samples")
    samples = read(report, "clock", "samples")

    def share(reason: str) -> str:
        n = counts.get(reason)
        if not isinstance(n, int) or not samples:
            return reason
        pct = 100.0 * n / samples
        return f"{reason} ({f'{pct:.0f}%' if pct >= 1 else '<1%'} of {samples} samples)"

    return [f"{THROTTLED} gpu " + ", ".join(share(r) for r in hits)]


def traces(report: dict[str, Any]) -> dict[str, Any] | None:
    """The power / thermal / clock traces for `runs.traces`: {"t_s", "values", "unit", "sensor", ...},
    t in seconds from the start of LoadGen's measured window (board time for an emulated run)."""
    scale = time_scale(report)
    out = {}
    for quantity in ("power", "thermal", "clock"):
        if not isinstance(read(report, quantity), dict):
            continue
        window_s = read(report, quantity, "window_s")
        out[quantity] = {
            "t_s": [t / scale for t in read(report, quantity, "trace", "t_s") or []],
            "values": list(read(report, quantity, "trace", "values") or []),
            **{
                key: read(report, quantity, key)
                for key in ("unit", "sensor", "rate_hz", "resolution", "samples")
            },
            "window_s": window_s / scale if window_s is not None else None,
            "note": read(report, quantity, "note"),
        }
    if out and scale != 1.0:
        out["time_scale"] = scale
    return out or None


def time_scaled_flags(scale: float) -> list[str]:
    """["time-scaled: ..."] for a run of an emulated board faster than real time: its figures are wall
    time / scale, so the host's own overhead and jitter (Python, LoadGen, the scheduler) are multiplied
    by 1 / scale in them. Such a run is kept and shown, labelled, and left out of comparisons, alerts
    and procurement (farm.alerts.series.UNUSABLE_FLAGS; docs/virtual-lab-usage.md)."""
    if not scale or scale >= 1.0:
        return []
    return [
        f"{TIME_SCALED} lab time scale {scale:g} (board time runs {1 / scale:g}x faster than wall time): "
        f"host overhead and jitter are multiplied by {1 / scale:g} in its figures; "
        "use `farm lab up --time-scale 1` for figures to compare"
    ]


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
    env = section(report, "environment")  # stored whole, with the report's other provenance
    scale = time_scale(report)
    nominal_mhz = (
        None  # a board's own CPU (`pynq-z2:cpu`) does not run on the accelerator
        if is_board_cpu(job.target)
        else read(report, "environment", "accelerator_clock_mhz") or _nominal_clock_mhz(settings, board)
    )
    run_traces = traces(report)
    samples = [s / scale for s in (read(report, "samples_ms") or [])[:SAMPLES_STORED]]
    run_metrics = _metrics(report, job.scenario or "", source, job.batch_size)
    flags = (
        stability.noise_flags(read(report, "noise")) + time_scaled_flags(scale) + gpu_throttle_flags(report)
    )
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
        result_valid=read(report, "result_valid"),
        fingerprint=fingerprint(
            model=job.model,
            precision=job.precision,
            board_type=job.target,
            batch_size=job.batch_size,
            scenario=job.scenario or "",
            input_shape=(artifact.details or {}).get("input_shape") or [],
            mode="soak" if job.kind == "soak" else None,
        ),
        started_at=_ts(read(report, "started_at")),
        finished_at=_ts(read(report, "finished_at")),
        samples_ms=samples,
        traces=run_traces,
        emulation_model=read(report, "emulation", "model_version"),
        noise=read(report, "noise"),
        flags=flags or None,
        metrics=run_metrics,
        attachments=attachments(report),
        provenance=ProvenanceRow(
            farm_version=farm_version(),
            farm_git_sha=git_sha(),
            runtime=read(report, "environment", "runtime"),
            runtime_version=read(report, "environment", "runtime_version"),
            toolchain=artifact.toolchain,
            toolchain_version=artifact.toolchain_version,
            loadgen_version=read(report, "environment", "loadgen_version"),
            hostname=read(report, "environment", "hostname"),
            kernel=read(report, "environment", "kernel"),
            cpu_model=read(report, "environment", "cpu_model"),
            board_serial=read(report, "environment", "board_serial"),
            artifact_sha256=artifact.file_sha256,
            dpu_fingerprint=read(report, "environment", "dpu_fingerprint"),
            accelerator_clock_mhz=nominal_mhz,
            ambient_c=read(report, "environment", "ambient_c"),
            environment={
                **env,
                "loadgen": read(report, "loadgen"),
                "latency_source": read(report, "latency_source"),
                "agent_process_started_at": read(report, "process_started_at"),
                "bytes_uploaded": read(report, "farm_bytes_uploaded"),
                "emulation": read(report, "emulation"),
                "time_scale": scale,
                "headline": read(report, "headline"),
                "server_search": read(report, "server_search"),
                "loadgen_logs": _logs_meta(report),
            },
        ),
    )
    try:
        with session_scope(settings.db_url) as s:
            row = s.get(JobRow, job.id)
            assert row is not None
            if row.state == "cancelled":  # cancelled while it ran: nothing is stored, the board is freed
                log.info("job %s was cancelled while it ran: its result is dropped", job.key)
                if release:
                    claims.release(settings, board, job.id, s)
                return False
            s.add(run)
            s.flush()
            row.state, row.finished_at, row.error = "done", utcnow(), None
            row.lease_owner = row.lease_expires_at = None
            if release:
                claims.release(settings, board, job.id, s)
        return True
    except IntegrityError:
        log.info("job %s was already stored (redelivery): no second result", job.key)
        with session_scope(settings.db_url) as s:
            row = s.get(JobRow, job.id)
            if row is not None and row.state not in ("done", "cancelled"):
                row.state, row.finished_at = "done", utcnow()
                row.lease_owner = row.lease_expires_at = None
            if release:
                claims.release(settings, board, job.id, s)
        return False
