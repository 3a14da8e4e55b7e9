"""The settings' model: every FARM_* setting as one typed pydantic-settings object, with the checks each value
passes and the words an operator reads when one fails.

Apart from farm.config (which loads the settings) so that the farm.toml reader (farm.config_files) and the
docs' table (farm.config_reference) can both build on the model without importing each other or the loader.
Import the names from farm.config: it re-exports all of them.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


def as_path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):  # a number or a table from farm.toml
        raise ValueError("not a path")
    if isinstance(value, str) and "\0" in value:
        raise ValueError("NUL in a path")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~user with no such user, or no home directory
        raise ValueError("cannot expand ~") from None


def _db_url(value: str) -> str:
    # Imported here: `farm config` and the CLI's help import this module without loading SQLAlchemy.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

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


PathValue = Annotated[Path, BeforeValidator(as_path)]
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
    "containers_dir": "a folder path",
    "containers_storage": "auto, vfs or overlay",
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


#: Settings that are paths: relative in a farm.toml, they are relative to its folder. (lab is not: a lab
#: name is looked up in the inventory directory, from a file as from FARM_LAB.)
PATH_FIELDS = ("data_dir", "artifact_dir", "inventory_dir", "alerts", "lab_sshd", "containers_dir")

#: Fields whose variable is not FARM_<FIELD NAME>.
ALIASES = {"inventory_dir": "FARM_INVENTORY"}


class Settings(BaseSettings):
    """Every FARM_* setting, typed and checked; unset or empty variables take farm.toml's value or the
    default (:func:`load_settings` reads the files)."""

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
    containers_dir: PathValue = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir("farm")) / "containers"
    )
    containers_storage: Literal["auto", "vfs", "overlay"] = "auto"
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
            data_dir = as_path(raw)
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


def file_key(field: str) -> str:
    """A field's key in farm.toml: its variable's name without FARM_, in lower case (FARM_INVENTORY: inventory)."""
    return env_name(field)[len(ENV_PREFIX) :].lower()


def shown_value(field: str, raw: str) -> str:
    """The value as the user typed it, with any password hidden and control characters escaped."""
    if field in ("db_url", "broker_url"):
        raw = redact_url(raw)
    return raw if raw.isprintable() and raw.strip() == raw and raw else repr(raw)


def redact_url(url: str) -> str:
    """A URL safe to print: the password (``scheme://user:PASSWORD@host``, up to the last @, so an @ or a /
    in it is hidden too; and a ``password=`` query parameter) is replaced by ***, even when the URL does not
    parse (whatever sits between a colon and an @)."""
    url = re.sub(r"(://[^/@\s:]*):\S*@", r"\1:***@", url, count=1)  # to the last @: it may hide one
    url = re.sub(r":[^:/@\s]+@", ":***@", url)
    return re.sub(r"(?i)([?&;](?:password|passwd|pwd)=)[^&;#\s]*", r"\1***", url)
