"""`farm config`: the settings in force and where each came from (a FARM_* variable, a farm.toml, the
default), and the farm.toml files looked for (docs/configuration.md).

Fast on purpose: this imports only click and farm.config, never farm.cli.common (SQLAlchemy, Celery, kombu);
checking a db_url loads SQLAlchemy's URL parser, nothing more.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from farm.config import (
    CONFIG_FILE,
    CONFIG_VARIABLE,
    Effective,
    effective_settings,
    locate_config,
    number_text,
)
from farm.errors import SettingsError

#: A bad setting is input the user fixes: exit 2, as farm.cli.common.exit_with says for every command.
EXIT_BAD_INPUT = 2


def _bad_input(fn: Callable) -> Callable:
    """A SettingsError as one line on stderr and exit 2 (farm.cli.common.handle_errors without its imports)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SettingsError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


@click.group()
def config() -> None:
    """The settings: FARM_* variables, farm.toml files and the defaults.

    Each setting is a FARM_* variable and a key in farm.toml: the variable's name without FARM_, in lower
    case (db_url = "..."). A variable wins over ./farm.toml (or the file $FARM_CONFIG names), which wins over
    <data dir>/farm.toml, which wins over the default. See docs/configuration.md.
    """


@config.command("show")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table to read, or JSON for scripts.",
)
@_bad_input
def show(fmt: str) -> None:
    """Every setting, its value now, and where it came from.

    SOURCE is `env FARM_X`, the farm.toml that set it, or `default`. Passwords in URLs are shown as ***.
    """
    rows, lookup = effective_settings()
    if fmt == "json":
        out = {
            "settings": [
                {"key": r.key, "variable": r.variable, "value": r.value, "source": r.source} for r in rows
            ],
            "files": [str(f.path) for f in lookup.files],
        }
        click.echo(json.dumps(out, indent=2))
        return
    table = [("KEY", "VALUE", "SOURCE"), *((r.key, _cell(r), r.source) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    for key, value, source in table:
        click.echo(f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source}".rstrip())
    read = ", ".join(f.shown for f in lookup.files)
    click.echo(f"\nfiles read: {read or 'none'} (`farm config path`: where they are looked for)")


def _cell(row: Effective) -> str:
    value = row.value
    if value is None or value == []:
        return "(unset)"
    if isinstance(value, list):
        value = ",".join(value)  # as FARM_BOARDS takes it
    elif isinstance(value, float):
        value = number_text(value)
    text = str(value)
    return text if text.isprintable() else repr(text)


@config.command("path")
@_bad_input
def path_cmd() -> None:
    """The farm.toml files looked for, and which were found.

    Highest precedence first: $FARM_CONFIG if set (the file must exist), else ./farm.toml; then farm.toml in
    the data dir (FARM_DATA_DIR, else data_dir in the first file, else the default). The FARM_* variables win
    over every file.
    """
    lookup = locate_config()
    rows = [(c.role, str(c.path), _state(c.found, c.note)) for c in lookup.candidates]
    if not any(role == CONFIG_VARIABLE for role, *_ in rows):
        rows.insert(
            0, (CONFIG_VARIABLE, "(not set)", f"it would name the file to read instead of ./{CONFIG_FILE}")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for role, where, state in rows:
        click.echo(f"{role:<{widths[0]}}  {where:<{widths[1]}}  {state}")
    if lookup.errors:
        raise SettingsError("; ".join(lookup.errors))


def _state(found: bool, note: str) -> str:
    return ("found" if found else "not found") + (f" ({note})" if note else "")
