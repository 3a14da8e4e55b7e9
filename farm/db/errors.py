"""Why the database cannot be opened, as one line that says what to check.

An operator meets these first (a server down, a typo in the URL, a driver not installed), so each gets a
sentence instead of SQLAlchemy's traceback. Passwords never appear: URLs are redacted. Only the CLI turns a
connection error into this message; workers keep SQLAlchemy's OperationalError, which their tasks retry.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

from farm.config import redact_url
from farm.errors import ConnectionFailure

#: Where the URL comes from, for the "what to check" part of each message.
URL_SOURCE = "FARM_DB_URL or --db"

#: The pip package that provides a DBAPI module SQLAlchemy could not import.
DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient"}


def shown(url: str) -> str:
    """A URL safe to print, even one that does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return redact_url(url)


def explain(exc: BaseException, url: str) -> str | None:
    """One line for an error met while opening or using ``url``; None when it is not about reaching it."""
    where = shown(url)
    if isinstance(exc, NoSuchModuleError):
        dialect = url.split("://", 1)[0]
        return (
            f"database {where}: unknown database kind {dialect!r}: use sqlite:///PATH or "
            f"postgresql+psycopg://USER@HOST/DB ({URL_SOURCE})"
        )
    if isinstance(exc, ArgumentError):
        return f"database URL {where} is not a SQLAlchemy URL: use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB ({URL_SOURCE})"
    if isinstance(exc, ImportError):
        module = (exc.name or "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module or "its driver")
        return f"database {where}: its driver {module or '?'} is not installed: pip install '{package}'"
    if isinstance(exc, OSError):
        folder = exc.filename or "its folder"
        why = (
            "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror
        )
        return (
            f"database {where}: cannot create the folder {folder} ({why or exc}): "
            f"set FARM_DATA_DIR or {URL_SOURCE} to a writable place"
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        return _unreachable(str(getattr(exc, "orig", exc)), url, where)
    return None


def _unreachable(message: str, url: str, where: str) -> str:
    """Sort the driver's message into what the operator should check."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    host = f"{parsed.host or 'localhost'}:{parsed.port or 5432}" if parsed is not None else "the server"
    first = message.strip().splitlines()[0] if message.strip() else "no reason given"
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        if "unable to open database file" in message:
            return (
                f"database {where}: cannot open the SQLite file {parsed.database}: check that its folder "
                f"exists and is writable (FARM_DATA_DIR or {URL_SOURCE})"
            )
        return f"database {where}: {first}"
    checks: list[tuple[str, str]] = [
        (
            r"connection refused",
            f"connection refused at {host}: is PostgreSQL running there and listening on TCP?",
        ),
        (
            r"failed to resolve host|could not translate host name|name or service not known|nodename nor servname",
            f"unknown host {parsed.host if parsed is not None else '?'}: check the host name in {URL_SOURCE}",
        ),
        (
            r"password authentication failed|authentication failed|no password supplied|no pg_hba\.conf entry",
            f"authentication failed for user {parsed.username if parsed is not None else '?'}: check the user "
            f"and password in {URL_SOURCE} (and the server's pg_hba.conf)",
        ),
        (
            r'role "[^"]*" does not exist',
            f"user {parsed.username if parsed is not None else '?'} does not exist on {host}: "
            f"check the user in {URL_SOURCE}",
        ),
        (
            r'database "[^"]*" does not exist',
            f"database {parsed.database if parsed is not None else '?'} does not exist on {host}: create it "
            f"(createdb) or fix {URL_SOURCE}",
        ),
        (
            r"timeout expired|timed out",
            f"no answer from {host} in time: check the host, the port and any firewall between",
        ),
    ]
    for pattern, reason in checks:
        if re.search(pattern, message, re.IGNORECASE):
            return f"cannot reach the database {where}: {reason}"
    return f"cannot reach the database {where}: {first}"


def failure(exc: BaseException, url: str) -> ConnectionFailure | None:
    """The ConnectionFailure to raise in place of ``exc``, or None to let it through."""
    line = explain(exc, url)
    return ConnectionFailure(line) if line is not None else None
