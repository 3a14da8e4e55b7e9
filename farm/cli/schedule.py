"""farm schedule add / list / show / remove / enable / disable / run-due: sweeps submitted on a cron
(docs/schedules.md). Celery beat fires them on a farm with a broker; ``run-due`` does it from cron or CI."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from farm.cli.common import (
    EXIT_FAILED,
    db_option,
    format_option,
    handle_errors,
    label_option,
    require_broker,
    settings_for,
    wide_option,
)
from farm.cli.render import Column, cell, local_time, table
from farm.schedules.cron import CronError, parse_cron
from farm.schedules.fire import Fired, run_due
from farm.schedules.store import add_schedule, get_schedule, list_schedules, remove_schedule, set_enabled


def _cron(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_cron(value)
    except CronError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def _now(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (2026-12-06T02:00Z)", ctx=ctx, param=param
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@click.group()
def schedule() -> None:
    """Sweeps submitted on a cron (UTC), once per slot, labelled schedule=NAME."""


@schedule.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option(
    "--cron", required=True, callback=_cron, help='Five fields, UTC, e.g. "0 2 * * *" (02:00 daily).'
)
@click.option("--name", default=None, help="The schedule's name [default: the sweep's name].")
@click.option(
    "--replace", is_flag=True, help="Update the schedule of this name if it exists (keeps its history)."
)
@label_option
@db_option
@handle_errors
def add(
    sweep_file: str, cron: str, name: str | None, replace: bool, labels: dict[str, str], db_url: str | None
) -> None:
    """Validate SWEEP_FILE now and store it (its text: the host that fires it needs no file) on a cron."""
    settings = settings_for(db_url)
    added = add_schedule(settings, sweep_file, cron, name=name, labels=labels, replace=replace)
    for warning in added.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    nxt = f"{local_time(added.next_slot)} local time" if added.next_slot else "never"
    click.echo(
        f"schedule {added.name} {'replaced' if added.replaced else 'added'}: {cron} (UTC), next slot {nxt}"
    )


#: `farm schedule list`: the cron in UTC (as it is written), the slots in local time like every table.
LIST_COLUMNS = [
    ("name", "name"),
    Column("enabled", "state", fmt=lambda on: "enabled" if on else "disabled",
           color=lambda on: None if on else "yellow"),
    ("cron", "cron (UTC)"),
    Column("next_slot", "next slot", fmt=local_time),
    Column("last_slot_at", "last slot", fmt=local_time, drop=1),
    Column("last_sweep_id", "last sweep", fmt=lambda v: v[:8] if v else "-"),
    Column("labels", "labels", drop=2),
    Column("last_error", "last error", wrap=True, color=lambda v: "red" if v else None),
]  # fmt: skip


@schedule.command(name="list")
@format_option("table", "json")
@wide_option
@db_option
@handle_errors
def list_cmd(fmt: str, wide: bool, db_url: str | None) -> None:
    """Every schedule: cron, next slot, the last slot submitted, its sweep or its error."""
    settings = settings_for(db_url)
    rows = list_schedules(settings.db_url, datetime.now(UTC))
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no schedules: `farm schedule add SWEEP.yaml --cron '0 2 * * *'` adds one")
        return
    click.echo(table(rows, LIST_COLUMNS, wide=wide))


@schedule.command()
@click.argument("name")
@format_option("table", "json")
@db_option
@handle_errors
def show(name: str, fmt: str, db_url: str | None) -> None:
    """One schedule in full, with the sweep text it submits."""
    settings = settings_for(db_url)
    doc = get_schedule(settings.db_url, name, datetime.now(UTC))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    text = doc.pop("sweep_yaml")
    doc["labels"] = " ".join(f"{k}={v}" for k, v in doc["labels"].items()) or "none"
    for key, value in doc.items():
        shown = local_time(value) if key.endswith(("_at", "_slot")) else cell(value)
        click.echo(f"{key:<14} {shown}")
    click.echo("sweep:\n" + text.rstrip())


@schedule.command()
@click.argument("name")
@db_option
@handle_errors
def remove(name: str, db_url: str | None) -> None:
    """Delete a schedule (its sweeps stay); a running beat drops it within FARM_SCHEDULE_REFRESH_S."""
    remove_schedule(settings_for(db_url).db_url, name)
    click.echo(f"schedule {name} removed")


@schedule.command()
@click.argument("name")
@db_option
@handle_errors
def enable(name: str, db_url: str | None) -> None:
    """Fire the schedule again (a slot missed while it was disabled runs once: the latest)."""
    set_enabled(settings_for(db_url).db_url, name, True)
    click.echo(f"schedule {name} enabled")


@schedule.command()
@click.argument("name")
@db_option
@handle_errors
def disable(name: str, db_url: str | None) -> None:
    """Stop firing the schedule, keeping it."""
    set_enabled(settings_for(db_url).db_url, name, False)
    click.echo(f"schedule {name} disabled")


@schedule.command(name="run-due")
@click.option(
    "--now",
    "now",
    default=None,
    callback=_now,
    metavar="ISO",
    help="Act as if it were this time (UTC unless it says).",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Wait for the sweeps to finish [default: wait when they run in this process (no broker)].",
)
@db_option
@handle_errors
def run_due_cmd(now: datetime, wait: bool | None, db_url: str | None) -> None:
    """Submit every schedule whose slot came since its last one (only the latest slot), once, then exit:
    for cron or CI where no beat runs. Without a broker the sweeps run here."""
    from farm.services.submit import wait_for

    settings = settings_for(db_url)
    require_broker(settings)
    fired = run_due(settings, now)
    if not fired:
        click.echo("nothing due")
    for f in fired:
        click.echo(_said(f))
    failed = any(f.outcome == "failed" for f in fired)
    for f in fired:
        sub = f.submitted
        if sub is None or not (wait if wait is not None else sub.runner is not None):
            continue
        summary = wait_for(settings, sub, lambda _summary: None)
        click.echo(
            f"  {f.schedule}: sweep {sub.sweep_id} {summary['state']}, runs stored: {summary['runs_stored']}"
        )
        failed = failed or summary["state"] != "done"
    if failed:
        sys.exit(EXIT_FAILED)


def _said(f: Fired) -> str:
    slot = f.slot.isoformat()
    missed = ""
    if f.missed:
        missed = f" ({f.missed}{'+' if f.missed >= 999 else ''} earlier slot(s) missed: only the latest runs)"
    if f.outcome == "submitted":
        return f"{f.schedule}: submitted sweep {f.sweep_id} for slot {slot}{missed}"
    if f.outcome == "duplicate":
        return f"{f.schedule}: slot {slot} was already submitted (sweep {f.sweep_id}){missed}"
    return f"{f.schedule}: slot {slot} failed: {f.error}{missed}"
