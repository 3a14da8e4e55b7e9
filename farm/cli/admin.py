"""farm worker / farm db."""

from __future__ import annotations

import socket

import click

from farm.cli.common import db_option, handle_errors
from farm.config import load_settings
from farm.db import migrate
from farm.db.session import redact
from farm.errors import FarmError


@click.command()
@click.option("-Q", "--queues", default=None, help="Comma-separated queues (default: all declared queues).")
@click.option(
    "-c", "--concurrency", default=1, show_default=True, help="Jobs at once (a board runs one job at a time)."
)
@click.option("-n", "--name", default=None, help="Worker node name (default: farm@<host>).")
@click.option("-l", "--loglevel", default="INFO", show_default=True)
@handle_errors
def worker(queues: str | None, concurrency: int, name: str | None, loglevel: str) -> None:
    """Run a Celery worker for the farm's queues (needs FARM_BROKER_URL)."""
    settings = load_settings()
    if settings.embedded:
        raise FarmError("farm worker needs a broker: set FARM_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    migrate.ensure_schema(settings.db_url)
    from farm.celery_app import app, configure

    configure(app)
    declared = [q.name for q in app.conf.task_queues]
    chosen = queues.split(",") if queues else declared
    unknown = [q for q in chosen if q not in declared]
    if unknown:
        raise FarmError(f"unknown queue(s) {', '.join(unknown)}; declared: {', '.join(declared)}")
    argv = [
        "worker",
        "-Q",
        ",".join(chosen),
        "-c",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "-l",
        loglevel,
    ]
    argv += ["-n", name or f"farm@{socket.gethostname()}", "--without-gossip", "--without-mingle"]
    app.worker_main(argv)


@click.group()
def db() -> None:
    """The results database schema (Alembic migrations)."""


@db.command()
@db_option
@handle_errors
def upgrade(db_url: str | None) -> None:
    """Migrate the database to the latest schema."""
    url = db_url or load_settings().db_url
    migrate.upgrade(url)
    click.echo(f"{redact(url)}: at revision {migrate.current_revision(url)}")


@db.command()
@db_option
@handle_errors
def current(db_url: str | None) -> None:
    """Print the database's schema revision and the latest one."""
    url = db_url or load_settings().db_url
    click.echo(
        f"{redact(url)}: at revision {migrate.current_revision(url)} (latest {migrate.head_revision()})"
    )
