"""farm.toml: where the files are looked for (FARM_CONFIG or ./farm.toml, then the data dir's), and reading
one into values by field with every problem located (file, line, key), never an exception.

Apart from the model (farm.config_model) and the loader (farm.config): this is the part that touches the file
system and TOML, and the part most of the messages come from. farm.config re-exports its public names.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from farm.config_model import (
    ENV_PREFIX,
    EXPECTED,
    PATH_FIELDS,
    Settings,
    as_path,
    env_name,
    file_key,
    redact_url,
    shown_value,
)

#: The config file's name, looked for in the current folder and in the data dir.
CONFIG_FILE = "farm.toml"
#: Names one config file explicitly (instead of ./farm.toml); a file it names must exist.
CONFIG_VARIABLE = "FARM_CONFIG"
#: farm.toml's keys -> the fields they set.
FILE_KEYS = {file_key(name): name for name in Settings.model_fields}
#: Fields that take a number: a TOML true/false for one is a mistake (pydantic would read it as 1 or 0).
_NUMBERS = frozenset(name for name, info in Settings.model_fields.items() if info.annotation in (int, float))

#: Variables besides FARM_* that the defaults depend on (platformdirs' data dir).
_DEFAULTS_FROM = ("HOME", "XDG_DATA_HOME")
_CACHE_SIZE = 16


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
    variables by upper-case name (:func:`farm_environ`), read now when not given."""
    env = farm_environ()[0] if environ is None else environ
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
            errors.append(f"{CONFIG_VARIABLE}={shown_value('', explicit)}: {problem}")
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
        return as_path(raw).absolute(), why
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


def farm_environ() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
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
