"""The one Celery app. No broker configured: tasks run in-process (eager), same code path."""

from __future__ import annotations

from celery import Celery

from farm.config import load_settings
from farm.inventory import load_inventory
from farm.queues import (
    ALERTS_TASK,
    COMPILE_QUEUE,
    COMPILE_TASK,
    CONTROL_QUEUE,
    RECONCILE_TASK,
    SCHEDULE_TASK,
    declared_queues,
)

ALERTS_TICK_S = 60.0
RUN_SOFT_LIMIT_S = 1800
RUN_HARD_LIMIT_S = 1900
COMPILE_SOFT_LIMIT_S = 3600
COMPILE_HARD_LIMIT_S = 3700


app = Celery("farm", include=["farm.workers.tasks"])


def configure(celery_app: Celery = app) -> Celery:
    """Apply the current settings (env); called again when the CLI or a test changes them."""
    settings = load_settings()
    inventory = load_inventory(settings.inventory_dir)
    reconcile_s = settings.reconcile_s
    celery_app.conf.update(
        broker_url=settings.broker_url or "memory://localhost//",  # unused: eager mode publishes nothing
        task_always_eager=settings.embedded,
        task_eager_propagates=False,
        task_ignore_result=True,  # the results DB is the source of truth, not a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=declared_queues(list(inventory.board_types), [b.name for b in inventory.boards]),
        task_create_missing_queues=False,
        task_default_queue=COMPILE_QUEUE,
        task_routes={
            COMPILE_TASK: {"queue": COMPILE_QUEUE},
            RECONCILE_TASK: {"queue": CONTROL_QUEUE},
            SCHEDULE_TASK: {"queue": CONTROL_QUEUE},
            ALERTS_TASK: {"queue": CONTROL_QUEUE},
        },
        # The reconciler (farm/reconciler.py), run by Celery beat: `farm beat`, `farm worker --beat`, or the
        # control worker `farm fleet up` starts. A run that outlives its period is dropped, not queued up.
        beat_schedule={
            "farm-reconcile": {
                "task": RECONCILE_TASK,
                "schedule": reconcile_s,
                "options": {"queue": CONTROL_QUEUE, "expires": reconcile_s},
            },
            # Regression alerts: decide finished confirmations, resolve, deliver (retries with backoff).
            "farm-alerts": {
                "task": ALERTS_TASK,
                "schedule": ALERTS_TICK_S,
                "options": {"queue": CONTROL_QUEUE, "expires": ALERTS_TICK_S},
            },
        },
        # Beat also reads the schedules table (farm/schedules/beat.py) and merges it with beat_schedule.
        beat_scheduler="farm.schedules.beat:DatabaseScheduler",
        task_soft_time_limit=RUN_SOFT_LIMIT_S,
        task_time_limit=RUN_HARD_LIMIT_S,
        # Redis redelivers unacked messages after this long; it must outlast the hard limit.
        # A job of a worker killed outright comes back to the queue after this long.
        # kombu looks for such messages every unacked_restore_interval x unacked_restore_throttle seconds
        # (10 x 10 by default: up to 100 s late); every ~10 s (at most a tenth of the timeout) instead, a
        # cheap scan of the unacked index.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout_s // 10))),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return celery_app


configure()
