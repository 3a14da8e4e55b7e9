"""The schedules table: add (or replace), list, remove, enable. Every sweep is validated when it is added,
and its text kept: the host that fires it needs no file (model files and datasets it names must still be
reachable at their absolute paths there, as for any worker)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from farm.config import Settings
from farm.db.models import ScheduleRow
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.inventory import load_inventory
from farm.queries.common import iso
from farm.schedules.cron import cron_text, latest_slot, minute_of, next_slot, parse_cron
from farm.sweep.load import load_sweep
from farm.sweep.schema import NAME


class ScheduleNotFound(FarmError):
    pass


@dataclass(frozen=True)
class Added:
    name: str
    replaced: bool
    next_slot: datetime | None
    warnings: list[str]


def add_schedule(
    settings: Settings,
    sweep_file: str | Path,
    cron: str,
    *,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    replace: bool = False,
) -> Added:
    """Validate the sweep and the cron and store the schedule. A name that exists is refused unless
    ``replace``: then its sweep, cron and labels change and its history (last slot, last sweep) stays, so
    replacing never fires a slot that was already submitted. CronError / SweepError for bad input."""
    parsed = parse_cron(cron)
    loaded = load_sweep(sweep_file, load_inventory(settings.inventory_dir), max_jobs=settings.max_jobs)
    name = name or loaded.spec.name
    if not re.fullmatch(NAME, name):
        raise FarmError(
            f"schedule name {name!r} is not allowed: a letter or digit, then up to 63 of A-Z a-z 0-9 _ . -"
        )
    source = str(Path(sweep_file).resolve())
    with session_scope(settings.db_url) as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
        if row is not None and not replace:
            raise FarmError(
                f"schedule {name!r} exists ({row.cron}, {row.source}): `farm schedule add --replace` updates "
                "it, `farm schedule remove` deletes it"
            )
        existed = row is not None
        if row is None:
            row = ScheduleRow(name=name, enabled=True)
            s.add(row)
        row.cron = cron_text(parsed)
        row.sweep_yaml = loaded.text
        row.source = source
        row.labels = dict(sorted((labels or {}).items()))
        row.last_error = None
    return Added(name, existed, next_slot(parsed, datetime.now(UTC)), list(loaded.warnings))


def remove_schedule(db_url: str, name: str) -> None:
    """Sweeps it already submitted stay (with their labels); beat drops it at its next refresh."""
    with session_scope(db_url) as s:
        if s.execute(delete(ScheduleRow).where(ScheduleRow.name == name)).rowcount == 0:
            raise ScheduleNotFound(f"no schedule named {name!r} (`farm schedule list` shows them)")


def set_enabled(db_url: str, name: str, enabled: bool) -> None:
    with session_scope(db_url) as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r} (`farm schedule list` shows them)")
        row.enabled = enabled


def baseline(row: ScheduleRow) -> datetime:
    """Slots after this are due: the last one submitted, or the schedule's creation."""
    return minute_of(row.last_slot_at) if row.last_slot_at else _aware(row.created_at)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back UTC without its zone


def describe(row: ScheduleRow, now: datetime, *, with_yaml: bool = False) -> dict[str, Any]:
    """A schedule as the CLI shows it: what it runs, when it ran, when it runs next."""
    cron = parse_cron(row.cron)
    latest = latest_slot(cron, now)
    out: dict[str, Any] = {
        "name": row.name,
        "cron": row.cron,
        "enabled": row.enabled,
        "source": row.source,
        "labels": dict(row.labels or {}),
        "created_at": iso(row.created_at),
        "last_slot_at": iso(row.last_slot_at),
        "last_sweep_id": row.last_sweep_id,
        "last_error": row.last_error,
        "due_now": bool(row.enabled and latest is not None and latest > baseline(row)),
        "next_slot": iso(next_slot(cron, now)),
    }
    if with_yaml:
        out["sweep_yaml"] = row.sweep_yaml
    return out


def list_schedules(db_url: str, now: datetime) -> list[dict[str, Any]]:
    with session_scope(db_url) as s:
        return [describe(r, now) for r in s.scalars(select(ScheduleRow).order_by(ScheduleRow.name))]


def get_schedule(db_url: str, name: str, now: datetime) -> dict[str, Any]:
    with session_scope(db_url) as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r} (`farm schedule list` shows them)")
        return describe(row, now, with_yaml=True)
