"""Result sinks: the post-store hook. Each sink sees every run once it is committed, and may ask for
follow-up jobs (an alert scan, a confirmation run), which the scheduler publishes with the rest.

Registered like the agent's backends: name -> "module:Class" (module relative to this package), imported
when first used. Adding a sink is one module here plus one line in :data:`SINKS`. Delivery is
at-least-once (a redelivered job passes through the hook again), so a sink must be idempotent per run id.
A sink that fails is logged and skipped: the result is already stored and is never lost over a sink.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from farm.queues import Publish
from farm.sinks.base import ResultSink, StoredRun, load_stored_run

log = logging.getLogger(__name__)

#: name -> "module:Class".
SINKS: dict[str, str] = {
    "log": "log:LogSink",
    "alerts": "alerts:AlertSink",
}

_extra: dict[str, Callable[[], ResultSink]] = {}  # registered at run time (tests, plug-ins)

__all__ = ["SINKS", "ResultSink", "StoredRun", "active", "register", "stored", "unregister"]


def register(name: str, factory: Callable[[], ResultSink]) -> None:
    """Add a sink from outside this package (a plug-in, a test)."""
    _extra[name] = factory


def unregister(name: str) -> None:
    _extra.pop(name, None)


def active() -> list[ResultSink]:
    """One instance of every registered sink, in registration order."""
    out: list[ResultSink] = []
    for ref in SINKS.values():
        module_name, _, class_name = ref.partition(":")
        module = importlib.import_module(f".{module_name}", __name__)
        out.append(getattr(module, class_name)())
    out += [factory() for factory in _extra.values()]
    return out


def stored(db_url: str, run_id: int) -> list[Publish]:
    """Tell every sink that run ``run_id`` was stored; collect the follow-up work they ask for."""
    run = load_stored_run(db_url, run_id)
    if run is None:
        return []
    follow: list[Publish] = []
    for sink in active():
        try:
            follow += sink.stored(run)
        except Exception:  # a sink never loses or blocks a stored result
            log.exception("result sink %s failed on run %s", sink.name, run_id)
    return follow
