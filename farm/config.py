"""Settings from the environment and farm.toml files, so the same code runs embedded (defaults) or distributed.

One typed object (pydantic-settings, prefix ``FARM_``) holds them all, so a bad value is caught once, where
the farm starts, with the variable (or the file, line and key), the value and what is expected; never as a
ValueError deep in a worker.

Each setting is a FARM_* variable (:data:`DESCRIPTIONS` says what each one does; docs/configuration.md prints
the table) and a key of the same name in a ``farm.toml`` file: the variable's name without FARM_, in lower case
(FARM_DB_URL: ``db_url``; FARM_INVENTORY: ``inventory``). Precedence, each setting on its own:

    --db (db_url only) > FARM_* variable > $FARM_CONFIG or ./farm.toml > <data dir>/farm.toml > default

An unset or empty variable, and an empty string in a file, count as not given. A relative path in a file
(the path settings, and a sqlite:/// URL's file) is relative to that file's folder, as a sweep file's paths
are. ``farm config show`` prints every setting, its value and where it came from; ``farm config path`` the
files looked for.

This module loads the settings (precedence, the cache, every problem in one message) and says where each came
from. The pieces it builds on live beside it, each for one reason: farm.config_model (the typed model and its
checks), farm.config_files (finding and reading farm.toml), farm.config_reference (the docs' table). Every
public name of those is importable from here, the one place callers import settings from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from farm.config_files import (
    CONFIG_FILE,
    CONFIG_VARIABLE,
    FILE_KEYS,
    Candidate,
    ConfigFile,
    Lookup,
    farm_environ,
    locate_config,
)
from farm.config_model import (
    ALIASES,
    DEFAULT_VISIBILITY_TIMEOUT_S,
    ENV_PREFIX,
    EXPECTED,
    INVENTORY_PACKAGE_DIR,
    PATH_FIELDS,
    PathValue,
    Seconds,
    Settings,
    builtin_inventory_dir,
    env_name,
    file_key,
    redact_url,
    shown_value,
)
from farm.config_reference import DEFAULT_TEXT, DESCRIPTIONS, number_text, reference_table
from farm.errors import SettingsError

__all__ = [
    "ALIASES",
    "CONFIG_FILE",
    "CONFIG_VARIABLE",
    "DEFAULT_TEXT",
    "DEFAULT_VISIBILITY_TIMEOUT_S",
    "DESCRIPTIONS",
    "ENV_PREFIX",
    "EXPECTED",
    "FILE_KEYS",
    "INVENTORY_PACKAGE_DIR",
    "PATH_FIELDS",
    "REPO_ROOT",
    "Candidate",
    "ConfigFile",
    "Effective",
    "Lookup",
    "PathValue",
    "Seconds",
    "Settings",
    "builtin_inventory_dir",
    "effective_settings",
    "env_name",
    "file_key",
    "load_settings",
    "locate_config",
    "number_text",
    "redact_url",
    "reference_table",
]

#: The folder above the package: the checkout when running from one. Only the git sha in provenance and the
#: tests use it; run-time data is found through the package (an installed wheel has no checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent


_CACHE: dict[tuple, Settings] = {}
_CACHE_SIZE = 16


def load_settings(db_url: str | None = None) -> Settings:
    """The settings now in force: ``db_url`` (from --db) over the FARM_* variables, over the farm.toml files
    (:func:`locate_config`), over the defaults.

    Raises SettingsError naming every bad variable, key and file at once, so one run of the CLI shows them
    all. Workers call this per job: the object is cached per environment and files' versions (it is frozen),
    which costs a few microseconds instead of pydantic's ~0.5 ms."""
    env, items = farm_environ()
    lookup = locate_config(env)
    key = (db_url, lookup.stamp, *items)
    cached = None if lookup.problems or any(config.errors for config in lookup.files) else _CACHE.get(key)
    if cached is not None:
        return cached
    given, origin = _given(lookup, env, db_url)
    # Every problem, in the order a person fixes them: FARM_CONFIG, each file by line, then the variables.
    rank = {id(config): i for i, config in enumerate(lookup.files)}
    problems = [(-1, 0, text) for text in lookup.problems]
    problems += [(rank[id(c)], line, text) for c in lookup.files for line, text in c.errors]
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        for field, text in _located(exc, db_url, env, origin):
            config = origin.get(field or "")
            if isinstance(config, ConfigFile):
                problems.append((rank[id(config)], config.written[field][2] or 0, text))
            else:
                problems.append((len(rank), 0, text))
    if problems:
        raise SettingsError("; ".join(text for *_, text in sorted(problems, key=lambda p: p[:2]))) from None
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = settings
    return settings


def _given(
    lookup: Lookup, env: Mapping[str, str], db_url: str | None
) -> tuple[dict[str, Any], dict[str, ConfigFile | str]]:
    """What Settings is built from (the files' values that no variable overrides, and --db; the environment
    it reads itself) and where each setting comes from: a ConfigFile, ``env FARM_X`` or ``--db``."""
    given: dict[str, Any] = {}
    origin: dict[str, ConfigFile | str] = {}
    for config in reversed(lookup.files):  # the lowest first: a higher file overrides it
        for name, value in config.values.items():
            given[name], origin[name] = value, config
    for name in Settings.model_fields:
        if env.get(env_name(name)):
            given.pop(name, None)
            origin[name] = f"env {env_name(name)}"
    if db_url:
        given["db_url"], origin["db_url"] = db_url, "--db"
    return given, origin


def _located(
    exc: ValidationError,
    db_url: str | None,
    env: Mapping[str, str],
    origin: Mapping[str, ConfigFile | str],
) -> list[tuple[str | None, str]]:
    """Each bad setting once, as (field, message): the variable and its value, or the file, line and key."""
    lines: dict[str, tuple[str | None, str]] = {}
    for error in exc.errors():
        field = next((str(part) for part in error["loc"] if str(part) in EXPECTED), None)
        field = field or next((f for f, alias in ALIASES.items() if alias in error["loc"]), None)
        if field is None:  # a check across fields: none today, but never swallow one
            lines.setdefault(str(error["loc"]), (None, error["msg"]))
            continue
        config = origin.get(field)
        if isinstance(config, ConfigFile):
            lines.setdefault(field, (field, config.problem(field, f"expected {EXPECTED[field]}")))
            continue
        name = "--db" if field == "db_url" and db_url else env_name(field)
        raw = db_url if name == "--db" else env.get(name, "")
        lines.setdefault(field, (field, f"{name}={shown_value(field, raw)}: expected {EXPECTED[field]}"))
    return list(lines.values())


@dataclass(frozen=True)
class Effective:
    """One setting as `farm config show` prints it."""

    key: str  # farm.toml's key
    variable: str  # the FARM_* variable
    value: Any  # JSON-ready: a string, a number, a list or None; passwords hidden
    source: str  # "env FARM_X", the farm.toml that set it, or "default"


def effective_settings() -> tuple[list[Effective], Lookup]:
    """Every setting, its value and where it came from (raises SettingsError as load_settings does)."""
    settings = load_settings()
    env = farm_environ()[0]
    lookup = locate_config(env)
    _, origin = _given(lookup, env, None)
    rows = []
    for name in Settings.model_fields:
        where = origin.get(name, "default")
        source = where.shown if isinstance(where, ConfigFile) else where
        rows.append(Effective(file_key(name), env_name(name), _plain(name, getattr(settings, name)), source))
    return rows, lookup


def _plain(field: str, value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and field in ("db_url", "broker_url"):
        return redact_url(value)
    if isinstance(value, list):
        return [str(item) for item in value]
    return value
