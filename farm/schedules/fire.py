"""Submitting a schedule's sweep for one cron slot, exactly once: the one function Celery's
``farm.schedule.fire`` task and ``farm schedule run-due`` share.

Once per (schedule, slot) is the database's to enforce: the sweep row carries its schedule's name and
slot under a unique index, and is written in the same transaction as its jobs. A second firing of the
slot (beat's message duplicated, a task redelivered after its worker died, run-due and beat both at
work) finds the sweep there, or hits the index and writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from farm.config import Settings
from farm.db.models import ScheduleRow, SweepRow
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.inventory import load_inventory
from farm.schedules.cron import latest_slot, minute_of, parse_cron, slots_between
from farm.schedules.store import ScheduleNotFound, baseline
from farm.services.submit import Submitted, submit_loaded
from farm.sweep.labels import SCHEDULE_LABEL, merged
from farm.sweep.load import parse_sweep

log = logging.getLogger(__name__)

#: Missed slots are counted up to this many (then "more than").
MISSED_COUNT_LIMIT = 1000


@dataclass
class Fired:
    """What one firing did: ``outcome`` is submitted, duplicate (the slot's sweep exists) or failed."""

    schedule: str
    slot: datetime
    outcome: str
    sweep_id: str | None = None
    error: str | None = None
    missed: int = 0  # earlier slots skipped since the last one submitted (only the latest runs)
    submitted: Submitted | None = None


def slot_sweep(db_url: str, name: str, slot: datetime) -> str | None:
    """The id of the sweep schedule ``name`` submitted for ``slot``, if any."""
    with session_scope(db_url) as s:
        return s.scalar(
            select(SweepRow.id).where(
                SweepRow.schedule_name == name, SweepRow.schedule_slot == minute_of(slot)
            )
        )


def fire(settings: Settings, name: str, slot: datetime, *, missed: int = 0) -> Fired:
    """Submit schedule ``name``'s sweep for ``slot`` unless that slot has a sweep already. Its labels: the
    sweep file's, then the schedule's, then ``schedule=<name>``. The sweep is validated again (the
    inventory or a model file may have changed since it was added); a sweep that no longer validates is
    recorded as the schedule's ``last_error`` and the slot counts as tried: the next slot tries again."""
    slot = minute_of(slot)
    with session_scope(settings.db_url) as s:
        row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r}")
        text, source, extra = row.sweep_yaml, row.source, dict(row.labels or {})
    existing = slot_sweep(settings.db_url, name, slot)
    if existing is not None:
        _record(settings.db_url, name, slot, sweep_id=existing)
        return Fired(name, slot, "duplicate", sweep_id=existing, missed=missed)
    try:
        inventory = load_inventory(settings.inventory_dir)
        loaded = parse_sweep(text, source, Path(source).parent, inventory, max_jobs=settings.max_jobs)
        labels = merged(loaded.spec.labels, extra, {SCHEDULE_LABEL: name})
        submitted = submit_loaded(settings, loaded, inventory, labels=labels, slot=(name, slot))
    except IntegrityError:
        existing = slot_sweep(settings.db_url, name, slot)
        if existing is None:  # some other constraint: a real error
            raise
        _record(settings.db_url, name, slot, sweep_id=existing)  # lost the race to a concurrent firing
        return Fired(name, slot, "duplicate", sweep_id=existing, missed=missed)
    except FarmError as exc:
        _record(settings.db_url, name, slot, error=str(exc))
        log.error("schedule %s, slot %s: %s", name, slot.isoformat(), exc)
        return Fired(name, slot, "failed", error=str(exc), missed=missed)
    _record(settings.db_url, name, slot, sweep_id=submitted.sweep_id)
    log.info("schedule %s, slot %s: submitted sweep %s", name, slot.isoformat(), submitted.sweep_id)
    return Fired(name, slot, "submitted", sweep_id=submitted.sweep_id, missed=missed, submitted=submitted)


def _record(
    db_url: str, name: str, slot: datetime, *, sweep_id: str | None = None, error: str | None = None
) -> None:
    """Move the schedule's last slot forward to ``slot`` (never back: a late duplicate of an older slot
    changes nothing) with its sweep or its error."""
    with session_scope(db_url) as s:
        s.execute(
            update(ScheduleRow)
            .where(
                ScheduleRow.name == name,
                or_(ScheduleRow.last_slot_at.is_(None), ScheduleRow.last_slot_at <= slot),
            )
            .values(last_slot_at=slot, last_sweep_id=sweep_id, last_error=error)
        )


def due(db_url: str, now: datetime) -> list[tuple[str, datetime, int]]:
    """(name, slot, missed) for every enabled schedule with a slot after its last one: the latest slot at
    or before ``now`` only, and how many earlier ones it skips."""
    out = []
    with session_scope(db_url) as s:
        rows = list(
            s.scalars(select(ScheduleRow).where(ScheduleRow.enabled.is_(True)).order_by(ScheduleRow.name))
        )
        for row in rows:
            cron = parse_cron(row.cron)
            since = baseline(row)
            slot = latest_slot(cron, now)
            if slot is not None and slot > since:
                missed = slots_between(cron, since, slot, limit=MISSED_COUNT_LIMIT) - 1
                out.append((row.name, slot, missed))
    return out


def run_due(settings: Settings, now: datetime) -> list[Fired]:
    """Fire every schedule that is due at ``now``, each once (``farm schedule run-due``)."""
    return [fire(settings, name, slot, missed=missed) for name, slot, missed in due(settings.db_url, now)]


def fire_message(settings: Settings, name: str, slot: str | None) -> str:
    """The Celery task's body: beat's message names its slot (ISO); one sent by hand without a slot fires
    the latest at or before now. A schedule removed after beat sent the message submits nothing."""
    try:
        if slot is not None:
            at = datetime.fromisoformat(slot)
        else:
            with session_scope(settings.db_url) as s:
                cron = s.scalar(select(ScheduleRow.cron).where(ScheduleRow.name == name))
            if cron is None:
                raise ScheduleNotFound(name)
            found = latest_slot(parse_cron(cron), datetime.now(UTC))
            if found is None:
                return "nothing"
            at = found
        return fire(settings, name, at).outcome
    except ScheduleNotFound:
        log.warning("schedule %s was removed: slot %s not submitted", name, slot)
        return "removed"
