"""Cron expressions: parsed by celery's crontab (the same object beat checks), walked minute-exactly here.

Celery's crontab tells beat whether an entry is due; run-due and the fire task also need *which* slot is
due (the latest one at or before now), which crontab does not say. These helpers walk its parsed sets a day
at a time, with celery's rules: every field must match (day of month AND day of week), Sunday is 0, and
times are UTC (the app's timezone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from celery.schedules import crontab

#: The five fields, in the order a cron line gives them: (crontab argument, name, what it takes).
FIELDS = (
    ("minute", "minute", "0-59"),
    ("hour", "hour", "0-23"),
    ("day_of_month", "day of month", "1-31"),
    ("month_of_year", "month", "1-12"),
    ("day_of_week", "day of week", "0-6 (0 is Sunday) or sun-sat"),
)
#: How far back or ahead a slot is looked for: 8 years covers the rarest real cron (29 February on a Monday
#: is rarer, and refused as never firing).
HORIZON_DAYS = 8 * 366


class CronError(ValueError):
    """A cron line that cannot be used; the message names the field."""


def parse_cron(text: str) -> crontab:
    """Five space-separated fields (``0 2 * * *``), each checked on its own so the error names it."""
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise CronError(
            f"{text!r} has {len(parts)} fields; a cron line has 5: minute hour day-of-month month day-of-week"
        )
    for raw, (argument, name, takes) in zip(parts, FIELDS, strict=True):
        try:
            crontab(**{argument: raw})
        except Exception as exc:  # celery raises ValueError or its ParseException, by the kind of mistake
            why = str(exc).rstrip(".")
            if "weekday" in why and argument != "day_of_week":  # celery's word for any name it cannot read
                why = "not a number"
            raise CronError(f"field {name} {raw!r} is not valid ({why}); it takes {takes}") from None
    try:
        cron = crontab(*parts[:2], day_of_month=parts[2], month_of_year=parts[3], day_of_week=parts[4])
    except ValueError as exc:  # a day that no month in the line has (30 February)
        raise CronError(f"{text!r}: {exc}") from None
    if next_slot(cron, datetime.now(UTC)) is None:
        raise CronError(f"{text!r} never fires (no such day within {HORIZON_DAYS // 366} years)")
    return cron


def cron_text(cron: crontab) -> str:
    """The line as given (celery keeps the original strings)."""
    return " ".join(
        str(getattr(cron, f"_orig_{arg}"))
        for arg in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    )


def minute_of(at: datetime) -> datetime:
    """``at`` in UTC, cut to the minute: what a slot is. A naive time is taken as UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)


def _runs_on(cron: crontab, day: date) -> bool:
    return (
        day.month in cron.month_of_year
        and day.day in cron.day_of_month
        and day.isoweekday() % 7 in cron.day_of_week
    )


def latest_slot(cron: crontab, at: datetime) -> datetime | None:
    """The last slot at or before ``at`` (None if there is none within the horizon)."""
    at = minute_of(at)
    day = at.date()
    for _ in range(HORIZON_DAYS):
        if _runs_on(cron, day):
            for hour in sorted(cron.hour, reverse=True):
                for minute in sorted(cron.minute, reverse=True):
                    slot = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if slot <= at:
                        return slot
        day -= timedelta(days=1)
    return None


def next_slot(cron: crontab, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (None if there is none within the horizon)."""
    after = minute_of(after)
    day = after.date()
    for _ in range(HORIZON_DAYS):
        if _runs_on(cron, day):
            for hour in sorted(cron.hour):
                for minute in sorted(cron.minute):
                    slot = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if slot > after:
                        return slot
        day += timedelta(days=1)
    return None


def slots_between(cron: crontab, since: datetime, until: datetime, limit: int = 1000) -> int:
    """How many slots fall in (since, until], counted up to ``limit`` (a per-minute cron off for a month
    has 43,200: the caller only says "more than")."""
    count, at = 0, since
    while count < limit:
        slot = next_slot(cron, at)
        if slot is None or slot > minute_of(until):
            break
        count, at = count + 1, slot
    return count
