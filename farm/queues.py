"""Every Celery queue and task name, declared in one place (task_create_missing_queues is off), and the
message that goes on them (:class:`Publish`)."""

from __future__ import annotations

from dataclasses import dataclass

from kombu import Queue

from farm.targets import host_type

COMPILE_QUEUE = "compile"
CONTROL_QUEUE = "control"  # the farm's own housekeeping (the reconciler), never behind a long job
COMPILE_TASK = "farm.compile"
RUN_TASK = "farm.run"
RECONCILE_TASK = "farm.reconcile"
ALERTS_TASK = "farm.alerts.tick"  # regression alerts' periodic pass (farm/alerts/service.py), control queue
SCHEDULE_TASK = "farm.schedule.fire"  # a scheduled sweep's slot (farm/schedules/), on the control queue


def run_queue(board_type: str) -> str:
    """Run jobs go to one queue per board type; any board of that type may take the next job (a board's
    own CPU, ``pynq-z2:cpu``, to its board type's queue: the same boards run it)."""
    return f"run.{host_type(board_type)}"


def board_queue(board: str) -> str:
    """Each board's worker always listens here, even while it does not take run jobs (bad, drained)."""
    return f"board.{board}"


def board_of_queue(queue: str | None) -> str | None:
    """The board whose own queue this is (None for any other queue): a job delivered there is for it."""
    prefix = board_queue("")
    return queue[len(prefix) :] if queue and queue.startswith(prefix) else None


def declared_queues(board_types: list[str], boards: list[str]) -> tuple[Queue, ...]:
    return (
        Queue(COMPILE_QUEUE),
        Queue(CONTROL_QUEUE),
        *(Queue(run_queue(t)) for t in sorted(board_types)),
        *(Queue(board_queue(b)) for b in sorted(boards)),
    )


@dataclass(frozen=True)
class Publish:
    """One message to put on a queue: run ``task`` for ``job_id`` on ``queue`` (after ``countdown`` s)."""

    task: str
    job_id: int
    queue: str
    countdown: float | None = None
