"""Celery tasks: thin wrappers that call farm.services. Names are explicit (farm.queues)."""

from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from farm.celery_app import COMPILE_HARD_LIMIT_S, COMPILE_SOFT_LIMIT_S, app
from farm.config import load_settings
from farm.errors import InfraError
from farm.queues import COMPILE_TASK, RUN_TASK
from farm.services.compile import run_compile_job
from farm.services.run import run_run_job
from farm.services.sweeps import fail_job

log = logging.getLogger(__name__)

MAX_RETRIES = 3


class FarmTask(Task):
    """Retries infrastructure failures with jittered backoff; anything else fails the job with its reason."""

    autoretry_for = (InfraError, SoftTimeLimitExceeded)
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
        fail_job(load_settings().db_url, job_id, reason)


@app.task(
    name=COMPILE_TASK,
    base=FarmTask,
    bind=True,
    soft_time_limit=COMPILE_SOFT_LIMIT_S,
    time_limit=COMPILE_HARD_LIMIT_S,
)
def compile_task(self: Task, job_id: int) -> str:
    return run_compile_job(load_settings(), job_id)


@app.task(name=RUN_TASK, base=FarmTask, bind=True)
def run_task(self: Task, job_id: int) -> str:
    return run_run_job(load_settings(), job_id)
