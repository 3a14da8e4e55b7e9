"""What every command shares: the --db option, settings, the broker check, and turning a FarmError (or a
database or broker that cannot be reached) into one line and a clean exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import InterfaceError as DBInterfaceError
from sqlalchemy.exc import OperationalError as DBOperationalError

from farm.broker import check_broker
from farm.broker import explain as explain_broker
from farm.config import Settings, load_settings
from farm.db.errors import failure
from farm.db.migrate import ensure_schema
from farm.errors import ConnectionFailure, FarmError, SettingsError, SweepError
from farm.sweep.labels import parse_label

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


#: What --format's help says of each choice.
_FORMAT_HELP = {
    "table": "table for people (local times)",
    "json": "json for scripts (times ISO 8601 in UTC)",
    "csv": "csv for spreadsheets",
    "html": "html for a browser",
}


def format_option(*choices: str, default: str = "table", more: str = "") -> Callable[[Callable], Callable]:
    """--format with these choices (table first), its default shown, each choice said in the help."""
    said = "; ".join(_FORMAT_HELP.get(c, c) for c in choices)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help=f"{said[0].upper()}{said[1:]}.{' ' + more if more else ''}",
    )


def wide_option(fn: Callable) -> Callable:
    return click.option(
        "--wide",
        is_flag=True,
        help="Every column, whole. Without it a table keeps to 120 columns and says what it left out.",
    )(fn)


def _labels(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """Every ``--label KEY=VALUE``, checked by the sweep file's rules; a bad one is a usage error (exit 2)."""
    out: dict[str, str] = {}
    for text in values:
        try:
            key, value = parse_label(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        out[key] = value
    return out


def label_option(fn: Callable) -> Callable:
    return click.option(
        "--label",
        "labels",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_labels,
        help="A version label (repeatable), e.g. model_rev=3f2a1c; overrides the sweep file's labels: entry.",
    )(fn)


def settings_for(db_url: str | None) -> Settings:
    """Settings with --db applied; exported so in-process tasks (embedded mode) see the same database."""
    if db_url:
        os.environ["FARM_DB_URL"] = db_url
    settings = load_settings()
    ensure_schema(settings.db_url)
    return settings


def require_broker(settings: Settings) -> None:
    """Distributed mode: stop here, before anything is written, when the broker cannot be reached."""
    if settings.broker_url:
        check_broker(settings.broker_url)


def warn_if_broker_down(settings: Settings) -> None:
    """The database still answers what is stored; say why nothing moves while the broker is away."""
    try:
        require_broker(settings)
    except ConnectionFailure as exc:
        click.secho(f"warning: {exc}: queued jobs wait until it is back", fg="yellow", err=True)


def as_farm_error(exc: BaseException, db_url: str | None = None) -> FarmError | None:
    """The one place an error from the database or the broker becomes a sentence: a FarmError as it is;
    SQLAlchemy's connection errors and kombu's by what to check (URLs redacted); anything else None."""
    if isinstance(exc, FarmError):
        return exc
    if isinstance(exc, (DBOperationalError, DBInterfaceError)):
        return failure(exc, db_url or _setting("db_url") or "")
    if isinstance(exc, BrokerOperationalError):
        return ConnectionFailure(explain_broker(exc, _setting("broker_url") or "the broker"))
    return None


def _setting(name: str) -> str | None:
    try:
        return getattr(load_settings(), name)
    except SettingsError:
        return None


def exit_with(exc: FarmError) -> NoReturn:
    """One line on stderr, no traceback; exit 2 for input the user must fix, 1 for a failure."""
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(EXIT_BAD_INPUT if isinstance(exc, (SweepError, SettingsError)) else EXIT_FAILED)


def handle_errors(fn: Callable) -> Callable:
    """A FarmError is the user's to fix or read: one line on stderr, no traceback, a non-zero exit. So is a
    database or broker that cannot be reached (as_farm_error)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (FarmError, DBOperationalError, DBInterfaceError, BrokerOperationalError) as exc:
            translated = as_farm_error(exc, kwargs.get("db_url"))
            if translated is None:
                raise
            exit_with(translated)

    return wrapper
