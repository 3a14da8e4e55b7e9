"""The dashboard's only way to the results database: farm query functions run in one session each.

A database that cannot be read (unreachable, behind on migrations) becomes a clear message on the page
and stops it; nothing here ever shows a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from farm.config import load_settings
from farm.db.migrate import ensure_schema
from farm.db.session import redact, session_scope
from farm.errors import FarmError

T = TypeVar("T")


def db_url() -> str:
    """FARM_DB_URL (set by `farm dashboard --db URL`), else the embedded SQLite database."""
    return load_settings().db_url


@st.cache_resource(show_spinner=False)
def _schema_ready(url: str) -> bool:
    ensure_schema(url)  # creates the schema on a brand-new empty database, refuses an old one
    return True


def fetch(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(session, *args, **kwargs) in one read transaction."""
    url = db_url()
    try:
        _schema_ready(url)
        with session_scope(url) as s:
            return fn(s, *args, **kwargs)
    except FarmError as exc:
        st.error(f"The results database cannot be used: {exc}")
        st.stop()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        st.error(f"The results database {redact(url)} cannot be read ({type(exc).__name__}): {reason}")
        st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def inventory() -> tuple[Any, str | None]:
    """The inventory `farm fleet list` reads (the catalog and the lab file: FARM_LAB, default local.yaml),
    or None and why it cannot be read (a FARM_LAB whose file `farm lab down` removed, a malformed file)."""
    from farm.inventory import load_inventory

    settings = load_settings()
    try:
        return load_inventory(settings.inventory_dir), None
    except FarmError as exc:
        return None, str(exc)


def virtual_lab_file() -> str | None:
    """The running virtual lab's lab file when the dashboard's inventory is another one (FARM_LAB not set
    to it): its boards are then not the dashboard's, as they are not `farm fleet list`'s."""
    from farm.inventory import lab_path
    from farm.lab.labfile import lab_file

    settings = load_settings()
    path = lab_file(settings)
    if not path.is_file():
        return None
    if lab_path(settings.inventory_dir).resolve() == path.resolve():
        return None
    return str(path)
