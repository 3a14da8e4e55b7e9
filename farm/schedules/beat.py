"""The Celery beat scheduler of the farm: the app's own ``beat_schedule`` (the reconciler) plus one entry
per enabled row of the schedules table, re-read every ``FARM_SCHEDULE_REFRESH_S`` (30 s), so ``farm
schedule add`` and ``remove`` take effect without restarting beat.

Beat decides *when* (celery's crontab against the entry's last run); the message carries *which slot*
(the latest one at or before the moment it is sent), so a message that waits in the queue still submits
the slot it was sent for, and :func:`farm.schedules.fire.fire` submits each slot once. An entry's last
run starts from the schedule's last submitted slot in the database: a beat that was down when a slot
passed sends that slot (only the latest one) as soon as it starts.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from sqlalchemy import select

from farm.config import load_settings
from farm.db.models import ScheduleRow
from farm.db.session import dispose_engines, session_scope
from farm.queues import CONTROL_QUEUE, SCHEDULE_TASK
from farm.schedules.cron import CronError, latest_slot, parse_cron
from farm.schedules.store import baseline

log = logging.getLogger(__name__)

ENTRY_PREFIX = "farm-schedule:"


class DatabaseScheduler(Scheduler):
    """``beat_scheduler`` of the farm's app (`farm beat`, `farm worker --beat`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = load_settings()
        self.db_url = settings.db_url
        self.refresh_s = settings.schedule_refresh_s
        self._refreshed_at: float | None = None
        super().__init__(*args, **kwargs)
        # beat sleeps at most this long between ticks: a schedule added meanwhile must not wait 5 minutes
        self.max_interval = min(self.max_interval, self.refresh_s)

    def setup_schedule(self) -> None:
        dispose_engines(close=False)  # an embedded beat is forked from a worker that used the database
        self.install_default_entries(self.data)
        self.refresh()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self._refreshed_at is None or time.monotonic() - self._refreshed_at >= self.refresh_s:
            self.refresh()
        return super().tick(*args, **kwargs)

    def refresh(self) -> None:
        """Re-read the schedules table and merge it with the app's beat_schedule. A database that does not
        answer keeps the entries beat has (logged): beat and the reconciler must not stop for it."""
        self._refreshed_at = time.monotonic()
        try:
            rows = self._rows()
        except Exception:  # any database failure: tried again at the next refresh
            log.exception("beat: cannot read the schedules table; keeping the schedules it had")
            # the app's own entries (the reconciler, the alerts tick) run whatever the table says
            missing = {k: v for k, v in (self.app.conf.beat_schedule or {}).items() if k not in self.schedule}
            if missing:
                self.update_from_dict(missing)
                self._heap = None
            return
        entries: dict[str, dict[str, Any]] = dict(self.app.conf.beat_schedule or {})
        since: dict[str, datetime] = {}
        for name, cron, start in rows:
            try:
                schedule = parse_cron(cron)
            except CronError as exc:  # only a row written by hand: the CLI validates
                log.error("beat: schedule %s skipped: %s", name, exc)
                continue
            schedule.app = self.app  # crontab reads the app's now and timezone (UTC)
            key = ENTRY_PREFIX + name
            entries[key] = {
                "task": SCHEDULE_TASK,
                "schedule": schedule,
                "args": (name,),
                "options": {"queue": CONTROL_QUEUE},
                "last_run_at": start,
            }
            since[key] = start
        self.merge_inplace(entries)
        for key, start in since.items():  # merge keeps a known entry's last run: never behind the database
            entry = self.schedule[key]
            if entry.last_run_at is None or entry.last_run_at < start:
                entry.last_run_at = start
        self._heap = None  # an entry's schedule or last run may have changed: order them again

    def _rows(self) -> list[tuple[str, str, datetime]]:
        with session_scope(self.db_url) as s:
            rows = s.scalars(select(ScheduleRow).where(ScheduleRow.enabled.is_(True)))
            return [(r.name, r.cron, baseline(r)) for r in rows]

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        """A schedule's message names its slot: the latest one at or before now."""
        if entry.task == SCHEDULE_TASK:
            slot = latest_slot(entry.schedule, self.app.now())
            if slot is None:
                return None
            entry = self.Entry(**{**dict(entry), "kwargs": {"slot": slot.isoformat()}})
            log.info("beat: schedule %s, slot %s", entry.args[0], slot.isoformat())
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
