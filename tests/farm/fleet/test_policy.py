"""What a health check does to a board's state (farm/fleet/policy.py), as a table; and its settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from farm.errors import FarmError
from farm.fleet.policy import HealthPolicy, decide

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
POLICY = HealthPolicy(flap_failures=3, cooldown_s=600)


def _decide(state: str, ok: bool, *, in_a_row: int = 0, ago_s: float | None = None, operator: bool = False):
    last = None if ago_s is None else NOW - timedelta(seconds=ago_s)
    return decide(
        state,
        ok,
        "agent did not run",
        failures_in_a_row=in_a_row,
        last_failure_at=last,
        now=NOW,
        policy=POLICY,
        by_operator=operator,
    )


@pytest.mark.parametrize(
    ("state", "ok", "in_a_row", "ago_s", "operator", "to", "held", "said"),
    [
        # an idle board: failures below the threshold keep it idle (taking no job), the Nth makes it bad
        ("idle", False, 1, None, False, None, True, "1 of 3 in a row"),
        ("idle", False, 2, None, False, None, True, "2 of 3 in a row"),
        ("idle", False, 3, None, False, "bad", False, "(3 checks in a row): agent did not run"),
        ("idle", False, 1, None, True, "bad", False, "health check failed: agent did not run"),
        ("idle", True, 0, None, False, None, False, ""),
        # a bad board: a pass inside the cooldown after its last failure is held, one after it is let back
        ("bad", True, 0, 5, False, None, True, "stays bad until 2030-01-01 12:09:55 UTC"),
        ("bad", True, 0, 599, False, None, True, "600 s (FARM_BAD_COOLDOWN_S) after its last failure"),
        ("bad", True, 0, 600, False, "idle", False, "no failure in the last 600 s"),
        ("bad", True, 0, None, False, "idle", False, "no failure in the last 600 s"),
        ("bad", True, 0, 5, True, "idle", False, "an operator's check"),
        # a bad board that fails again: its reason is what is wrong now
        ("bad", False, 7, 5, False, "bad", False, "health check failed: agent did not run"),
        # running, maintenance, retired: a check only records
        ("running", False, 9, 1, False, None, False, ""),
        ("maintenance", True, 0, None, True, None, False, ""),
        ("retired", False, 3, None, False, None, False, ""),
    ],
)
def test_decisions(state, ok, in_a_row, ago_s, operator, to, held, said) -> None:
    decision = _decide(state, ok, in_a_row=in_a_row, ago_s=ago_s, operator=operator)
    assert (decision.to, decision.held) == (to, held)
    assert said in decision.reason


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HealthPolicy.from_settings() == HealthPolicy(3, 600.0, 512.0)
    monkeypatch.setenv("FARM_FLAP_FAILURES", "5")
    monkeypatch.setenv("FARM_MIN_FREE_MB", "64.5")
    assert HealthPolicy.from_settings() == HealthPolicy(5, 600.0, 64.5)
    for name, value in (
        ("FARM_FLAP_FAILURES", "abc"),
        ("FARM_FLAP_FAILURES", "0"),
        ("FARM_FLAP_FAILURES", "2.5"),
        ("FARM_MIN_FREE_MB", "-1"),
        ("FARM_MIN_FREE_MB", "nan"),
        ("FARM_MIN_FREE_MB", "inf"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(FarmError, match=f"{name}='{value}': expected"):
            HealthPolicy.from_settings()
        monkeypatch.delenv(name)
