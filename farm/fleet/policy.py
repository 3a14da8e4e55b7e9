"""How the fleet judges a board from its health checks: the numbers, and the one decision they drive.

A board that fails one check may have hit a blip (a slow SSH handshake under load); one that keeps
failing is broken; one whose checks alternate is flapping, and each flip back to idle would send it
jobs that fail. So, for the checks a board's keeper runs on its own:

* an idle board that fails a check stops taking jobs at once, is checked again soon (the keeper's
  SUSPECT_RECHECK_S), and goes ``bad`` when it has failed ``flap_failures`` checks in a row
  (FARM_FLAP_FAILURES, default 3);
* a bad board goes back to idle only on a passing check made at least ``cooldown_s`` (FARM_BAD_COOLDOWN_S)
  after its last failure (a failed check, or the job fault that made it bad): a single pass right after
  a failure is recorded and ignored, and each new failure starts the cooldown again.

An operator's ``farm fleet check`` is a decision, not a sample: a failure makes the board bad and a pass
makes a bad board idle at once. A failed check of a board that is already bad only refreshes its reason,
so ``farm fleet list`` says what is wrong now (a dropped connection that turned out to be a new host key).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from farm.config import Settings
from farm.errors import FarmError

__all__ = ["Decision", "HealthPolicy", "decide"]

DEFAULT_FLAP_FAILURES = 3
DEFAULT_MIN_FREE_MB = 512.0


@dataclass(frozen=True)
class HealthPolicy:
    flap_failures: int = DEFAULT_FLAP_FAILURES
    cooldown_s: float = 600.0
    min_free_mb: float = DEFAULT_MIN_FREE_MB

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> HealthPolicy:
        """Settings' fields where it has them, else the environment (FARM_FLAP_FAILURES, FARM_MIN_FREE_MB)."""
        cooldown = getattr(settings, "bad_cooldown_s", None)
        return cls(
            flap_failures=int(
                _setting(settings, "flap_failures", "FARM_FLAP_FAILURES", DEFAULT_FLAP_FAILURES, 1)
            ),
            cooldown_s=float(cooldown if cooldown is not None else cls.cooldown_s),
            min_free_mb=_setting(settings, "min_free_mb", "FARM_MIN_FREE_MB", DEFAULT_MIN_FREE_MB, 0),
        )


def _setting(settings: Settings | None, field: str, env: str, default: float, least: float) -> float:
    value = getattr(settings, field, None)
    if value is not None:
        return float(value)
    text = os.environ.get(env, "").strip()
    if not text:
        return float(default)
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= least) or (
        field == "flap_failures" and number != int(number)
    ):
        kind = "a whole number" if field == "flap_failures" else "a number"
        raise FarmError(f"{env}={text!r}: expected {kind} >= {least:g} (default {default:g})")
    return number


@dataclass(frozen=True)
class Decision:
    """What a health check does to a board: ``to`` a state (None: stays), and why. ``held`` marks a
    decision not to move it although the check alone would have (recorded as a board event)."""

    to: str | None
    reason: str
    held: bool = False


def decide(
    state: str,
    ok: bool,
    reason: str,
    *,
    failures_in_a_row: int,
    last_failure_at: datetime | None,
    now: datetime,
    policy: HealthPolicy,
    by_operator: bool,
) -> Decision:
    """The move a check's outcome makes (see the module docstring). ``failures_in_a_row`` counts this check;
    ``last_failure_at`` is the latest failure before it (None: none within the cooldown)."""
    if state not in ("idle", "bad"):  # running, maintenance, retired: a check only records
        return Decision(None, "")
    if ok:
        if state == "idle":
            return Decision(None, "")
        if by_operator:
            return Decision("idle", "health check passed (an operator's check)")
        if last_failure_at is None or now - last_failure_at >= timedelta(seconds=policy.cooldown_s):
            return Decision(
                "idle", f"health check passed, and no failure in the last {policy.cooldown_s:g} s"
            )
        until = last_failure_at + timedelta(seconds=policy.cooldown_s)
        return Decision(
            None,
            f"health check passed, but the board stays bad until {until:%Y-%m-%d %H:%M:%S} UTC: "
            f"{policy.cooldown_s:g} s (FARM_BAD_COOLDOWN_S) after its last failure at {last_failure_at:%H:%M:%S}",
            held=True,
        )
    if state == "bad":
        return Decision("bad", f"health check failed: {reason}")
    if by_operator or failures_in_a_row >= policy.flap_failures:
        times = "" if by_operator else f" ({failures_in_a_row} checks in a row)"
        return Decision("bad", f"health check failed{times}: {reason}")
    return Decision(
        None,
        f"health check failed ({failures_in_a_row} of {policy.flap_failures} in a row before the board goes "
        f"bad; FARM_FLAP_FAILURES): it takes no job until a check passes: {reason}",
        held=True,
    )
