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
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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

#: What each setting does: docs/configuration.md's table is printed from this (:func:`reference_table`).
DESCRIPTIONS = {
    "data_dir": "where the SQLite database and the artifact store live",
    "db_url": "the results database (SQLAlchemy URL)",
    "broker_url": "the Celery broker; unset: tasks run in-process, no broker needed",
    "artifact_dir": "the content-addressed artifact store, shared by workers",
    "inventory_dir": "the inventory directory (board-type catalog, lab files)",
    "lab": "the lab file: a name in the inventory directory, or a path",
    "alerts": "the alerts' notification channels file (docs/notify.md)",
    "lab_sshd": "the OpenSSH server the virtual lab runs",
    "containers_dir": "this machine's podman image store and containers.conf (the compile image, a lab's "
    "container compile host)",
    "containers_storage": "podman's storage driver there; auto: overlay where the kernel has it (about 5x "
    "faster per compile), else vfs (works everywhere)",
    "board": "set by `farm worker --board NAME`: the one board this worker drives",
    "boards": "set by `farm worker --board A --board B`: the boards a worker host drives",
    "boards_per_worker": "how many boards `farm fleet up` gives one worker process",
    "health_interval_s": "how often a board worker re-checks its board",
    "agent_timeout_margin_s": "an agent run is killed after 4 x min_duration + this",
    "bad_cooldown_s": "a board that failed a job is not re-checked for this long",
    "visibility_timeout_s": "Redis redelivers a job whose worker died after this",
    "max_jobs": "the most jobs one sweep may plan",
    "lease_s": "a running job's lease (farm/leases.py)",
    "reconcile_s": "Celery beat runs the reconciler this often",
    "schedule_refresh_s": "Celery beat re-reads the schedules table this often",
    "flap_failures": "failed checks in a row before a board goes bad",
    "min_free_mb": "free space a board needs where artifacts go",
}

#: Defaults that are not a plain value of the field (the others are read from the model).
DEFAULT_TEXT = {
    "data_dir": "the user's data dir (platformdirs; `~/.local/share/farm` on Linux)",
    "db_url": "`sqlite:///<data dir>/farm.db`",
    "broker_url": "unset",
    "artifact_dir": "`<data dir>/artifacts`",
    "inventory_dir": "the built-in inventory (`farm/inventory_data`; `inventory/` in a checkout)",
    "lab": "`local.yaml`",
    "alerts": "`alerts.yaml` in the inventory directory; if absent too, the terminal",
    "lab_sshd": "`/usr/sbin/sshd`",
    "containers_dir": "`containers` in the user's cache dir (`~/.cache/farm/containers` on Linux)",
    "board": "unset",
    "boards": "unset",
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


def file_key(field: str) -> str:
    """A field's key in farm.toml: its variable's name without FARM_, in lower case (FARM_INVENTORY: inventory)."""
    return env_name(field)[len(ENV_PREFIX) :].lower()


#: The config file's name, looked for in the current folder and in the data dir.
CONFIG_FILE = "farm.toml"
#: Names one config file explicitly (instead of ./farm.toml); a file it names must exist.
CONFIG_VARIABLE = "FARM_CONFIG"
#: farm.toml's keys -> the fields they set.
FILE_KEYS = {file_key(name): name for name in Settings.model_fields}
#: Fields that take a number: a TOML true/false for one is a mistake (pydantic would read it as 1 or 0).
_NUMBERS = frozenset(name for name, info in Settings.model_fields.items() if info.annotation in (int, float))
#: Extra words for the docs' table where the file takes more than the variable does.
_FILE_NOTES = {
    "boards": '; in farm.toml also an array, `["A", "B"]`',
    "lab": "; in farm.toml too, a name is looked up in the inventory directory",
    "db_url": "; in farm.toml a relative sqlite:/// file is relative to the file's folder",
    **{name: "; in farm.toml relative to the file's folder" for name in PATH_FIELDS},
}


@dataclass(frozen=True)
class ConfigFile:
    """One farm.toml as read: its values by field (relative paths resolved against its folder), what was
    written for each and on which line (for messages), and every problem found in it."""

    path: Path  # absolute
    shown: str  # how messages and `farm config show` name it: ./farm.toml, or the path
    values: dict[str, Any]
    written: dict[str, tuple[str, Any, int | None]]  # field -> (key, value as written, line)
    errors: tuple[tuple[int, str], ...]  # (line, or 0 when none applies; the message), in line order

    def problem(self, field: str, message: str) -> str:
        """``FILE:LINE: key = value: message`` for a field this file sets (passwords hidden)."""
        key, value, line = self.written[field]
        return f"{_where(self.shown, line)}{_toml_key(key)} = {_toml_value(field, value)}: {message}"


@dataclass(frozen=True)
class Candidate:
    """A place a farm.toml is looked for, and whether one is there."""

    role: str  # FARM_CONFIG, ./farm.toml or data dir
    path: Path
    found: bool
    note: str = ""  # where the data dir comes from; or why the file is not read


@dataclass(frozen=True)
class Lookup:
    """The farm.toml files: where each was looked for, those read (highest precedence first), their problems."""

    candidates: tuple[Candidate, ...]
    files: tuple[ConfigFile, ...]
    problems: tuple[str, ...]  # besides the files' own: FARM_CONFIG names no file
    stamp: tuple  # the files read and their versions: part of load_settings' cache key

    @property
    def errors(self) -> list[str]:
        """Every problem: FARM_CONFIG's, then each file's in line order."""
        return [*self.problems, *(text for config in self.files for _, text in config.errors)]


_FILES: dict[tuple, ConfigFile] = {}
_DATA_DIRS: dict[tuple, str] = {}


def locate_config(environ: Mapping[str, str] | None = None) -> Lookup:
    """The farm.toml files, highest precedence first: $FARM_CONFIG (it must exist) or else ./farm.toml, then
    <data dir>/farm.toml, the data dir being FARM_DATA_DIR, else the first file's data_dir, else the default.
    Costs a few stats: each file is parsed once per version (mtime, size, inode). ``environ``: the FARM_*
    variables by upper-case name (:func:`_farm_environ`), read now when not given."""
    env = _farm_environ()[0] if environ is None else environ
    candidates: list[Candidate] = []
    files: list[ConfigFile] = []
    versions: list[tuple] = []
    errors: list[str] = []
    explicit = env.get(CONFIG_VARIABLE, "")
    if explicit:
        path = _absolute(explicit)
        st = _stat(path) if path is not None else None
        candidates.append(Candidate(CONFIG_VARIABLE, path or Path(explicit), _is_file(st)))
        if not _is_file(st):
            problem = "no such file" if st is None else "not a file"
            errors.append(f"{CONFIG_VARIABLE}={_shown('', explicit)}: {problem}")
        else:
            files.append(_read(path, str(path), st))
            versions.append(_version(path, st))
    else:
        cwd = _absolute(".")
        if cwd is not None:
            path = cwd / CONFIG_FILE
            st = _stat(path)
            candidates.append(Candidate("./" + CONFIG_FILE, path, _is_file(st)))
            if _is_file(st):
                files.append(_read(path, "./" + CONFIG_FILE, st))
                versions.append(_version(path, st))
    data_dir, why = _data_dir_for_lookup(env, files[0] if files else None)
    if data_dir is not None:
        path = data_dir / CONFIG_FILE
        st = _stat(path)
        found = _is_file(st)
        if found and files and _same(st, _stat(files[0].path)):
            candidates.append(Candidate("data dir", path, True, f"{why}; the same file as above"))
        else:
            candidates.append(Candidate("data dir", path, found, why))
            if found:
                files.append(_read(path, str(path), st))
                versions.append(_version(path, st))
    return Lookup(tuple(candidates), tuple(files), tuple(errors), tuple(versions))


def _data_dir_for_lookup(env: Mapping[str, str], first: ConfigFile | None) -> tuple[Path | None, str]:
    """Where the data dir's farm.toml is looked for: FARM_DATA_DIR, else the first file's data_dir, else the
    default; and which of these it is."""
    variable = env_name("data_dir")
    raw: Any = env.get(variable, "")
    why = f"data dir from {variable}"
    if not raw and first is not None and "data_dir" in first.values:
        raw, why = first.values["data_dir"], f"data dir from {first.shown}"
    if not raw:
        raw, why = _default_data_dir(), "the default data dir"
    try:
        return _path(raw).absolute(), why
    except (ValueError, OSError):  # a bad data_dir is reported by the settings' check
        return None, why


def _default_data_dir() -> str:
    key = tuple(os.environ.get(name) for name in _DEFAULTS_FROM)
    found = _DATA_DIRS.get(key)
    if found is None:
        if len(_DATA_DIRS) >= _CACHE_SIZE:
            _DATA_DIRS.clear()
        found = _DATA_DIRS[key] = platformdirs.user_data_dir("farm")
    return found


def _absolute(raw: str) -> Path | None:
    try:
        return Path(raw).expanduser().absolute()
    except (RuntimeError, OSError, ValueError):  # ~nobody, the current folder deleted
        return None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None


def _is_file(st: os.stat_result | None) -> bool:
    return st is not None and stat.S_ISREG(st.st_mode)


def _same(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _version(path: Path, st: os.stat_result) -> tuple:
    """A file's version, as far as a stat tells: a changed file is read again."""
    return str(path), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def _read(path: Path, shown: str, st: os.stat_result) -> ConfigFile:
    key = (shown, *_version(path, st))
    config = _FILES.get(key)
    if config is None:
        config = _parse(path, shown)
        if len(_FILES) >= _CACHE_SIZE:
            _FILES.clear()
        _FILES[key] = config
    return config


def _toml() -> Any:
    """tomllib (Python 3.11+), else the tomli package it came from; None when neither is there."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            return None
    return tomllib


def _parse(path: Path, shown: str) -> ConfigFile:
    """Read one farm.toml: never an exception out, every problem a located line in ``errors``."""

    def bad(message: str, line: int | None = None) -> ConfigFile:
        return ConfigFile(path, shown, {}, {}, ((line or 0, f"{_where(shown, line)}{message}"),))

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return bad(f"cannot read it: {exc.strerror or exc}")
    except UnicodeDecodeError:
        return bad("not UTF-8 text")
    toml = _toml()
    if toml is None:
        return bad("reading it needs Python 3.11, or the tomli package on older Pythons")
    try:
        table = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        line, reason = _toml_error(exc)
        return bad(f"not valid TOML: {reason}", line)
    try:
        base = path.resolve().parent  # a link's target's folder, as a sweep file's paths are
    except (OSError, RuntimeError):
        base = path.parent
    config = ConfigFile(path, shown, {}, {}, ())
    problems: list[tuple[int, str]] = []
    for key, value in table.items():
        line = _key_line(text, key)
        name = FILE_KEYS.get(key)
        if name is None:
            problems.append((line or 0, f"{_where(shown, line)}{_toml_key(key)}: {_unknown(key, value)}"))
            continue
        config.written[name] = (key, value, line)
        if isinstance(value, bool) and name in _NUMBERS:
            problems.append((line or 0, config.problem(name, f"expected {EXPECTED[name]}")))
        elif not (isinstance(value, str) and not value):  # "" is not given, as an empty variable is
            config.values[name] = _in_folder(name, value, base)
    problems.sort(key=lambda problem: problem[0])
    return ConfigFile(path, shown, config.values, config.written, tuple(problems))


def _where(shown: str, line: int | None) -> str:
    return f"{shown}:{line}: " if line else f"{shown}: "


def _toml_error(exc: ValueError) -> tuple[int | None, str]:
    """tomllib's message without its ``(at line L, column C)``, and the line."""
    text = str(exc)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", text)
    if match:
        return int(match[1]), f"{text[: match.start()]} (column {match[2]})"
    return None, re.sub(r"\s*\(at end of document\)\s*$", " (at the end of the file)", text)


def _key_line(text: str, key: str) -> int | None:
    """The line a top-level key is on (as ``key =``, ``key.sub =`` or a ``[key]`` table), or None."""
    spelled = "|".join(re.escape(form) for form in (key, json.dumps(key), f"'{key}'"))
    match = re.search(rf"^[ \t]*(?:{spelled})[ \t]*[=.]", text, re.M) or re.search(
        rf"^[ \t]*\[\[?[ \t]*(?:{spelled})[ \t]*[\].]", text, re.M
    )
    return text.count("\n", 0, match.start()) + 1 if match else None


def _unknown(key: str, value: Any) -> str:
    """Why a key is not one, with the key meant when one is close (did you mean)."""
    norm = key.lower().replace("-", "_")
    if norm == "farm" and isinstance(value, dict):
        return "unknown key: write the settings at the top level of the file, without a [farm] table"
    if norm == "config":
        return f"unknown key: {CONFIG_VARIABLE} names the file to read; a file cannot set it"
    if norm.startswith("farm_") and norm[len("farm_") :] in FILE_KEYS:
        meant = norm[len("farm_") :]
        return f"unknown key (did you mean {meant!r}? keys are the variables' names without FARM_, in lower case)"
    if norm in FILE_KEYS:
        case = "? keys are in lower case" if key.lower() == norm else "?"
        return f"unknown key (did you mean {norm!r}{case})"
    hits = difflib.get_close_matches(norm, list(FILE_KEYS), n=1, cutoff=0.6)
    return (
        f"unknown key (did you mean {hits[0]!r}?)"
        if hits
        else "unknown key (`farm config show` lists the keys)"
    )


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(field: str, value: Any) -> str:
    """A value as TOML writes it (roughly: enough to recognise it), with any password hidden."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(
            redact_url(value) if field in ("db_url", "broker_url") else value, ensure_ascii=False
        )
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(field, item) for item in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)  # a date or a time


_SQLITE_FILE = re.compile(r"(sqlite(?:\+[\w.]+)?:///)([^?]*)(\?.*)?", re.S)


def _in_folder(field: str, value: Any, base: Path) -> Any:
    """A path setting, or a sqlite:/// URL's file, made absolute against the folder of the file naming it."""
    if not isinstance(value, str) or "\0" in value:
        return value  # the settings' check says what is wrong
    if field == "db_url":
        match = _SQLITE_FILE.fullmatch(value)
        raw = match[2] if match else ""
        if not raw or raw == ":memory:" or raw.startswith(("/", "~", "file:")) or Path(raw).is_absolute():
            return value
        return f"{match[1]}{os.path.normpath(base / raw)}{match[3] or ''}"
    if field not in PATH_FIELDS:
        return value
    try:
        path = Path(value).expanduser()
    except RuntimeError:
        return value
    return value if path.is_absolute() else os.path.normpath(base / path)


#: Variables besides FARM_* that the defaults depend on (platformdirs' data dir).
_DEFAULTS_FROM = ("HOME", "XDG_DATA_HOME")
_CACHE: dict[tuple, Settings] = {}
_CACHE_SIZE = 16


def load_settings(db_url: str | None = None) -> Settings:
    """The settings now in force: ``db_url`` (from --db) over the FARM_* variables, over the farm.toml files
    (:func:`locate_config`), over the defaults.

    Raises SettingsError naming every bad variable, key and file at once, so one run of the CLI shows them
    all. Workers call this per job: the object is cached per environment and files' versions (it is frozen),
    which costs a few microseconds instead of pydantic's ~0.5 ms."""
    env, items = _farm_environ()
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


def _farm_environ() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """The FARM_* variables by upper-case name (pydantic-settings matches names case-insensitively; the first
    of two spellings wins here), and, for load_settings' cache key, every variable the settings depend on."""
    env: dict[str, str] = {}
    items = []
    for k, v in os.environ.items():
        upper = k.upper()
        if upper.startswith(ENV_PREFIX):
            env.setdefault(upper, v)
            items.append((k, v))
        elif k in _DEFAULTS_FROM:
            items.append((k, v))
    return env, tuple(sorted(items))


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
        lines.setdefault(field, (field, f"{name}={_shown(field, raw)}: expected {EXPECTED[field]}"))
    return list(lines.values())


def _shown(field: str, raw: str) -> str:
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
    env = _farm_environ()[0]
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


def reference_table() -> str:
    """docs/configuration.md's table of settings, from the model: run
    ``python -c 'from farm.config import reference_table; print(reference_table())'`` and paste it."""
    rows = [
        "| key in farm.toml | variable | value | default | what it is |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, info in Settings.model_fields.items():
        default = DEFAULT_TEXT.get(name)
        if default is None:
            default = f"`{number_text(info.default)}`"
        value = EXPECTED[name] + _FILE_NOTES.get(name, "")
        rows.append(
            f"| `{file_key(name)}` | `{env_name(name)}` | {value} | {default} | {DESCRIPTIONS[name]} |"
        )
    return "\n".join(rows)


def number_text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)
