"""Putting :class:`~farm.queues.Publish` items on their queues, by task name.

The tasks are found through the Celery app's registry (the app names ``workers.tasks`` in its ``include``),
the way ``send_task`` works, so farm code publishes without importing the task module. In embedded mode
(``task_always_eager``) ``apply_async`` runs the task right here, in this thread.
"""

from __future__ import annotations

from collections.abc import Iterable

from farm.celery_app import app
from farm.queues import Publish


def publish(items: Iterable[Publish]) -> None:
    items = list(items)
    if not items:
        return
    app.loader.import_default_modules()  # registers the tasks of app.conf.include (once per process)
    for item in items:
        app.tasks[item.task].apply_async(args=[item.job_id], queue=item.queue, countdown=item.countdown)
