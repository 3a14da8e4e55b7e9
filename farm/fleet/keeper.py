"""The board keeper: runs beside a board's Celery worker (`farm worker --board NAME`) and decides whether
the worker takes run jobs. It health-checks the board before the first job and then periodically;
a healthy, idle board consumes its type's queue, any other state does not."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from farm.config import Settings
from farm.fleet import states
from farm.fleet.health import check_board
from farm.inventory import Inventory

log = logging.getLogger(__name__)


class BoardKeeper:
    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        board_name: str,
        consume: Callable[[], None],
        stop_consuming: Callable[[], None],
    ) -> None:
        self.settings, self.inventory = settings, inventory
        self.board = inventory.board(board_name)
        self._consume, self._stop_consuming = consume, stop_consuming
        self.consuming = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A board left `running` by a worker that died outright is freed first (its job is redelivered)."""
        states.set_state(
            self.settings.db_url, self.board.name, "idle", "worker (re)started", only_from=("running",)
        )
        self._thread = threading.Thread(target=self._loop, name=f"keeper-{self.board.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> str:
        """One round: check the board unless it is busy, parked or cooling down, then consume or not.

        A board that just went bad is left alone for `bad_cooldown_s`: its failed job is being retried
        meanwhile, and should land on another board rather than on this one the moment a quick check
        passes. Returns the state."""
        current = states.get_state(self.settings.db_url, self.board.name)
        state = current.state
        if state == "running":
            return state
        if state == "bad" and _age_s(current.changed_at) < self.settings.bad_cooldown_s:
            self._set_consuming(False)
            return state
        if state in ("idle", "bad"):
            report = check_board(self.settings.db_url, self.inventory, self.board)
            state = states.get_state(self.settings.db_url, self.board.name).state
            log.info(
                "board %s health: %s (%s)", self.board.name, "ok" if report.ok else "FAILED", report.reason
            )
        self._set_consuming(state in states.USABLE)
        return state

    def _set_consuming(self, on: bool) -> None:
        """Said every round, not only on change: a task may have stopped the consumer in between."""
        (self._consume if on else self._stop_consuming)()
        self.consuming = on

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the keeper must outlive a database hiccup
                log.exception("board keeper for %s", self.board.name)
            self._stop.wait(self.settings.health_interval_s)


def _age_s(ts: datetime | None) -> float:
    if ts is None:
        return float("inf")
    ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)  # SQLite returns UTC without its zone
    return (datetime.now(timezone.utc) - ts).total_seconds()
