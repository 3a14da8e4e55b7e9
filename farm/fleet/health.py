"""Health checks: is the board reachable, does the agent run, does the backend load, do sensors read?"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from farm.errors import FarmError
from farm.fleet import states
from farm.fleet.transports import forget, transport_for
from farm.inventory import Board, Inventory
from farm.transport.base import Transport

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 60.0


@dataclass
class HealthReport:
    board: str
    ok: bool
    reason: str
    checks: list[dict[str, Any]] = field(default_factory=list)


def probe(inventory: Inventory, board: Board, transport: Transport | None = None) -> HealthReport:
    """Run the checks; never raises for a board problem (that is what the report says)."""
    backend = inventory.board_types[board.type].backend
    try:
        transport = transport or transport_for(inventory, board)
        outcome = transport.agent_health(backend, HEALTH_TIMEOUT_S)
    except FarmError as exc:  # unreachable, host key, timeout
        forget(board.name)
        return HealthReport(
            board.name, False, f"unreachable: {exc}", [{"name": "reachable", "ok": False, "detail": str(exc)}]
        )
    try:
        doc = json.loads(outcome.stdout)
    except json.JSONDecodeError:
        tail = (outcome.stderr or outcome.stdout).strip()[-300:]
        return HealthReport(board.name, False, f"agent did not run (exit {outcome.returncode}): {tail}", [])
    checks = [{"name": "reachable", "ok": True, "detail": doc.get("hostname")}, *doc.get("checks", [])]
    failed = [c for c in checks if not c.get("ok")]
    reason = "; ".join(f"{c['name']}: {c.get('detail')}" for c in failed) if failed else "all checks passed"
    return HealthReport(board.name, not failed, reason, checks)


def check_board(
    db_url: str, inventory: Inventory, board: Board, transport: Transport | None = None
) -> HealthReport:
    """Probe, record the result in the board's history, and move its state: a failing idle board goes
    bad; a bad board that passes goes back to idle. Maintenance and retired boards keep their state."""
    report = probe(inventory, board, transport)
    states.record_health(db_url, board.name, report.ok, report.reason, {"checks": report.checks})
    if report.ok:
        states.set_state(db_url, board.name, "idle", "health check passed", only_from=("bad",))
    else:
        moved = states.set_state(
            db_url, board.name, "bad", f"health check failed: {report.reason}", only_from=("idle",)
        )
        if moved:
            log.warning("board %s is bad: %s", board.name, report.reason)
    return report
