"""farm submit / status / results."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import click

from farm.cli.common import (
    db_option,
    format_option,
    handle_errors,
    label_option,
    require_broker,
    settings_for,
    warn_if_broker_down,
    wide_option,
)
from farm.cli.render import Column, age, local_time, render, table
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.fleet.transports import cancel_all
from farm.queries.runs import results
from farm.queries.sweeps import latest_sweep_id, recent_sweeps, sweep_summary, sweeps
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
    warnings_out: list[str] | None = None,
) -> dict | None:
    """Submit and (``wait``) follow the sweep with a progress bar. ``warnings_out``: the sweep's and the
    run's warnings go there instead of the terminal (the demo says them as one summary)."""
    sub = submit_sweep(settings, sweep_file, max_jobs=max_jobs, labels=labels)
    for warning in sub.warnings:
        if warnings_out is not None:
            warnings_out.append(warning)
        else:
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
    last: dict = {"waits": ""}
    try:
        bar = ProgressLine("jobs")
        with (
            logs_above(bar, warnings_out),
            bar,
        ):  # the bar finishes its line before the console handlers speak again

            def progress(summary: dict) -> None:
                waits = "; ".join(summary.get("waiting_for") or [])
                if waits and waits != last["waits"]:  # said once per change, on its own line
                    bar.say(f"waiting for {waits}")
                last["waits"] = waits
                bar.update(summary["jobs_finished"], summary["jobs_total"])

            summary = wait_for(settings, sub, progress)
    except KeyboardInterrupt:
        interrupted(settings, sub)
    print_summary(summary)
    return summary


class ProgressLine:
    """The progress bar of `farm submit`: one line on stderr, drawn again in place as jobs finish, on a
    terminal only (a pipe or a file gets the lines said above it, not the bar). :meth:`say` prints a line
    above the bar: the bar's line is cleared, the line printed, the bar drawn again below it, so nothing is
    ever written through the bar. Thread-safe: an embedded sweep's jobs log from the runner's thread."""

    WIDTH = 32

    def __init__(self, label: str, file: IO[str] | None = None) -> None:
        self.label = label
        self.file = file if file is not None else sys.stderr
        self.live = _is_terminal(self.file)
        self.done = self.total = 0
        self.started = time.monotonic()
        self._drawn = 0  # the length of the bar's line as drawn, to clear it
        self._lock = threading.RLock()

    def __enter__(self) -> ProgressLine:
        self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self.live and self._drawn:
                self._draw()
                self.file.write("\n")
                self.file.flush()
            self._drawn = 0
            self.live = False  # a late line (a thread's log record) is said plainly

    def update(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = done, total
            self._draw()

    def say(self, text: str, fg: str | None = None) -> None:
        with self._lock:
            self._clear()
            click.secho(text, fg=fg, file=self.file)
            self._draw()

    def line(self) -> str:
        filled = round(self.WIDTH * self.done / self.total) if self.total else 0
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        elapsed = int(time.monotonic() - self.started)
        total = self.total or "?"
        return f"{self.label}  [{bar}]  {self.done}/{total}  {elapsed // 60}:{elapsed % 60:02d}"

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.file.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def _draw(self) -> None:
        if not self.live:
            return
        text = self.line()
        self.file.write("\r" + text + " " * max(0, self._drawn - len(text)))
        self.file.flush()
        self._drawn = len(text)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class _AboveBar(logging.Handler):
    """A log record, said above the progress bar: ``warning: ...`` (yellow), ``error: ...`` (red), or, for
    `farm -v`'s INFO records, ``INFO logger: ...`` as the farm logs elsewhere."""

    def __init__(self, bar: ProgressLine, collect: list[str] | None = None) -> None:
        super().__init__()
        self.bar = bar
        self.collect = collect
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno == logging.WARNING and self.collect is not None:
                self.collect.append(text)
            elif record.levelno >= logging.WARNING:
                fg = "red" if record.levelno >= logging.ERROR else "yellow"
                self.bar.say(f"{record.levelname.lower()}: {text}", fg=fg)
            else:
                self.bar.say(f"{record.levelname} {record.name}: {text}")
        except Exception:  # noqa: BLE001 - logging's own rule: a handler never raises
            self.handleError(record)


def _mute(record: logging.LogRecord) -> bool:
    return False


@contextmanager
def logs_above(bar: ProgressLine, collect: list[str] | None = None) -> Iterator[None]:
    """While the bar is up, log records (a compile's "only 16 calibration samples", a board check's
    warning) are said above it by :class:`_AboveBar`, and the console handlers that would write them
    through the bar (`farm`'s own, logging's last resort) say nothing meanwhile."""
    root = logging.getLogger()
    console = [h for h in root.handlers if type(h) is logging.StreamHandler]  # not a file's, not pytest's
    handler = _AboveBar(bar, collect)
    for h in console:
        h.addFilter(_mute)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h in console:
            h.removeFilter(_mute)


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


def _dry_run(sweep_file: str, max_jobs: int | None, fmt: str, db_url: str | None, wide: bool = False) -> None:
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
    rows = [{**r, **{f"runs:{sc}": r["runs"].get(sc, 0) for sc in scenarios}} for r in plan.rows]
    columns = [("model", "model"), ("precision", "prec"), ("target", "target"), ("batch", "batch"),
               ("compile", "compile"), *((f"runs:{sc}", sc) for sc in scenarios),
               Column("estimate_s", "est.", fmt=_minutes)]  # fmt: skip
    click.echo(table(rows, columns, wide=wide))
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
@format_option("table", "json", "csv", more="The results, once the sweep is done (--dry-run: table or json).")
@wide_option
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
    wide: bool,
    max_jobs: int | None,
    dry_run: bool,
    labels: dict[str, str],
    db_url: str | None,
) -> None:
    """Validate SWEEP_FILE, plan its jobs and run them (through the broker when one is configured)."""
    if dry_run:
        _dry_run(sweep_file, max_jobs, fmt, db_url, wide)
        return
    settings = settings_for(db_url)
    require_broker(
        settings
    )  # before the sweep is written: a refusal now beats a sweep waiting for the broker
    summary = run_submit(settings, sweep_file, wait, max_jobs or settings.max_jobs, labels)
    if summary is None:
        return
    with session_scope(settings.db_url) as s:
        click.echo(render(results(s, summary["id"]), fmt, wide=wide))
    if summary["state"] in ("failed", "cancelled"):
        raise SystemExit(1)


@click.command()
@click.argument("sweep_id", required=False)
@format_option("table", "json")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Without SWEEP_ID: each sweep in full (labels, compiles, failures, stability, flags) instead of a line.",
)
@wide_option
@db_option
@handle_errors
def status(sweep_id: str | None, fmt: str, verbose: bool, wide: bool, db_url: str | None) -> None:
    """Show one sweep's progress and failures (SWEEP_ID: an id or a unique prefix), or the latest sweeps,
    one line each."""
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
        listing = sweeps(s) if fmt == "json" or verbose else recent_sweeps(s)
    if fmt == "json":
        click.echo(json.dumps(listing, indent=2))
    elif not listing:
        click.echo("no sweeps yet: try `farm demo` or `farm submit SWEEP.yaml`")
    elif verbose:
        for summary in listing:
            print_summary(summary)
    else:
        rows = [{**r, "done": f"{r['finished']}/{r['jobs']}"} for r in listing]
        click.echo(table(rows, SWEEP_LINE, wide=wide))


#: `farm status`: one line per sweep, newest first.
SWEEP_LINE = [
    Column("sweep_id", "sweep", fmt=lambda v: v[:8]),
    ("name", "name"),
    Column(
        "state", "state", color=lambda v: {"failed": "red", "cancelled": "yellow", "done": "green"}.get(v)
    ),
    Column("done", "done/jobs", align="right"),
    ("failed", "failed"),
    Column("created_at", "age", fmt=age, align="right"),
    Column("created_at", "created", fmt=local_time, drop=1),
]


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
@click.option("--sweep", "sweep_id", default=None, help="A sweep id or prefix [default: the latest sweep].")
@click.option("--all", "all_sweeps", is_flag=True, help="Every sweep's results.")
@format_option("table", "json", "csv")
@wide_option
@db_option
@handle_errors
def results_cmd(sweep_id: str | None, all_sweeps: bool, fmt: str, wide: bool, db_url: str | None) -> None:
    """Print results: one row per run, measured and emulated figures labelled by `source`."""
    settings = settings_for(db_url)
    with session_scope(settings.db_url) as s:
        if all_sweeps:
            rows = results(s)
        else:
            chosen = resolve_sweep_id(s, sweep_id) if sweep_id else latest_sweep_id(s)
            rows = results(s, chosen) if chosen else []
    click.echo(render(rows, fmt, wide=wide))
