"""What every command shares: the --db option, settings, and turning FarmError into a clean exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from farm.config import Settings, load_settings
from farm.db.migrate import ensure_schema
from farm.errors import FarmError, SweepError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def db_option(fn: Callable) -> Callable:
    return click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help="SQLAlchemy database URL (default: FARM_DB_URL or SQLite in the data dir).",
    )(fn)


def settings_for(db_url: str | None) -> Settings:
    """Settings with --db applied; exported so in-process tasks (embedded mode) see the same database."""
    if db_url:
        os.environ["FARM_DB_URL"] = db_url
    settings = load_settings()
    ensure_schema(settings.db_url)
    return settings


def handle_errors(fn: Callable) -> Callable:
    """A FarmError is the user's to fix or read: one line on stderr, no traceback, a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SweepError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except FarmError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper
