"""Putting :class:`~farm.queues.Publish` items on their queues, by task name: the outbox's publisher.

The tasks are found through the Celery app's registry (the app names ``farm.workers.tasks`` in its ``include``),
the way ``send_task`` works, so farm code publishes without importing the task module. In embedded mode
(``task_always_eager``) ``apply_async`` runs the task right here, in this thread.

A job is published only after the transaction that queued it has committed; each message gets an id of its
own (``farm-job-<id>-<random>``), recorded with the job as ``message_id`` and ``published_at`` once the
broker took it. A broker that refuses (down, restarting) leaves the job queued and unpublished: the
reconciler publishes it later, so nothing is lost and nothing here raises over it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import update

from farm.celery_app import app
from farm.db.models import JobRow, utcnow
from farm.db.session import session_scope
from farm.leases import owner
from farm.queues import Publish

log = logging.getLogger(__name__)

#: What a broker that is down or restarting raises while we publish.
BROKER_ERRORS = (KombuError, RedisError, ConnectionError, OSError, TimeoutError)


#: An embedded (eager) "message" lives only in the process that runs it: its id names that process, so the
#: reconciler can tell when it is gone.
EAGER_PREFIX = "eager:"


def message_id(job_id: int) -> str:
    return f"farm-job-{job_id}-{uuid.uuid4().hex[:12]}"


def publish(db_url: str, items: Iterable[Publish]) -> int:
    """Publish every item; returns how many the broker did not take (they stay in the outbox)."""
    items = list(items)
    if not items:
        return 0
    app.loader.import_default_modules()  # registers the tasks of app.conf.include (once per process)
    eager = bool(app.conf.task_always_eager)
    ids = {item.job_id: EAGER_PREFIX + owner() if eager else message_id(item.job_id) for item in items}
    if eager:  # they run right here, one after another: all recorded as published first
        for job_id, mid in ids.items():
            _mark(db_url, job_id, mid)
    refused = 0
    for item in items:
        mid = ids[item.job_id]
        try:
            app.tasks[item.task].apply_async(
                args=[item.job_id], queue=item.queue, countdown=item.countdown, task_id=mid
            )
        except BROKER_ERRORS as exc:
            refused += 1
            log.warning("job %s not published (the reconciler will retry): %s", item.job_id, exc)
            continue
        if not eager:
            _mark(db_url, item.job_id, mid)
    return refused


def _mark(db_url: str, job_id: int, mid: str) -> None:
    with session_scope(db_url) as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(published_at=utcnow(), message_id=mid))
