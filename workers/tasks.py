"""Celery tasks: thin wrappers. Each runs its job's service, then publishes what :mod:`farm.scheduler`
says follows it. Names are explicit (farm.queues); farm code publishes by those names (farm.publish)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from farm import leases, reconciler, scheduler
from farm.broker import farm_messages
from farm.celery_app import COMPILE_HARD_LIMIT_S, COMPILE_SOFT_LIMIT_S, app
from farm.config import Settings, load_settings
from farm.db.session import dispose_engines
from farm.errors import InfraError
from farm.fleet import host
from farm.fleet.transports import drop_inherited
from farm.inventory import load_inventory
from farm.publish import publish
from farm.queues import (
    ALERTS_TASK,
    COMPILE_TASK,
    RECONCILE_TASK,
    RUN_TASK,
    SCHEDULE_TASK,
    board_of_queue,
    run_queue,
)
from farm.schedules.fire import fire_message
from farm.services.run import BoardsBusy, BoardUnavailable, NoHealthyBoard, run_run_job
from farm.workers.compile_job import run_compile_job

log = logging.getLogger(__name__)


@worker_process_init.connect
def _own_connections(**_: object) -> None:
    """A pool process is forked from a worker that already used the database and SSH: start with none."""
    dispose_engines(close=False)
    drop_inherited()


MAX_RETRIES = 3

#: What the task layer retries: infrastructure failures, a soft time limit, the database going away.
RETRIED = (InfraError, SoftTimeLimitExceeded, OperationalError)


class FarmTask(Task):
    """Retries infrastructure failures with jittered backoff; anything else fails the job with its reason."""

    autoretry_for = RETRIED
    max_retries = MAX_RETRIES
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    acks_late = True

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, InfraError):
            reason = f"infrastructure failure after {self.request.retries + 1} attempts: {exc}"
        log.error("job %s failed: %s", job_id, reason)
        fail(load_settings().db_url, job_id, reason)


def run_job(db_url: str, job_id: int, service: Callable[[leases.LeaseLost], str]) -> str:
    """Run a job's service under its lease's heartbeat, then publish what follows it (also after a
    redelivery: the scheduler's decisions are idempotent). The service gets the heartbeat's "lease lost"
    event (set when the job is cancelled or taken back) so it can stop early. A failure that will be
    retried hands the job back first (queued, lease given up), so the retry may run anywhere at once."""
    try:
        with leases.heartbeat(db_url, job_id) as lost:
            state = service(lost)
    except RETRIED:
        leases.hand_back(db_url, job_id, published=True)  # Celery publishes the retry
        raise
    if state != "duplicate":  # another worker's job, or cancelled: what follows is not ours to decide
        publish(db_url, scheduler.after_job(db_url, job_id))
    return state


def fail(db_url: str, job_id: int, reason: str) -> None:
    """A job failed for good: record it and publish what follows (a stability repeat, the roll-up)."""
    publish(db_url, scheduler.failed(db_url, job_id, reason))


@app.task(
    name=COMPILE_TASK,
    base=FarmTask,
    bind=True,
    soft_time_limit=COMPILE_SOFT_LIMIT_S,
    time_limit=COMPILE_HARD_LIMIT_S,
)
def compile_task(self: Task, job_id: int) -> str:
    settings = load_settings()
    return run_job(settings.db_url, job_id, lambda _lost: run_compile_job(settings, job_id))


@app.task(name=RUN_TASK, base=FarmTask, bind=True)
def run_task(self: Task, job_id: int) -> str:
    settings = load_settings()
    queue = self.request.delivery_info.get("routing_key") if self.request.delivery_info else None
    try:
        return run_job(
            settings.db_url,
            job_id,
            lambda lost: run_run_job(settings, job_id, only_board=board_of_queue(queue), cancelled=lost),
        )
    except BoardsBusy as exc:
        # A worker host's boards of the type are all running: back to the queue, no retry spent on it.
        requeue(settings.db_url, job_id)
        log.info("job %s handed back: %s", job_id, exc)
        return "handed-back"
    except BoardUnavailable as exc:
        # This worker's board is drained, bad or retired: stop taking jobs and give this one back.
        stop_taking_jobs(self, settings, queue)
        requeue(settings.db_url, job_id)
        log.info("job %s handed back: %s", job_id, exc)
        return "handed-back"
    except NoHealthyBoard as exc:
        fail(settings.db_url, job_id, str(exc))
        return "failed"
    except InfraError:
        stop_taking_jobs(self, settings, _single_boards_run_queue(settings))
        raise


def stop_taking_jobs(task: Task, settings: Settings, queue: str | None) -> None:
    """A board that went bad or was drained stops taking run jobs (its keeper resumes them). On a worker
    host only that board's share of the queue stops (:mod:`farm.fleet.host`): its other boards keep
    working; a single-board worker's pool process cancels its own consumer."""
    worker_host = host.current()
    if worker_host is not None:
        worker_host.drop_unusable()
    elif len(settings.bound_boards) == 1:
        stop_consuming(task, queue)


def _single_boards_run_queue(settings: Settings) -> str | None:
    """The run queue of a single-board worker's board (None for a worker host or an unbound worker)."""
    bound = settings.bound_boards
    if len(bound) != 1:
        return None
    return run_queue(load_inventory(settings.inventory_dir).board(bound[0]).type)


def stop_consuming(task: Task, queue: str | None) -> None:
    """Cancel this worker's consumer of ``queue`` (a broadcast: the pool process is not the consumer)."""
    if queue and task.request.hostname and not task.request.is_eager:
        task.app.control.cancel_consumer(queue, destination=[task.request.hostname])


def requeue(db_url: str, job_id: int) -> None:
    """Publish the job again for another board of its type; its row stays queued, so nothing is duplicated."""
    publish(db_url, scheduler.republish(db_url, job_id))


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile_task() -> int:
    """Celery beat's periodic pass (farm.reconciler): returns how many problems it found."""
    settings = load_settings()
    report = reconciler.reconcile(settings.db_url, live_messages=farm_messages(settings))
    publish(settings.db_url, report.publish)
    return len(report.findings)


@app.task(
    name=SCHEDULE_TASK,
    ignore_result=True,
    autoretry_for=(OperationalError,),  # the database went away: the slot is tried again, still once
    max_retries=MAX_RETRIES,
    retry_backoff=2,
    retry_jitter=True,
)
def schedule_task(name: str, slot: str | None = None) -> str:
    """A scheduled sweep's slot, sent by beat (farm/schedules/beat.py): submitted once, whatever the number
    of deliveries."""
    return fire_message(load_settings(), name, slot)


@app.task(name=ALERTS_TASK, ignore_result=True)
def alerts_task() -> int:
    """Celery beat's alerts pass (farm.alerts.service.tick): returns how many alerts it opened or resolved."""
    from farm.alerts import service

    settings = load_settings()
    result = service.tick(settings)
    return len(result.opened) + len(result.resolved)
