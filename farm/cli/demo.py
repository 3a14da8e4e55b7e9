"""farm demo: a whole sweep on the built-in defaults (SQLite, no broker, local lab)."""

from __future__ import annotations

import os
import time
from importlib import resources

import click

from farm.cli.common import db_option, handle_errors, settings_for
from farm.cli.render import render
from farm.cli.submit import run_submit
from farm.db.session import redact, session_scope
from farm.queries import results


@click.command()
@db_option
@handle_errors
def demo(db_url: str | None) -> None:
    """Run the bundled example sweep in this process and print its results."""
    os.environ.pop("FARM_BROKER_URL", None)  # the demo needs no broker: tasks run in-process
    from farm.celery_app import app, configure

    configure(app)
    settings = settings_for(db_url)
    sweep_file = resources.files("farm") / "examples" / "demo.yaml"
    click.echo(f"farm demo: {sweep_file}")
    click.echo(f"database: {redact(settings.db_url)}; artifacts: {settings.artifact_dir}")
    started = time.monotonic()
    with resources.as_file(sweep_file) as path:
        summary = run_submit(settings, str(path), wait=True)
    assert summary is not None
    with session_scope(settings.db_url) as s:
        click.echo(render(results(s, summary["id"]), "table"))
    click.echo(f"finished in {time.monotonic() - started:.0f} s. Results are in {redact(settings.db_url)}")
    click.echo(f"see them again with: farm results --sweep {summary['id'][:8]}")
    if summary["state"] == "failed":
        raise SystemExit(1)
