"""Submitting a sweep: validate everything first, then write the sweep and its jobs, then enqueue."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from farm.config import Settings
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.inventory import Inventory, load_inventory
from farm.publish import publish
from farm.queries.sweeps import sweep_summary
from farm.queues import Publish
from farm.reconciler import reconcile
from farm.scheduler import compiles
from farm.services.sweeps import create_sweep, roll_up
from farm.sweep.labels import merged
from farm.sweep.load import LoadedSweep, load_sweep

log = logging.getLogger(__name__)

MAX_EMBEDDED_RERUNS = 100  # a runner restarted this often has a bug to show, not to hide


@dataclass
class Submitted:
    sweep_id: str
    warnings: list[str] = field(default_factory=list)
    runner: threading.Thread | None = None  # embedded mode: the in-process execution
    errors: list[BaseException] = field(default_factory=list)
    unpublished: int = 0  # jobs the broker did not take at submit (the reconciler publishes them later)
    reruns: int = 0  # embedded: how often the reconciler restarted the runner


def submit_sweep(
    settings: Settings,
    path: str | Path,
    *,
    max_jobs: int | None = None,
    labels: dict[str, str] | None = None,
) -> Submitted:
    """Raises SweepError (nothing written) for bad input, a sweep of more than ``max_jobs`` jobs
    (default: FARM_MAX_JOBS) included. ``labels`` (``--label``) override the file's on the same key.
    Embedded: runs the jobs in a thread of this process."""
    inventory = load_inventory(settings.inventory_dir)
    loaded = load_sweep(path, inventory, max_jobs=max_jobs or settings.max_jobs)
    return submit_loaded(settings, loaded, inventory, labels=merged(loaded.spec.labels, labels))


def submit_loaded(
    settings: Settings,
    loaded: LoadedSweep,
    inventory: Inventory,
    *,
    labels: dict[str, str],
    slot: tuple[str, datetime] | None = None,
) -> Submitted:
    """Write a validated sweep and start it: published to the broker, or run on a thread here (embedded).
    ``slot``: see :func:`farm.services.sweeps.create_sweep` (IntegrityError when already submitted)."""
    sweep_id, compile_ids = create_sweep(settings.db_url, loaded, inventory, labels=labels, slot=slot)
    sub = Submitted(sweep_id, warnings=list(loaded.warnings))
    if settings.embedded:
        _run_embedded(settings, sub, compiles(settings.db_url, compile_ids))
    else:
        sub.unpublished = publish(settings.db_url, compiles(settings.db_url, compile_ids))
    return sub


def _alerts_pass(settings: Settings) -> None:
    """An embedded farm has no Celery beat: when its sweep ends, what the beat's alerts tick does
    (decide confirmations, resolve, deliver the sweep's grouped notification) happens here."""
    from farm.alerts import service

    try:
        service.tick(settings)
    except Exception:  # the sweep's results are stored: alerts never fail a submit (`farm alerts deliver`)
        log.exception("alerts pass after the sweep failed (`farm alerts deliver` retries)")


def _run_embedded(settings: Settings, sub: Submitted, items: list[Publish]) -> None:
    """Run ``items`` (and all that follows them) on a thread of this process: the embedded runner."""

    def run() -> None:
        try:
            publish(settings.db_url, items)
        except BaseException as exc:  # surfaced by wait_for()
            sub.errors.append(exc)

    sub.runner = threading.Thread(target=run, name=f"sweep-{sub.sweep_id[:8]}", daemon=True)
    sub.runner.start()


def wait_for(
    settings: Settings, sub: Submitted, on_progress: Callable[[dict], None], poll_s: float = 0.5
) -> dict:
    """Poll the database until every job of the sweep is terminal; report progress as it goes."""
    while True:
        with session_scope(settings.db_url) as s:
            summary = sweep_summary(s, sub.sweep_id)
        assert summary is not None
        on_progress(summary)
        if summary["state"] != "running":
            if sub.runner is not None and sub.runner.is_alive():
                # the sweep is done, but work it asked for (an alert's confirmation runs) still runs on
                # this process's runner: a CLI that returned now would kill it half way
                time.sleep(poll_s)
                continue
            if sub.runner is not None:
                _alerts_pass(settings)
            return summary
        if sub.runner is not None and not sub.runner.is_alive():
            if sub.errors:
                raise sub.errors[0]
            # The embedded reconciler: the runner is done, so no message of this sweep is live; whatever is
            # still queued, or was left running by a process that is gone, runs again here.
            report = reconcile(settings.db_url, sweep_id=sub.sweep_id, live_messages=set(), grace_s=0)
            if report.publish and sub.reruns < MAX_EMBEDDED_RERUNS:
                sub.reruns += 1
                _run_embedded(settings, sub, report.publish)
                continue
            state = roll_up(settings.db_url, sub.sweep_id)
            if state == "running":  # in-process execution ended with jobs left: never hang on that
                stuck = summary["jobs_total"] - summary["jobs_finished"]
                raise FarmError(
                    f"sweep {sub.sweep_id}: in-process execution ended with {stuck} jobs unfinished"
                )
            continue
        time.sleep(poll_s)
