"""A worker host: one `farm worker --board A --board B ...` process driving several boards.

One worker process costs ~180 MB, so a lab of a hundred boards cannot give each its own. A worker host runs
Celery's threads pool with one thread per board (a run job waits on SSH, not on the CPU), listens on each
board's own queue, and runs one :class:`~farm.fleet.keeper.BoardKeeper` per board. The boards of one type
share their type's run queue, so the keepers' "take jobs" / "take none" are counted per queue
(:class:`QueueConsumers`): the host consumes ``run.<type>`` while at least one of its boards of that type
is healthy and usable, and cancels it only when none is. A task thread that sees a board fail tells the
host (:func:`current`), which stops only that board's share, never the whole host's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from farm.config import Settings
from farm.fleet import states
from farm.fleet.keeper import BoardKeeper
from farm.inventory import Inventory
from farm.queues import run_queue

log = logging.getLogger(__name__)


class QueueConsumers:
    """Which run queue each board of this host wants to take jobs from, and the consumers that follows.

    Every change is said under one lock, so two keepers (or a keeper and a task thread) can never leave a
    queue consumed that no board wants, or cancelled while one does."""

    def __init__(self, consume: Callable[[str], None], cancel: Callable[[str], None]) -> None:
        self._consume, self._cancel = consume, cancel
        self._wants: dict[str, str] = {}  # board -> the queue it takes jobs from
        self._lock = threading.Lock()

    def set(self, board: str, queue: str | None) -> None:
        """``board`` takes jobs from ``queue`` now (None: from none). Said every keeper round, so the
        queue's consumer is said again each time (a consumer lost in between comes back)."""
        with self._lock:
            before = self._wants.pop(board, None)
            if queue is not None:
                self._wants[board] = queue
            for q in dict.fromkeys(q for q in (before, queue) if q is not None):
                (self._consume if self.wanted(q) else self._cancel)(q)

    def wanted(self, queue: str) -> frozenset[str]:
        """The boards that want ``queue`` consumed (empty: cancelled)."""
        return frozenset(b for b, q in self._wants.items() if q == queue)


class WorkerHost:
    """The boards one worker process drives: a keeper each, their shared run queues counted."""

    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        boards: Sequence[str],
        consume: Callable[[str], None],
        cancel: Callable[[str], None],
    ) -> None:
        self.db_url = settings.db_url
        self.consumers = QueueConsumers(consume, cancel)
        self.keepers = {
            name: BoardKeeper(
                settings,
                inventory,
                name,
                consume=lambda name=name: self._take_jobs(name, True),
                stop_consuming=lambda name=name: self._take_jobs(name, False),
            )
            for name in boards
        }

    def _take_jobs(self, board: str, on: bool) -> None:
        """A keeper's verdict, turned into its board's share of its type's queue (the type as the keeper's
        inventory says now: a board the lab moved to another type moves queue)."""
        described = self.keepers[board].board
        self.consumers.set(board, run_queue(described.type) if on and described is not None else None)

    def taking_jobs(self, board: str) -> bool:
        """Whether the board's keeper lets it take jobs now (its last check passed and it is usable): a
        job of the queue another board of the host holds open never lands on a board that failed its
        check, or that no check has passed yet."""
        keeper = self.keepers.get(board)
        return keeper is not None and keeper.consuming

    def start(self, node: str) -> None:
        """Each board is recorded as driven by ``node`` and its keeper starts."""
        for name, keeper in self.keepers.items():
            states.set_worker(self.db_url, name, node)
            keeper.start()

    def stop(self) -> None:
        for name, keeper in self.keepers.items():
            keeper.stop()
            states.set_worker(self.db_url, name, None)

    def drop_unusable(self) -> list[str]:
        """Stop the share of every board of this host that may not take jobs now (a task just saw it go
        bad, or found it drained): the other boards keep their type's queue. Returns those stopped; the
        keepers bring them back after a passing check."""
        stopped = []
        for name, keeper in self.keepers.items():
            if states.get_state(self.db_url, name).state not in states.USABLE:
                self.consumers.set(name, None)
                keeper.consuming = False
                stopped.append(name)
        if stopped:
            log.info("boards %s take no jobs until their keeper checks them", ", ".join(stopped))
        return stopped


_current: WorkerHost | None = None


def install(host: WorkerHost | None) -> None:
    """Make ``host`` the one this process's task threads report to (None: a plain or single-board worker,
    whose pool processes stop consumers by broadcast instead)."""
    global _current
    _current = host


def current() -> WorkerHost | None:
    return _current
