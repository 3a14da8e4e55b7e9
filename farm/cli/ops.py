"""Operator commands for sweeps that need a hand: `farm cancel`, `farm retry`."""

from __future__ import annotations

import click
from sqlalchemy import select, update

from farm.broker import farm_messages
from farm.cli.common import db_option, handle_errors, settings_for
from farm.cli.submit import resolve_sweep_id
from farm.db.models import JobRow, SweepRow
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.leases import cleared
from farm.publish import publish
from farm.reconciler import reconcile
from farm.scheduler import unpublished
from farm.services.sweeps import cancel_sweep, roll_up


@click.command()
@click.argument("sweep_id")
@click.option(
    "--reason",
    default="cancelled by an operator",
    show_default=True,
    help="Why: stored with each cancelled job.",
)
@db_option
@handle_errors
def cancel(sweep_id: str, reason: str, db_url: str | None) -> None:
    """Cancel a sweep: unfinished jobs are marked cancelled, a running job stores nothing and frees its board
    when its agent returns, boards of jobs whose worker is gone are freed now."""
    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        full = resolve_sweep_id(s, sweep_id)
    ids = cancel_sweep(settings.db_url, full, reason)
    click.echo(f"sweep {full[:8]}: {len(ids)} unfinished job(s) cancelled ({reason})")


@click.command()
@click.argument("sweep_id")
@click.option("--failed", "failed_", is_flag=True, help="Run the failed (and cancelled) jobs again.")
@click.option(
    "--stuck",
    is_flag=True,
    help="Do now what the reconciler would: republish lost jobs, take back dead leases.",
)
@db_option
@handle_errors
def retry(sweep_id: str, failed_: bool, stuck: bool, db_url: str | None) -> None:
    """Run a sweep's failed jobs again and/or unstick its lost ones (default: both)."""
    settings = settings_for(db_url)
    if not failed_ and not stuck:
        failed_ = stuck = True
    with session_scope(settings.db_url) as s:
        full = resolve_sweep_id(s, sweep_id)
    again = _reopen_failed(settings.db_url, full) if failed_ else 0
    report = (
        reconcile(settings.db_url, sweep_id=full, live_messages=farm_messages(settings)) if stuck else None
    )
    for f in report.findings if report else []:
        click.echo(f"{f.problem}: {f.action}")
    items = {
        p.job_id: p
        for p in [*(report.publish if report else []), *unpublished(settings.db_url, sweep_id=full)]
    }
    if again == 0 and not items and not (report and report.findings):
        raise FarmError(f"sweep {full[:8]}: nothing to retry (no failed job, nothing stuck)")
    click.echo(
        f"sweep {full[:8]}: {again} failed or cancelled job(s) reopened, {len(items)} job(s) to publish"
    )
    refused = publish(settings.db_url, items.values())
    if refused:
        click.secho(
            f"the broker did not take {refused} job(s): the reconciler publishes them later", fg="yellow"
        )
    click.echo(f"sweep {full[:8]}: {roll_up(settings.db_url, full)}")


def _reopen_failed(db_url: str, sweep_id: str) -> int:
    """Failed and cancelled jobs go back to the queue (compile jobs, and run jobs whose artifact exists) or
    to pending (run jobs waiting on a compile that runs again), errors cleared; the sweep runs again."""
    with session_scope(db_url) as s:
        jobs = {j.id: j for j in s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id))}
        reopen = [j for j in jobs.values() if j.state in ("failed", "cancelled")]
        for j in reopen:
            parent = jobs.get(j.depends_on_id) if j.depends_on_id else None
            ready = parent is None or parent.state in ("done", "cached")
            j.state = "queued" if ready else "pending"
            j.error = j.finished_at = j.published_at = None
        if reopen:
            s.execute(update(JobRow).where(JobRow.id.in_([j.id for j in reopen])).values(**cleared()))
            sweep = s.get(SweepRow, sweep_id)
            if sweep is not None:
                sweep.state, sweep.finished_at = "running", None
        return len(reopen)
