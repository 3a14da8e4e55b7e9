"""Health checks: is the board reachable, does the agent run, does the backend load, do sensors read, is
there room where artifacts go? And what the outcome does to the board's state (farm/fleet/policy.py)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from farm.db.models import utcnow
from farm.errors import FarmError
from farm.fleet import states
from farm.fleet.policy import HealthPolicy, decide
from farm.fleet.transports import forget, transport_for
from farm.inventory import Board, Inventory
from farm.transport.base import Transport
from farm.transport.diskspace import NoSpaceError, no_space_message
from farm.transport.hostkeys import HostKeyError

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 60.0


@dataclass
class HealthReport:
    board: str
    ok: bool
    reason: str
    checks: list[dict[str, Any]] = field(default_factory=list)


def probe(
    inventory: Inventory,
    board: Board,
    transport: Transport | None = None,
    *,
    min_free_mb: float | None = None,
) -> HealthReport:
    """Run the checks; never raises for a board problem (that is what the report says)."""
    backend = inventory.board_types[board.type].backend
    try:
        transport = transport or transport_for(inventory, board)
        outcome = transport.agent_health(backend, HEALTH_TIMEOUT_S, min_free_mb)
    except FarmError as exc:  # unreachable, host key, full disk while shipping the agent, timeout
        forget(board.name)
        name = "host key" if isinstance(exc, HostKeyError) else "reachable"
        said = str(exc) if isinstance(exc, HostKeyError | NoSpaceError) else f"unreachable: {exc}"
        return HealthReport(board.name, False, said, [{"name": name, "ok": False, "detail": str(exc)}])
    try:
        doc = json.loads(outcome.stdout)
    except json.JSONDecodeError:
        tail = (outcome.stderr or outcome.stdout).strip()[-300:]
        return HealthReport(board.name, False, f"agent did not run (exit {outcome.returncode}): {tail}", [])
    checks = [{"name": "reachable", "ok": True, "detail": doc.get("hostname")}, *doc.get("checks", [])]
    failed = [c for c in checks if not c.get("ok")]
    reason = "; ".join(_said(board, c) for c in failed) if failed else "all checks passed"
    return HealthReport(board.name, not failed, reason, checks)


def _said(board: Board, check: dict[str, Any]) -> str:
    """A failed check in words; a full disk as "no space left on BOARD:PATH (N MB free, M MB needed)"."""
    if check.get("name") == "disk" and "free_bytes" in check and "path" in check:
        return no_space_message(board.name, check["path"], check["free_bytes"], check.get("needed_bytes", 0))
    return f"{check.get('name')}: {check.get('detail')}"


def check_board(
    db_url: str,
    inventory: Inventory,
    board: Board,
    transport: Transport | None = None,
    *,
    policy: HealthPolicy | None = None,
    by_operator: bool = True,
) -> HealthReport:
    """Probe, record the result in the board's history, and move its state as :func:`policy.decide` says:
    at once for an operator's check; damped for a keeper's (``by_operator=False``: N failures in a row
    before an idle board goes bad, a cooldown after the last failure before a bad board comes back).
    Running, maintenance and retired boards keep their state."""
    policy = policy or HealthPolicy.from_settings()
    report = probe(inventory, board, transport, min_free_mb=policy.min_free_mb)
    states.record_health(db_url, board.name, report.ok, report.reason, {"checks": report.checks})
    current = states.get_state(db_url, board.name)
    streak = states.health_streak(db_url, board.name, policy.flap_failures, policy.cooldown_s)
    decision = decide(
        current.state,
        report.ok,
        report.reason,
        failures_in_a_row=streak.failures_in_a_row,
        last_failure_at=streak.last_failure_at,
        now=utcnow(),
        policy=policy,
        by_operator=by_operator,
    )
    if decision.held:
        states.record_decision(db_url, board.name, decision.reason, {"state": current.state, "ok": report.ok})
        log.info("board %s: %s", board.name, decision.reason)
    elif decision.to == "bad" and current.state == "bad":
        states.set_reason(db_url, board.name, decision.reason, only_in=("bad",))
    elif decision.to is not None:
        moved = states.set_state(db_url, board.name, decision.to, decision.reason, only_from=(current.state,))
        if moved and decision.to == "bad":
            log.warning("board %s is bad: %s", board.name, report.reason)
    return report
