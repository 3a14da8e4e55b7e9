"""`farm alerts`: regression alerts: list, show, ack, dismiss, rebaseline, silence, scan, check, backtest,
deliver (docs/alerts.md)."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from typing import Any

import click
from sqlalchemy import select

from farm import metrics
from farm.cli.common import EXIT_FAILED, db_option, format_option, handle_errors, settings_for, wide_option
from farm.cli.render import Column, cell, layout, local_time, table
from farm.db.models import AlertDeliveryRow, AlertRow
from farm.db.session import session_scope
from farm.errors import FarmError

FORMAT = format_option("table", "json")
DURATION = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'30m', '12h', '7d', '2w'."""
    m = DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(f"{text!r}: a duration like 30m, 12h, 7d or 2w", param_hint="--for")
    return timedelta(**{UNITS[m.group(2)]: int(m.group(1))})


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return cell(v)


@click.group()
def alerts() -> None:
    """Regression alerts: the farm watches its history, confirms on its own boards, and tells people."""


@alerts.command("list")
@click.option(
    "--state",
    type=click.Choice(["detected", "confirming", "open", "acknowledged", "resolved", "dismissed", "refuted"]),
    help="Only alerts in this state (default: all).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100000),
    default=200,
    show_default=True,
    help="At most this many, newest first.",
)
@FORMAT
@wide_option
@db_option
@handle_errors
def list_cmd(state: str | None, limit: int, fmt: str, wide: bool, db_url: str | None) -> None:
    """Alerts, newest first."""
    from farm.queries.alerts import alerts as read

    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        rows = read(s, state=state, limit=limit)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        r["change"] = f"{r['change_pct']:+.1f}" if r["change_pct"] is not None else "INVALID"
        unit = metrics.unit(r["metric"]) if metrics.find(r["metric"]) else ""
        r["level"] = (
            f"{r['before']:.4g} -> {r['after']:.4g} {unit}".rstrip()
            if r["before"] is not None and r["after"] is not None
            else None
        )
        r["metric_label"] = metrics.label(r["metric"])
    click.echo(table(rows, LIST_COLUMNS, wide=wide))


#: `farm alerts list`: newest first; the series key (what `silence` takes) whole where it fits.
LIST_COLUMNS = [
    ("id", "id"),
    Column("state", "state", color=lambda v: {"open": "red", "confirming": "yellow"}.get(v)),
    Column("kind", "kind", drop=2),
    ("series", "series"),
    ("metric_label", "metric"),
    Column("level", "before -> after", drop=3),
    Column("change", "change %", align="right"),
    Column("confirmed", "confirmed", drop=1),
    Column("created_at", "created", fmt=local_time, drop=4),
]


@alerts.command()
@click.argument("alert_id", type=int)
@FORMAT
@db_option
@handle_errors
def show(alert_id: int, fmt: str, db_url: str | None) -> None:
    """One alert whole: levels, confirmation, cause, provenance diff, runs and history."""
    from farm.queries.alerts import alert_detail

    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        doc = alert_detail(s, alert_id)
    if doc is None:
        raise FarmError(f"no alert {alert_id} (farm alerts list shows them)")
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    m = metrics.find(doc["metric"])
    unit = f" {m.unit}" if m else ""
    click.echo(
        f"alert {doc['id']}: {doc['kind']} of {metrics.label(doc['metric'])} on {doc['series']} [{doc['state']}]"
    )
    if doc["before"] is not None:
        click.echo(
            f"  level:      {doc['before']:.4g}{unit} -> {doc['after']:.4g}{unit} ({doc['change_pct']:+.1f} %), "
            f"p={doc['p_value']:.2g} ({doc['detector']})"
        )
    conf = (doc["details"] or {}).get("confirmation")
    click.echo(
        f"  confirmed:  {_cell(doc['confirmed'])}"
        + (f" - {conf.get('summary', '')}" if isinstance(conf, dict) else f" - {conf}" if conf else "")
    )
    if doc["cause"]:
        click.echo(f"  cause:      {doc['cause']}")
    for field, change in (doc["provenance_diff"] or {}).items():
        click.echo(f"  changed:    {field}: {change['before']} -> {change['after']}")
    click.echo(
        f"  first run at the new level: {doc['change_run_id']} (sweep {str(doc['sweep_id'])[:8]}); runs {doc['run_ids']}"
    )
    click.echo(f"  baseline runs: {doc['baseline_run_ids']}")
    skipped = (doc["details"] or {}).get("skipped")
    if skipped:
        click.echo("  not used as baseline: " + ", ".join(f"{n} {why}" for why, n in skipped.items()))
    if doc["reason"]:
        click.echo(f"  reason:     {doc['reason']}")
    if doc["history"]:
        click.echo("history:")
        history = layout(doc["history"], HISTORY_COLUMNS, width=118)
        click.echo("\n".join("  " + line for line in history.lines()))
    if doc["deliveries"]:
        click.echo("deliveries:")
        rows = [{**d, "said": d["receipt"] or d["error"]} for d in doc["deliveries"]]
        click.echo("\n".join("  " + line for line in layout(rows, DELIVERY_COLUMNS, width=118).lines()))


HISTORY_COLUMNS = [
    Column("at", "at", fmt=local_time),
    ("from", "from"),
    ("to", "to"),
    Column("note", "note", wrap=True),
]
DELIVERY_COLUMNS = [
    ("channel", "channel"),
    ("state", "state"),
    ("attempts", "attempts"),
    Column("said", "receipt or error", wrap=True),
]


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--note", help="Who is on it, or why.")
@db_option
@handle_errors
def ack(alert_id: int, note: str | None, db_url: str | None) -> None:
    """Acknowledge an open alert (someone is on it)."""
    from farm.alerts.lifecycle import acknowledge

    acknowledge(settings_for(db_url).db_url, alert_id, note)
    click.echo(f"alert {alert_id} acknowledged")


@alerts.command()
@click.argument("alert_id", type=int)
@click.option(
    "--reason",
    type=click.Choice(["expected", "noise", "infrastructure"]),
    required=True,
    help="expected: an intended change; noise: not a real change; infrastructure: the farm's fault.",
)
@click.option("--note", help="More words for the history.")
@db_option
@handle_errors
def dismiss(alert_id: int, reason: str, note: str | None, db_url: str | None) -> None:
    """Dismiss an alert: expected (an intended change), noise, or infrastructure."""
    from farm.alerts.lifecycle import dismiss as do

    do(settings_for(db_url).db_url, alert_id, reason, note)
    click.echo(f"alert {alert_id} dismissed ({reason})")


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--note", help="Why the new level is the normal one.")
@db_option
@handle_errors
def rebaseline(alert_id: int, note: str | None, db_url: str | None) -> None:
    """Accept an intended change as the series' new normal (detection reads it from the change on)."""
    from farm.alerts.lifecycle import rebaseline as do

    do(settings_for(db_url).db_url, alert_id, note)
    click.echo(f"alert {alert_id}: its series is rebaselined from the change on; the alert is resolved")


@alerts.command()
@click.argument("series")
@click.option("--for", "duration", required=True, help="How long: 30m, 12h, 7d, 2w.")
@click.option("--metric", help="Only this metric (default: every metric of the series).")
@click.option("--reason", help="Why, for the history.")
@db_option
@handle_errors
def silence(series: str, duration: str, metric: str | None, reason: str | None, db_url: str | None) -> None:
    """Silence SERIES (a series key as `farm alerts list` shows it, a glob such as 'resnet50/*/zcu104/*',
    or an alert id) for a while: its candidates are stored dismissed, and nobody is told."""
    from farm.alerts.lifecycle import get
    from farm.alerts.lifecycle import silence as do

    span = parse_duration(duration)
    if metric is not None and metrics.find(metric) is None:
        raise click.BadParameter(f"{metric!r} is not in the metric catalog", param_hint="--metric")
    settings = settings_for(db_url)
    pattern = series
    if series.isdigit():
        with session_scope(settings.db_url) as s:
            pattern = get(s, int(series)).series_key
    silence_id = do(settings.db_url, pattern, span, metric, reason)
    click.echo(f"silence {silence_id}: {pattern}{f' ({metric})' if metric else ''} for {duration}")


def _print_pass(p: Any) -> None:
    click.echo(
        f"scanned {p.scanned} series/metric(s): {p.candidates} candidate(s), {len(p.recorded)} new alert(s), "
        f"{len(p.publish)} confirmation run(s) queued, {len(p.opened)} opened, {len(p.resolved)} resolved; "
        f"deliveries: {p.delivered or 'none due'}"
    )


@alerts.command()
@click.option("--sweep", "sweep_id", help="Only the series this sweep ran.")
@db_option
@handle_errors
def scan(sweep_id: str | None, db_url: str | None) -> None:
    """Run change-point detection over stored history now (and confirm, resolve, deliver)."""
    from farm.alerts import service
    from farm.cli.submit import resolve_sweep_id
    from farm.publish import publish

    settings = settings_for(db_url)
    if sweep_id:
        with session_scope(settings.db_url) as s:
            sweep_id = resolve_sweep_id(s, sweep_id)
    result = service.scan(settings, sweep_id=sweep_id)
    publish(settings.db_url, result.publish)
    if settings.embedded and result.publish:  # the confirmation runs ran here: decide and deliver now
        after = service.tick(settings)
        result.opened += after.opened
        for k, v in after.delivered.items():
            result.delivered[k] = result.delivered.get(k, 0) + v
    _print_pass(result)


@alerts.command()
@click.option("--sweep", "sweep_id", required=True, help="The sweep a CI pipeline just ran.")
@db_option
@handle_errors
def check(sweep_id: str, db_url: str | None) -> None:
    """Exit 1 when the sweep opened a confirmed regression (for CI pipelines); lists them."""
    from farm.alerts import service
    from farm.cli.submit import resolve_sweep_id

    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        full = resolve_sweep_id(s, sweep_id)
    service.tick(settings)
    with session_scope(settings.db_url) as s:
        rows = list(
            s.scalars(
                select(AlertRow).where(
                    AlertRow.sweep_id == full,
                    AlertRow.state.in_(("open", "acknowledged")),
                    AlertRow.confirmed.is_(True),
                )
            )
        )
        pending = s.scalar(
            select(AlertRow.id).where(
                AlertRow.sweep_id == full, AlertRow.state.in_(("detected", "confirming"))
            )
        )
        lines = [
            f"alert {a.id}: {metrics.label(a.metric)} {a.series_key} {a.change_pct:+.1f} %"
            for a in rows
            if a.change_pct is not None
        ]
        lines += [f"alert {a.id}: {a.series_key} INVALID" for a in rows if a.change_pct is None]
    if pending:
        click.echo(
            f"sweep {full[:8]}: alerts still being confirmed (run `farm alerts check` again later)", err=True
        )
    if rows:
        click.echo(f"sweep {full[:8]}: {len(rows)} confirmed regression(s)")
        for line in lines:
            click.echo("  " + line)
        sys.exit(EXIT_FAILED)
    click.echo(f"sweep {full[:8]}: no confirmed regression")


@alerts.command()
@FORMAT
@wide_option
@db_option
@handle_errors
def backtest(fmt: str, wide: bool, db_url: str | None) -> None:
    """Replay stored history: the regressions that would have fired, per series and per week."""
    from farm.alerts.detection import backtest as run

    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        rows = run(s)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        r["change"] = f"{r['change_pct']:+.1f}"
        r["metric_label"] = metrics.label(r["metric"])
    columns = [("week", "week"), ("series", "series"), ("metric_label", "metric"),
               Column("change", "change %", align="right"), ("run_id", "first run")]  # fmt: skip
    click.echo(table(rows, columns, wide=wide))
    weeks: dict[str, int] = {}
    for r in rows:
        weeks[r["week"]] = weeks.get(r["week"], 0) + 1
    if rows:
        click.echo("per week: " + ", ".join(f"{w} {n}" for w, n in sorted(weeks.items())))


@alerts.command()
@FORMAT
@wide_option
@db_option
@handle_errors
def deliver(fmt: str, wide: bool, db_url: str | None) -> None:
    """Decide finished confirmations, resolve, and send due notifications now (what the beat tick does);
    lists the delivery outbox."""
    from farm.alerts import service

    settings = settings_for(db_url)
    result = service.tick(settings)
    with session_scope(settings.db_url) as s:
        rows = [
            {"id": d.id, "group": d.group_key, "channel": d.channel, "alerts": ",".join(map(str, d.alert_ids)),
             "state": d.state, "attempts": d.attempts, "receipt": d.receipt, "error": (d.last_error or "")[:80] or None}
            for d in s.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.id.desc()).limit(100))
        ]  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(
        f"opened {len(result.opened)}, resolved {len(result.resolved)}; deliveries: {result.delivered or 'none due'}"
    )
    columns = [(k, k) for k in ("id", "group", "channel", "alerts", "state", "attempts", "receipt")]
    click.echo(table(rows, [*columns, Column("error", "error", wrap=True)], wide=wide))
