"""Engines and sessions. SQLite gets WAL and a busy timeout so a worker and the CLI can share the file."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from farm.db.errors import failure, shown

T = TypeVar("T")

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


#: A PostgreSQL server that does not answer (a dead host, a firewall that drops) fails after this long
#: instead of the OS's TCP timeout (minutes); a URL's own ?connect_timeout= wins.
PG_CONNECT_TIMEOUT_S = 10


def get_engine(url: str) -> Engine:
    """One engine (connection pool) per URL per process.

    A URL that cannot give an engine (no such dialect, driver not installed, a SQLite folder that cannot
    be created) raises ConnectionFailure with what to fix: that never gets better by retrying."""
    engine = _ENGINES.get(url)
    if engine is None:
        with _ENGINES_LOCK:  # embedded mode opens the database from two threads at once: one pool, not two
            engine = _ENGINES.get(url)
            if engine is None:
                engine = _ENGINES[url] = _opened(url, lambda: _make_engine(url))
    return engine


def schema_engine(url: str) -> Engine:
    """A separate engine for schema changes, whose transactions cover DDL and lock out other writers.

    On SQLite, Python's sqlite3 module runs DDL outside any transaction (it only opens one before DML), so
    a migration that fails half-way would leave its tables behind; SQLAlchemy's documented workaround
    turns the module's own transaction handling off and emits BEGIN itself. IMMEDIATE takes the write lock
    at once, so concurrent first uses of one file migrate it one after another. The caller disposes it."""
    if _opened(url, lambda: make_url(url)).get_backend_name() != "sqlite":
        return get_engine(url)
    engine = _opened(url, lambda: _sqlite_engine(url, poolclass=NullPool))

    @event.listens_for(engine, "connect")
    def _own_transactions(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn) -> None:  # pragma: no cover - trivial
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _opened(url: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except (ImportError, OSError, ArgumentError) as exc:  # NoSuchModuleError is an ArgumentError
        translated = failure(exc, url)
        if translated is None:
            raise
        raise translated from exc


def dispose_engines(close: bool = True) -> None:
    """Drop every pooled connection. In a forked child pass close=False: the parent's connections must
    be left alone, and the child must never use them (two processes on one PostgreSQL connection)."""
    for engine in _ENGINES.values():
        engine.dispose(close=close)
    _ENGINES.clear()


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL itself may meet a lock
        cur.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit no longer waits for an fsync (checkpoints do). A crash of any farm process
        # loses nothing; only an OS crash or power cut may lose the last commits, never consistency.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def redact(url: str) -> str:
    """A DB URL safe to print or log (no password), even one that does not parse."""
    return shown(url)
