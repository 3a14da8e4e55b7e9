"""`farm show RUN`: one run in full: identity, metrics, latency distribution, traces summarised, noise,
flags, provenance and attachments; `--format json` for the same as one JSON document; `--log summary|detail`
for the LoadGen log kept with it, as LoadGen wrote it."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

import click
from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from farm import metrics
from farm.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    db_option,
    format_option,
    handle_errors,
    settings_for,
    wide_option,
)
from farm.cli.render import TABLE_WIDTH, Column, Table, layout, local_time, validity
from farm.db.models import RunAttachmentRow, RunRow
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.inventory import BoardType, load_inventory
from farm.queries.missing import missing
from farm.queries.runs import LOADGEN_LOGS, loadgen_logs, run_detail

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40
TRACE_NAMES = (("power", "power"), ("thermal", "temperature"), ("clock", "clock"))


class RunNotFound(LookupError):
    pass


def resolve_run(s: Session, ref: str) -> int:
    """A run id, an idempotency key (``<sweep id>/<job key>``), or a unique prefix of either."""
    ref = ref.strip()
    if ref.isdigit() and s.get(RunRow, int(ref)) is not None:
        return int(ref)
    exact = s.scalar(select(RunRow.id).where(RunRow.idempotency_key == ref))
    if exact is not None:
        return exact
    matches = list(s.scalars(select(RunRow.id).where(RunRow.idempotency_key.startswith(ref)).limit(6)))
    if ref.isdigit():  # an id prefix: 12 finds 12, 120, 1234 ...
        matches += list(s.scalars(select(RunRow.id).where(cast(RunRow.id, String).startswith(ref)).limit(6)))
    matches = sorted(set(matches))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFound(f"no run matches {ref!r} (give a run id, an idempotency key, or a prefix of one)")
    shown = ", ".join(str(m) for m in matches[:5])
    raise RunNotFound(f"{ref!r} is ambiguous: it matches runs {shown}{' ...' if len(matches) > 5 else ''}")


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """A compact text sparkline: ``width`` buckets (mean of each), scaled from the min to the max."""
    if not values:
        return ""
    n, w = len(values), min(width, len(values))
    buckets = [values[i * n // w : (i + 1) * n // w] for i in range(w)]
    means = [statistics.fmean(b) for b in buckets if b]
    lo, hi = min(means), max(means)
    if hi == lo:
        return SPARK[0] * len(means)
    return "".join(SPARK[min(len(SPARK) - 1, int((m - lo) / (hi - lo) * len(SPARK)))] for m in means)


def summarise_trace(trace: dict[str, Any]) -> dict[str, Any]:
    values = [float(v) for v in trace.get("values") or [] if v is not None]
    t = trace.get("t_s") or []
    out = {
        "unit": trace.get("unit"),
        "sensor": trace.get("sensor"),
        "samples": len(values),
        "span_s": round(t[-1] - t[0], 3) if len(t) > 1 else None,
        "note": trace.get("note"),
    }
    if values:
        out.update(
            min=min(values),
            mean=round(statistics.fmean(values), 4),
            max=max(values),
            sparkline=sparkline(values),
        )
    return out


def latency_summary(samples: list[float]) -> dict[str, Any] | None:
    if not samples:
        return None
    ordered = sorted(samples)
    n = len(ordered)

    def pct(q: float) -> float:  # LoadGen's rule: the element at int(n * q)
        return ordered[min(n - 1, int(n * q))]

    return {
        "samples": n,
        "min": ordered[0],
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 6),
        "stdev": round(statistics.stdev(ordered), 6) if n > 1 else 0.0,
        "sparkline": sparkline(samples),
    }


def board_type_of(inventory_dir: Any, target: str) -> BoardType | None:
    """The run's board type from the catalog, None when the catalog lacks it or cannot be read (`farm show`
    still prints the run; only the sensor reasons of "missing:" get vaguer)."""
    try:
        return load_inventory(inventory_dir).board_types.get(target)
    except FarmError:
        return None


def show_document(s: Session, run_id: int, board_type: BoardType | None = None) -> dict[str, Any]:
    detail = run_detail(s, run_id)
    assert detail is not None
    run = s.get(RunRow, run_id)
    assert run is not None
    absent = missing(detail, board_type)
    traces = detail.pop("traces") or {}
    samples = detail.pop("samples_ms") or []
    attachments = s.scalars(
        select(RunAttachmentRow).where(RunAttachmentRow.run_id == run_id).order_by(RunAttachmentRow.name)
    )
    return {
        **detail,
        "idempotency_key": run.idempotency_key,
        "emulated": run.source == "emulated",
        "latency_distribution": latency_summary(samples),
        "traces": {
            key: summarise_trace(traces[key]) for key, _ in TRACE_NAMES if isinstance(traces.get(key), dict)
        },
        "time_scale": traces.get("time_scale"),
        "soak": traces.get("soak"),
        "noise": run.noise,
        "flags": list(run.flags or []),
        "missing": absent,
        "attachments": [
            {"name": a.name, "media_type": a.media_type, "size_bytes": a.size_bytes, "sha256": a.sha256}
            for a in attachments
        ],
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def _catalog_unit(name: str) -> str | None:
    known = metrics.find(name)
    return known.unit if known else None


def _meaning(name: str) -> str:
    """The catalog's label and direction ("p99 latency (lower is better)"); "-" for a name it lacks."""
    known = metrics.find(name)
    return "-" if known is None else f"{known.label} ({known.better_text})"


def render_text(doc: dict[str, Any], wide: bool = False) -> str:
    lines = []
    source = doc["source"] + (" (EMULATED: modelled, not measured)" if doc["emulated"] else "")
    lines.append(f"run {doc['run_id']}  {doc['idempotency_key']}")
    lines.append(
        f"  {doc['model']} {doc['precision']} batch {doc['batch_size']} {doc['scenario']} "
        f"on {doc['target']} ({doc['board']}), repeat {doc['repeat']}"
    )
    lines.append(
        f"  source: {source}" + (f", model {doc['emulation_model']}" if doc["emulation_model"] else "")
    )
    lines.append(f"  sweep {doc['sweep_id']}  job {doc['job_id']}  loadgen: {validity(doc['result_valid'])}")
    lines.append(f"  started {local_time(doc['started_at'])}  finished {local_time(doc['finished_at'])}")
    lines.append(f"  fingerprint {doc['fingerprint']}")
    labels = doc.get("labels") or {}
    lines.append("labels: " + (" ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"))
    lines.append("flags:" + ("" if doc["flags"] else " none"))
    lines += [f"  ! {f}" for f in doc["flags"]]
    lines.append("metrics:" + ("" if doc["metrics"] else " none"))
    if doc["metrics"]:
        # the unit as stored, the catalog's where the row has none
        rows = [{**m, "unit": m["unit"] or _catalog_unit(m["name"])} for m in doc["metrics"]]
        lines += _indent(layout(rows, METRIC_COLUMNS, wide=wide, width=TABLE_WIDTH - 2))
    lines.append("missing:" + ("" if doc["missing"] else " none"))
    lines += [f"  {', '.join(g['metrics'])}: {g['reason']}" for g in doc["missing"]]
    lat = doc["latency_distribution"]
    lines.append("latency distribution (ms):" + ("" if lat else " no samples"))
    if lat:
        lines += _indent(layout([lat], LATENCY_COLUMNS, wide=wide, width=TABLE_WIDTH - 2))
        lines.append(f"  over the run: {lat['sparkline']}")
    lines.append("traces:" + ("" if doc["traces"] else " none (no sensors)"))
    traces = [{"trace": label, **doc["traces"][key]} for key, label in TRACE_NAMES if key in doc["traces"]]
    if traces:
        lines += _indent(layout(traces, TRACE_COLUMNS, wide=wide, width=TABLE_WIDTH - 2))
        lines += [f"  {t['trace']:<12} {t['sparkline']}" for t in traces if t.get("sparkline")]
    soak = doc.get("soak")
    if soak:
        thr = soak.get("throttling") or {}
        lines.append("thermal soak:")
        lines.append(
            f"  duration {_fmt(soak.get('duration_s'))} s; steady state: "
            + (
                f"after {_fmt(soak['time_to_steady_s'])} s at {_fmt(soak['steady_temp_c'])} C"
                if soak.get("steady")
                else (soak.get("note") or "not reached")
            )
        )
        lines.append(
            f"  throttled: {'yes' if thr.get('throttled') else 'no'}"
            + (
                f" from t={_fmt(thr.get('throttle_at_s'))} s ({thr.get('evidence')})"
                if thr.get("throttled")
                else ""
            )
        )
        lines.append(
            f"  latency drift first -> last window: {_fmt((soak.get('latency') or {}).get('drift_pct'))} %"
        )
    noise = doc["noise"]
    lines.append("host noise check:" + ("" if noise else " not recorded"))
    if noise:
        busy = ", ".join(f"{p['name']} {p['cpu_pct']}%" for p in noise.get("busy_processes") or []) or "none"
        lines.append(
            f"  {noise.get('verdict')}: load {_fmt(noise.get('load_1m'))}, busy {busy}, "
            f"cpu {_fmt(noise.get('cpu_mhz'))} MHz, governor {_fmt(noise.get('governor'))}"
        )
        lines += [f"  - {r}" for r in noise.get("reasons") or []]
    prov = doc["provenance"] or {}
    lines.append("provenance:" + ("" if prov else " none (not comparable)"))
    for key in (
        "farm_version",
        "farm_git_sha",
        "runtime",
        "runtime_version",
        "toolchain",
        "toolchain_version",
        "loadgen_version",
        "artifact_sha256",
        "dpu_fingerprint",
        "accelerator_clock_mhz",
        "board_serial",
        "hostname",
        "kernel",
        "cpu_model",
        "ambient_c",
    ):
        if key in prov:
            lines.append(f"  {key:<22} {_fmt(prov[key])}")
    isa = (prov.get("environment") or {}).get("cpu_isa")
    if isa is not None:  # INT8 results depend on it (VNNI or not: docs/stability-and-provenance.md)
        lines.append(f"  {'cpu_isa':<22} {' '.join(isa) or 'none of the INT8-relevant features'}")
    compiled = doc.get("compile")
    lines.append("compile:" + ("" if compiled else " no artifact on record"))
    if compiled:
        where = compiled.get("runner") or "-"
        if compiled.get("host"):
            where += f" on {compiled['host']}"
        lines.append(f"  {'runner':<22} {where}")
        lines.append(f"  {'image':<22} {_fmt(compiled.get('image'))}")
        lines.append(f"  {'compile_seconds':<22} {_fmt(compiled.get('seconds'))}")
    lines.append("attachments:" + ("" if doc["attachments"] else " none"))
    if doc["attachments"]:
        lines += _indent(layout(doc["attachments"], ATTACHMENT_COLUMNS, wide=wide, width=TABLE_WIDTH - 2))
    return "\n".join(lines)


def _indent(table: Table) -> list[str]:
    """A section's table, under its heading (indented: laid out within 118 columns)."""
    return ["  " + line for line in table.lines()]


METRIC_COLUMNS = [
    ("name", "metric"),
    Column("value", "value", fmt=_fmt, align="right"),
    Column("unit", "unit", fmt=lambda v: v or "-"),
    Column("name", "meaning", fmt=lambda name: _meaning(name)),
]
LATENCY_COLUMNS = [("samples", "samples")] + [
    Column(k, f"{k} ms", fmt=_fmt) for k in ("min", "p50", "p90", "p99", "max", "mean", "stdev")
]
TRACE_COLUMNS = [
    ("trace", "trace"),
    Column("min", "min", fmt=_fmt, align="right"),
    Column("mean", "mean", fmt=_fmt, align="right"),
    Column("max", "max", fmt=_fmt, align="right"),
    ("unit", "unit"),
    ("samples", "samples"),
    Column("span_s", "span s", fmt=_fmt, align="right"),
    ("sensor", "sensor"),
    Column("note", "note", wrap=True),
]
ATTACHMENT_COLUMNS = [
    ("name", "name"),
    ("size_bytes", "bytes"),
    ("media_type", "type"),
    Column("sha256", "sha256", fmt=lambda v: (v or "-")[:12]),
]


@click.command()
@click.argument("run_ref", metavar="RUN")
@format_option("table", "json", more="json: the same as one document.")
@wide_option
@click.option(
    "--log",
    "log_kind",
    type=click.Choice(sorted(LOADGEN_LOGS)),
    default=None,
    help="Print the run's LoadGen log (mlperf_log_summary.txt or mlperf_log_detail.txt) instead.",
)
@db_option
@handle_errors
def show(run_ref: str, fmt: str, wide: bool, log_kind: str | None, db_url: str | None) -> None:
    """Print one run: identity, metrics, latency distribution, traces summarised, noise, flags, provenance.
    RUN is a run id, an idempotency key (`<sweep id>/<job key>`), or a unique prefix of either."""
    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        try:
            run_id = resolve_run(s, run_ref)
        except RunNotFound as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_BAD_INPUT)
        if log_kind is not None:
            log = loadgen_logs(s, run_id).get(log_kind)
            if log is None:
                click.secho(
                    f"run {run_id} has no LoadGen {log_kind} log ({LOADGEN_LOGS[log_kind]}): its agent sent "
                    "none, or it was stored before the farm kept LoadGen's logs",
                    fg="red",
                    err=True,
                )
                sys.exit(EXIT_FAILED)
            click.echo(log["content"], nl=not log["content"].endswith("\n"))
            return
        target = s.scalar(select(RunRow.target).where(RunRow.id == run_id)) or ""
        doc = show_document(s, run_id, board_type_of(settings.inventory_dir, target))
    click.echo(json.dumps(doc, indent=2, default=str) if fmt == "json" else render_text(doc, wide=wide))
