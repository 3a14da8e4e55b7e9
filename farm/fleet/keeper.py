"""The board keeper: runs beside a board's Celery worker (`farm worker --board NAME`, or one per board of a
worker host: farm/fleet/host.py) and decides whether the worker takes run jobs for it. It health-checks
the board before the first job and then periodically; a healthy, idle board consumes its type's queue,
any other state does not.

A keeper runs for days, so it reads the inventory again whenever the lab file or the catalog changed
(farm/inventory.py parses once per change): a board the lab moved to another port or host is checked
there, through a transport built for the new place. A lab file that no longer loads keeps the last good
one in use (an operator in the middle of an edit), and says so once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from farm.config import Settings
from farm.errors import FarmError
from farm.fleet import states
from farm.fleet.health import check_board
from farm.fleet.policy import HealthPolicy
from farm.fleet.transports import forget
from farm.inventory import Board, Inventory, load_inventory

log = logging.getLogger(__name__)

#: How soon an idle board that failed a check is checked again (when FARM_HEALTH_INTERVAL_S is longer):
#: it takes no job meanwhile, so the verdict (a blip, or FARM_FLAP_FAILURES in a row: bad) should not wait.
SUSPECT_RECHECK_S = 30.0


class BoardKeeper:
    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        board_name: str,
        consume: Callable[[], None],
        stop_consuming: Callable[[], None],
        policy: HealthPolicy | None = None,
    ) -> None:
        self.settings, self.inventory = settings, inventory
        self.board: Board | None = inventory.board(board_name)
        self.board_name = board_name
        self.policy = policy or HealthPolicy.from_settings(settings)
        self._consume, self._stop_consuming = consume, stop_consuming
        self.consuming = False
        self.suspect = False  # idle, but its last check failed: checked again sooner
        self._inventory_problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A board left `running` by a worker that died outright is freed first (its job is redelivered)."""
        states.set_state(
            self.settings.db_url, self.board_name, "idle", "worker (re)started", only_from=("running",)
        )
        self._thread = threading.Thread(target=self._loop, name=f"keeper-{self.board_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> str:
        """One round: follow the inventory, check the board unless it is busy or parked, then consume or not.

        Every check counts (policy.py decides what it does to the state): a bad board is checked in its
        cooldown too, so its reason says what is wrong now and a failure in the cooldown starts it again;
        a pass in the cooldown is recorded and does not bring it back. Returns the state."""
        board = self._follow_inventory()
        current = states.get_state(self.settings.db_url, self.board_name)
        state = current.state
        if state == "running":
            return state
        if board is None:  # gone from the lab file: take no jobs for it
            self._set_consuming(False)
            return state
        healthy = self.suspect = False
        if state in ("idle", "bad"):
            report = check_board(
                self.settings.db_url, self.inventory, board, policy=self.policy, by_operator=False
            )
            state = states.get_state(self.settings.db_url, self.board_name).state
            healthy = report.ok
            self.suspect = state == "idle" and not report.ok
            log.info("board %s health: %s (%s)", board.name, "ok" if report.ok else "FAILED", report.reason)
        self._set_consuming(healthy and state in states.USABLE)
        return state

    def _follow_inventory(self) -> Board | None:
        """The board as the inventory describes it now; its old transport is dropped when that changed."""
        try:
            inventory = load_inventory(self.settings.inventory_dir)
        except (FarmError, OSError, ValueError) as exc:
            if str(exc) != self._inventory_problem:
                log.error("the inventory does not load (keeping the last good one): %s", exc)
                self._inventory_problem = str(exc)
            return self.board
        self._inventory_problem = None
        if inventory is self.inventory:
            return self.board
        self.inventory = inventory
        try:
            board: Board | None = inventory.board(self.board_name)
        except FarmError:
            board = None
            log.error("board %s is no longer in the inventory: it takes no jobs", self.board_name)
        if board != self.board:
            if board is not None and self.board is not None:
                log.info(
                    "board %s changed in the inventory: checking it as %s", self.board_name, _where(board)
                )
            forget(self.board_name)
        self.board = board
        return board

    def _set_consuming(self, on: bool) -> None:
        """Said every round, not only on change: a task may have stopped the consumer in between."""
        (self._consume if on else self._stop_consuming)()
        self.consuming = on

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the keeper must outlive a database hiccup
                log.exception("board keeper for %s", self.board_name)
            interval = self.settings.health_interval_s
            self._stop.wait(min(interval, SUSPECT_RECHECK_S) if self.suspect else interval)


def _where(board: Board) -> str:
    return f"{board.ssh.host}:{board.ssh.port}" if board.ssh is not None else board.transport
