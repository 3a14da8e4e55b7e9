"""farm submit / status / results."""

from __future__ import annotations

import json
import sys

import click

from farm.cli.common import (
    db_option,
    handle_errors,
    label_option,
    require_broker,
    settings_for,
    warn_if_broker_down,
)
from farm.cli.render import render
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.fleet.transports import cancel_all
from farm.queries.runs import results
from farm.queries.sweeps import latest_sweep_id, sweep_summary, sweeps
from farm.services.submit import submit_sweep, wait_for
from farm.services.sweeps import cancel_sweep
from farm.sweep.load import DEFAULT_MAX_JOBS


def print_summary(summary: dict) -> None:
    click.echo(
        f"sweep {summary['id']} ({summary['name']}): {summary['state']}; "
        f"{summary['jobs_finished']}/{summary['jobs_total']} jobs finished; "
        f"compile jobs executed: {summary['compile_executed']}, reused from the artifact store: {summary['compile_cached']}; "
        f"runs stored: {summary['runs_stored']}"
    )
    if summary.get("labels"):
        click.echo("  labels: " + " ".join(f"{k}={v}" for k, v in sorted(summary["labels"].items())))
    for failure in summary["failed"]:
        click.secho(f"  failed {failure['job']}: {failure['error']}", fg="red")
    for st in summary.get("stability") or []:
        cv = "-" if st["cv_pct"] is None else f"{st['cv_pct']:.2f}%"
        click.secho(
            f"  stability {st['config']}: {st['state']}, cv of {st['metric']} {cv} "
            f"(threshold {st['threshold_pct']:g}%) over {st['values']} of {st['repeats']} repeats",
            fg="yellow" if st["state"] == "unstable" else None,
        )
    for flag in summary.get("flags") or []:
        click.secho(f"  flagged run {flag['run_id']} ({flag['job']}): {flag['flag']}", fg="yellow")
    for item in summary.get("stale") or []:
        click.secho(f"  stale: {item['problem']}; the reconciler will {item['action']}", fg="yellow")


def run_submit(
    settings,
    sweep_file: str,
    wait: bool,
    max_jobs: int = DEFAULT_MAX_JOBS,
    labels: dict[str, str] | None = None,
) -> dict | None:
    sub = submit_sweep(settings, sweep_file, max_jobs=max_jobs, labels=labels)
    for warning in sub.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"submitted sweep {sub.sweep_id}")
    if sub.unpublished:
        click.secho(
            f"the broker did not take {sub.unpublished} job(s): they are recorded and the reconciler publishes "
            "them once the broker is back (see `farm status`)",
            fg="yellow",
            err=True,
        )
    if not wait and sub.runner is None:
        return None
    if not wait:
        click.echo("no broker configured (FARM_BROKER_URL): the sweep runs in this process, waiting for it")
    last: dict = {"done": 0}
    try:
        with click.progressbar(length=1, label="jobs", show_pos=True, file=sys.stderr) as bar:

            def progress(summary: dict) -> None:
                bar.length = summary["jobs_total"]
                waits = "; ".join(summary.get("waiting_for") or [])
                if waits and waits != last.get("waits"):  # said once per change, on its own line
                    click.echo(f"\nwaiting for {waits}", err=True)
                last["waits"] = waits
                bar.update(summary["jobs_finished"] - last["done"])
                last["done"] = summary["jobs_finished"]

            summary = wait_for(settings, sub, progress)
    except KeyboardInterrupt:
        interrupted(settings, sub)
    print_summary(summary)
    return summary


def interrupted(settings, sub) -> None:
    """Ctrl-C: an embedded sweep is this process's to run, so it is cancelled (its jobs marked, its boards
    released); a distributed one goes on without us."""
    if sub.runner is not None:
        ids = cancel_sweep(
            settings.db_url, sub.sweep_id, "cancelled: interrupted (Ctrl-C) during farm submit"
        )
        # The runner thread dies with this process, so its agents (each in a session of its own, so that
        # the Ctrl-C is not taken for a board fault) are stopped here, or they would run on unowned.
        cancel_all()
        click.secho(
            f"interrupted: sweep {sub.sweep_id[:8]} cancelled ({len(ids)} unfinished jobs), its agents "
            "stopped and its boards released",
            fg="yellow",
            err=True,
        )
    else:
        click.secho(
            f"interrupted: stopped waiting; sweep {sub.sweep_id[:8]} goes on "
            f"(`farm status {sub.sweep_id[:8]}`, `farm cancel {sub.sweep_id[:8]}`)",
            fg="yellow",
            err=True,
        )
    raise SystemExit(130)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _dry_run(sweep_file: str, max_jobs: int | None, fmt: str, db_url: str | None) -> None:
    """The plan of a sweep, nothing written (not even a new database: farm/services/dryrun.py)."""
    import os

    from farm.config import load_settings
    from farm.services.dryrun import plan_sweep

    if db_url:
        os.environ["FARM_DB_URL"] = db_url
    plan = plan_sweep(load_settings(), sweep_file, max_jobs=max_jobs)
    if fmt == "json":
        click.echo(json.dumps(plan.to_json(), indent=2))
        return
    for warning in plan.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    scenarios = sorted({sc for r in plan.rows for sc in r["runs"]})
    header = ["model", "prec", "target", "batch", "compile", *scenarios, "est."]
    table = [header] + [
        [r["model"], r["precision"], r["target"], str(r["batch"]), r["compile"]]
        + [str(r["runs"].get(sc, 0)) for sc in scenarios]
        + [_minutes(r["estimate_s"])]
        for r in plan.rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(
        f"\nsweep {plan.name}: {plan.jobs} jobs, {plan.compiles} compiles ({plan.reused} with a stored artifact: "
        f"reused if the model and toolchain are unchanged); about {_minutes(plan.estimate_s)} "
        f"({plan.parallel}; {plan.from_history} of {plan.jobs} jobs estimated from this farm's history, the rest "
        "from the sweep's LoadGen settings). Nothing was written: run it without --dry-run."
    )


@click.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option(
    "--wait/--no-wait",
    default=True,
    help="Wait with a progress bar (default) or print the sweep id and return.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    default=None,
    help=f"Refuse a sweep that would plan more jobs than this [default: FARM_MAX_JOBS, else {DEFAULT_MAX_JOBS}].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate and print the plan (jobs, reused compiles, estimated time); write and run nothing.",
)
@label_option
@db_option
@handle_errors
def submit(
    sweep_file: str,
    wait: bool,
    fmt: str,
    max_jobs: int | None,
    dry_run: bool,
    labels: dict[str, str],
    db_url: str | None,
) -> None:
    """Validate SWEEP_FILE, plan its jobs and run them (through the broker when one is configured)."""
    if dry_run:
        _dry_run(sweep_file, max_jobs, fmt, db_url)
        return
    settings = settings_for(db_url)
    require_broker(
        settings
    )  # before the sweep is written: a refusal now beats a sweep waiting for the broker
    summary = run_submit(settings, sweep_file, wait, max_jobs or settings.max_jobs, labels)
    if summary is None:
        return
    with session_scope(settings.db_url) as s:
        click.echo(render(results(s, summary["id"]), fmt))
    if summary["state"] in ("failed", "cancelled"):
        raise SystemExit(1)


@click.command()
@click.argument("sweep_id", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@db_option
@handle_errors
def status(sweep_id: str | None, fmt: str, db_url: str | None) -> None:
    """Show one sweep's progress and failures, or the latest sweeps."""
    settings = settings_for(db_url)
    warn_if_broker_down(settings)
    with session_scope(settings.db_url) as s:
        if sweep_id:
            full = resolve_sweep_id(s, sweep_id)
            summary = sweep_summary(s, full)
    if sweep_id:
        assert summary is not None
        summary["stale"] = stale(settings, full)
        if fmt == "json":
            click.echo(json.dumps(summary, indent=2))
        else:
            print_summary(summary)
        return
    with session_scope(settings.db_url) as s:
        listing = sweeps(s)
    if fmt == "json":
        click.echo(json.dumps(listing, indent=2))
    elif not listing:
        click.echo("no sweeps yet: try `farm demo` or `farm submit SWEEP.yaml`")
    else:
        for summary in listing:
            print_summary(summary)


def stale(settings, sweep_id: str) -> list[dict]:
    """What the reconciler would fix in this sweep now (nothing is changed): lost, orphaned, stuck jobs."""
    from farm.broker import farm_messages
    from farm.reconciler import reconcile

    report = reconcile(settings.db_url, sweep_id=sweep_id, live_messages=farm_messages(settings), act=False)
    return [{"job_id": f.job_id, "problem": f.problem, "action": f.action} for f in report.findings]


def resolve_sweep_id(s, prefix: str) -> str:
    """A full sweep id or a unique prefix of one (as printed by `farm status`)."""
    from sqlalchemy import select

    from farm.db.models import SweepRow

    matches = list(s.scalars(select(SweepRow.id).where(SweepRow.id.startswith(prefix)).limit(2)))
    if len(matches) != 1:
        raise FarmError(
            f"no sweep matches {prefix!r}" if not matches else f"sweep id prefix {prefix!r} is ambiguous"
        )
    return matches[0]


@click.command(name="results")
@click.option("--sweep", "sweep_id", default=None, help="A sweep id or prefix (default: the latest sweep).")
@click.option("--all", "all_sweeps", is_flag=True, help="Every sweep's results.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@db_option
@handle_errors
def results_cmd(sweep_id: str | None, all_sweeps: bool, fmt: str, db_url: str | None) -> None:
    """Print results: one row per run, measured and emulated figures labelled by `source`."""
    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        if all_sweeps:
            rows = results(s)
        else:
            chosen = resolve_sweep_id(s, sweep_id) if sweep_id else latest_sweep_id(s)
            rows = results(s, chosen) if chosen else []
    click.echo(render(rows, fmt))
