"""LeaseLost: what a run registers runs when the heartbeat loses the lease, and never after the run ended."""

from __future__ import annotations

from farm.leases import LeaseLost, on_lost


def test_an_action_runs_when_the_lease_is_lost_during_the_body() -> None:
    lost, calls = LeaseLost(), []
    with on_lost(lost, lambda: calls.append("cancel")):
        assert calls == []
        lost.set()
        assert calls == ["cancel"]
    lost.set()
    assert calls == ["cancel"]  # once


def test_an_action_registered_after_the_loss_runs_at_once_and_never_after_its_body() -> None:
    lost, calls = LeaseLost(), []
    lost.set()
    with on_lost(lost, lambda: calls.append("late")):
        assert calls == ["late"]
    fresh, later = LeaseLost(), []
    with on_lost(fresh, lambda: later.append("x")):
        pass
    fresh.set()
    assert later == []  # the body had ended: nothing to stop


def test_a_failing_action_does_not_break_the_heartbeat_and_no_lease_means_nothing_to_do() -> None:
    lost = LeaseLost()

    def boom() -> None:
        raise RuntimeError("transport already closed")

    with on_lost(lost, boom):
        lost.set()  # logged, not raised
    assert lost.is_set()
    with on_lost(None, boom):
        pass
