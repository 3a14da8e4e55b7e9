"""Settings from the environment, so the same code runs embedded (defaults) or distributed.

One typed object (pydantic-settings, prefix ``FARM_``) holds them all, so a bad value is caught once, where
the farm starts, with the variable, the value and what is expected; never as a ValueError deep in a worker.

FARM_DATA_DIR   where the SQLite database and the artifact store live (default: the user's data dir)
FARM_DB_URL     SQLAlchemy URL (default: sqlite:///<data dir>/farm.db)
FARM_BROKER_URL Celery broker (unset: tasks run in-process, no broker needed)
FARM_ARTIFACT_DIR content-addressed artifact store (default: <data dir>/artifacts); shared by workers
FARM_INVENTORY  inventory directory (default: the built-in one shipped in the package, farm/inventory_data,
                which in a checkout is the repository's inventory/)
FARM_LAB        lab file in it (default: local.yaml)
FARM_ALERTS     the alerts' notification channels file (default: alerts.yaml in the inventory directory; if
                that is absent too, alerts go to the terminal: docs/notify.md)
FARM_BOARD      set by `farm worker --board NAME`: the one board this worker drives
FARM_BOARDS     set by `farm worker --board A --board B`: the boards a worker host drives (A,B)
FARM_BOARDS_PER_WORKER  how many boards `farm fleet up` gives one worker process (default 1)
FARM_HEALTH_INTERVAL_S  how often a board worker re-checks its board (default 300)
FARM_BAD_COOLDOWN_S     a board that failed a job is not re-checked for this long (default 600)
FARM_AGENT_TIMEOUT_MARGIN_S  an agent run is killed after 4 x min_duration + this (default 120)
FARM_VISIBILITY_TIMEOUT_S  Redis redelivers a job whose worker died after this (default 7400)
FARM_MAX_JOBS   the most jobs one sweep may plan (default 10000)
FARM_LAB_SSHD   the OpenSSH server the virtual lab runs (default /usr/sbin/sshd)
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from farm.errors import SettingsError

#: The folder above the package: the checkout when running from one. Only the git sha in provenance and the
#: tests use it; run-time data is found through the package (an installed wheel has no checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The package's copy of the built-in inventory (board-type catalog, local.yaml, the virtual lab template).
#: In a checkout farm/inventory_data is a symlink to inventory/, so there is one source of truth; a wheel
#: or sdist holds real copies of those files (setuptools follows the link when it builds them).
INVENTORY_PACKAGE_DIR = "inventory_data"

ENV_PREFIX = "FARM_"

#: Redis hands an unacked job to another worker after this long: it must outlast the longest hard time
#: limit (a compile's, 3700 s in farm.celery_app), or a slow job would run twice.
DEFAULT_VISIBILITY_TIMEOUT_S = 7400.0


def builtin_inventory_dir() -> Path:
    """The built-in inventory, found through the package; resolved, so a checkout names inventory/ itself.

    farm runs from a regular (unzipped) install: the agent, the dashboard and this folder are used as
    files, so the package's resources are plain paths."""
    return Path(str(resources.files("farm") / INVENTORY_PACKAGE_DIR)).resolve()


def _path(value: Any) -> Path:
    if isinstance(value, str) and "\0" in value:
        raise ValueError("NUL in a path")
    return Path(value).expanduser()


def _db_url(value: str) -> str:
    try:
        make_url(value)  # a missing driver or an unknown dialect is met when the farm connects (exit 1)
    except ArgumentError as exc:
        raise ValueError("not a SQLAlchemy URL") from exc
    return value


def _broker_url(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://\S*", value):
        raise ValueError("not a broker URL")
    return value


def _name(value: str) -> str:
    if "\0" in value or not value.strip():
        raise ValueError("not a name")
    return value


def _names(value: Any) -> Any:
    """A comma-separated list (``A,B``) as the environment gives it, or a list as code does."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    return value


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("a board named twice")
    return values


PathValue = Annotated[Path, BeforeValidator(_path)]
Seconds = Annotated[float, Field(allow_inf_nan=False)]

#: What each setting expects, in the words of the error an operator reads.
EXPECTED = {
    "data_dir": "a folder path",
    "db_url": "a SQLAlchemy URL such as sqlite:////var/lib/farm/farm.db or postgresql+psycopg://USER@HOST/DB",
    "broker_url": "a broker URL such as redis://HOST:6379/0",
    "artifact_dir": "a folder path",
    "inventory_dir": "a folder path",
    "lab": "a lab file name or path",
    "alerts": "the path of an alerts.yaml file",
    "lab_sshd": "the path of an sshd binary",
    "board": "a board name",
    "boards": "board names separated by commas",
    "boards_per_worker": "a whole number >= 1",
    "health_interval_s": "a number of seconds > 0",
    "agent_timeout_margin_s": "a number of seconds >= 0",
    "bad_cooldown_s": "a number of seconds >= 0",
    "visibility_timeout_s": "a number of seconds > 0",
    "max_jobs": "a whole number >= 1",
    "lease_s": "a number of seconds >= 1",
    "reconcile_s": "a number of seconds > 0",
    "schedule_refresh_s": "a number of seconds > 0",
    "flap_failures": "a whole number >= 1",
    "min_free_mb": "a number of MB >= 0",
}

#: Fields whose variable is not FARM_<FIELD NAME>.
ALIASES = {"inventory_dir": "FARM_INVENTORY"}


class Settings(BaseSettings):
    """Every FARM_* setting, typed and checked; unset or empty variables take the defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: PathValue = Field(default_factory=lambda: Path(platformdirs.user_data_dir("farm")))
    db_url: Annotated[str, AfterValidator(_db_url)] = ""  # "" until derived from data_dir
    broker_url: Annotated[str, AfterValidator(_broker_url)] | None = None
    artifact_dir: PathValue = Path()  # derived from data_dir when unset
    inventory_dir: PathValue = Field(default_factory=builtin_inventory_dir, alias=ALIASES["inventory_dir"])
    lab: Annotated[str, AfterValidator(_name)] | None = None
    alerts: PathValue | None = None  # farm/notify/config.py
    lab_sshd: PathValue | None = None
    board: Annotated[str, AfterValidator(_name)] | None = None
    # NoDecode: the variable is "A,B", not JSON
    boards: Annotated[
        list[Annotated[str, AfterValidator(_name)]],
        NoDecode,
        BeforeValidator(_names),
        AfterValidator(_distinct),
    ] = Field(default_factory=list)
    boards_per_worker: Annotated[int, Field(ge=1)] = 1
    health_interval_s: Annotated[Seconds, Field(gt=0)] = 300.0
    agent_timeout_margin_s: Annotated[Seconds, Field(ge=0)] = 120.0
    bad_cooldown_s: Annotated[Seconds, Field(ge=0)] = 600.0
    visibility_timeout_s: Annotated[Seconds, Field(gt=0)] = DEFAULT_VISIBILITY_TIMEOUT_S
    max_jobs: Annotated[int, Field(ge=1)] = 10000
    lease_s: Annotated[Seconds, Field(ge=1)] = 60.0  # a running job's lease (farm/leases.py)
    reconcile_s: Annotated[Seconds, Field(gt=0)] = 30.0  # Celery beat runs the reconciler this often
    schedule_refresh_s: Annotated[Seconds, Field(gt=0)] = 30.0  # beat re-reads the schedules table this often
    flap_failures: Annotated[int, Field(ge=1)] = 3  # failed checks in a row before a board goes bad
    min_free_mb: Annotated[float, Field(ge=0)] = 512.0  # free space a board needs where artifacts go

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        """db_url and artifact_dir default to places in data_dir (a bad data_dir is reported on its own)."""
        if not isinstance(data, dict):
            return data
        raw = data.get("data_dir") or platformdirs.user_data_dir("farm")
        try:
            data_dir = _path(raw)
        except (TypeError, ValueError):
            return data
        data = dict(data)
        if not data.get("db_url"):
            data["db_url"] = f"sqlite:///{data_dir / 'farm.db'}"
        if not data.get("artifact_dir"):
            data["artifact_dir"] = data_dir / "artifacts"
        return data

    @property
    def embedded(self) -> bool:
        """No broker: tasks run in-process (Celery eager mode)."""
        return not self.broker_url

    @property
    def bound_boards(self) -> tuple[str, ...]:
        """The boards this worker drives (FARM_BOARDS, else FARM_BOARD); () for an unbound worker. The one
        accessor, so a single-board worker and a worker host read their boards the same way."""
        if self.boards:
            return tuple(self.boards)
        return (self.board,) if self.board else ()


def env_name(field: str) -> str:
    """The environment variable a field is read from."""
    return ALIASES.get(field, ENV_PREFIX + field.upper())


#: Variables besides FARM_* that the defaults depend on (platformdirs' data dir).
_DEFAULTS_FROM = ("HOME", "XDG_DATA_HOME")
_CACHE: dict[tuple, Settings] = {}
_CACHE_SIZE = 16


def load_settings(db_url: str | None = None) -> Settings:
    """The settings now in the environment (``db_url``, from --db, wins over FARM_DB_URL).

    Raises SettingsError naming every bad variable at once, so one run of the CLI shows them all.
    Workers call this per job: the object is cached per environment (it is frozen), which costs a few
    microseconds instead of pydantic's ~0.5 ms."""
    key = (
        db_url,
        *sorted(
            (k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX) or k in _DEFAULTS_FROM
        ),
    )
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        settings = Settings(**({"db_url": db_url} if db_url else {}))
    except ValidationError as exc:
        raise SettingsError("; ".join(_located(exc, db_url))) from None
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = settings
    return settings


def _located(exc: ValidationError, db_url: str | None) -> list[str]:
    lines: dict[str, str] = {}
    for error in exc.errors():
        field = next((str(part) for part in error["loc"] if str(part) in EXPECTED), None)
        field = field or next((f for f, alias in ALIASES.items() if alias in error["loc"]), None)
        if field is None:  # a check across fields: none today, but never swallow one
            lines.setdefault(str(error["loc"]), error["msg"])
            continue
        name = "--db" if field == "db_url" and db_url else env_name(field)
        raw = db_url if name == "--db" else _environ(name)
        lines.setdefault(field, f"{name}={_shown(field, raw)}: expected {EXPECTED[field]}")
    return list(lines.values())


def _environ(name: str) -> str:
    """A variable's value; pydantic-settings matches names case-insensitively, and so does this."""
    return next((v for k, v in os.environ.items() if k.upper() == name), "")


def _shown(field: str, raw: str) -> str:
    """The value as the user typed it, with any password hidden and control characters escaped."""
    if field in ("db_url", "broker_url"):
        raw = redact_url(raw)
    return raw if raw.isprintable() and raw.strip() == raw and raw else repr(raw)


def redact_url(url: str) -> str:
    """A URL safe to print: the password (``scheme://user:PASSWORD@host``) is replaced by ***, even when
    the URL does not parse (whatever sits between a colon and an @)."""
    return re.sub(r":[^:/@\s]+@", ":***@", url)
