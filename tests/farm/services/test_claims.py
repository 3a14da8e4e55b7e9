"""Board claims of a worker host (FARM_BOARDS): the first idle board of the job's type among its own, the
board whose queue delivered the job, a short wait while all are busy, and a hand-back when none may work."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from farm.config import builtin_inventory_dir, load_settings
from farm.db.models import JobRow, SweepRow
from farm.db.session import session_scope
from farm.fleet import host, states
from farm.inventory import load_inventory
from farm.services import claims
from farm.services.claims import BoardsBusy, BoardUnavailable, claim_board

LAB = """\
boards:
  - {name: b0, type: cpu}
  - {name: b1, type: cpu}
  - {name: b2, type: cpu}
  - {name: g0, type: gpu}
  - {name: elsewhere, type: cpu}
"""


@pytest.fixture
def host_lab(tmp_path: Path, farm_env, monkeypatch: pytest.MonkeyPatch):
    """Five local boards in the database; this worker host drives b0, b1, b2 and g0."""
    inv = tmp_path / "inventory"
    inv.mkdir()
    shutil.copy(builtin_inventory_dir() / "board-types.yaml", inv / "board-types.yaml")
    (inv / "lab.yaml").write_text(LAB)
    monkeypatch.setenv("FARM_INVENTORY", str(inv))
    monkeypatch.setenv("FARM_LAB", "lab.yaml")
    monkeypatch.setenv("FARM_BOARDS", "b0,b1,b2,g0")
    monkeypatch.setattr(claims, "HOST_WAIT_S", 0.5)
    settings = load_settings()
    inventory = load_inventory(settings.inventory_dir)
    with session_scope(settings.db_url) as s:
        states.sync_boards(s, inventory)
        s.add(SweepRow(id="s" * 36, name="x", source="x", spec_yaml="", spec_hash="", spec={}))
    return settings, inventory


def _job(db_url: str, target: str = "cpu") -> int:
    with session_scope(db_url) as s:
        job = JobRow(sweep_id="s" * 36, key=f"k{time.monotonic_ns()}", kind="run", model="m",
                     precision="fp32", target=target, batch_size=1, state="queued")  # fmt: skip
        s.add(job)
        s.flush()
        return job.id


def test_a_host_claims_the_first_idle_board_of_the_type_among_its_own(host_lab) -> None:
    settings, inventory = host_lab
    assert settings.bound_boards == ("b0", "b1", "b2", "g0")
    taken = [claim_board(settings, inventory, "cpu", _job(settings.db_url)).name for _ in range(3)]
    assert taken == ["b0", "b1", "b2"]  # never "elsewhere" (another host's) nor g0 (another type)
    assert claim_board(settings, inventory, "gpu", _job(settings.db_url, "gpu")).name == "g0"
    for name in ("b0", "b1", "b2", "g0"):
        assert states.get_state(settings.db_url, name).state == "running"
    assert states.get_state(settings.db_url, "elsewhere").state == "idle"


def test_all_busy_waits_briefly_then_says_busy_and_takes_a_board_freed_meanwhile(host_lab) -> None:
    settings, inventory = host_lab
    jobs = [_job(settings.db_url) for _ in range(3)]
    for job in jobs:
        claim_board(settings, inventory, "cpu", job)
    started = time.monotonic()
    with pytest.raises(BoardsBusy, match="every board of type 'cpu' on this host is busy"):
        claim_board(settings, inventory, "cpu", _job(settings.db_url))
    assert time.monotonic() - started >= 0.5  # it waited for a board first

    board_b1 = inventory.board("b1")
    timer = threading.Timer(0.2, claims.release, (settings, board_b1, jobs[1]))
    timer.start()  # b1's job ends while the next one waits
    assert claim_board(settings, inventory, "cpu", _job(settings.db_url)).name == "b1"
    timer.join()


def test_a_delivery_on_a_boards_own_queue_claims_that_board(host_lab) -> None:
    settings, inventory = host_lab
    assert claim_board(settings, inventory, "cpu", _job(settings.db_url), only="b2").name == "b2"
    with pytest.raises(BoardsBusy):  # b2 busy: b0 and b1 are idle but the job was for b2
        claim_board(settings, inventory, "cpu", _job(settings.db_url), only="b2")
    # a queue name that is not one of this host's boards is ignored: any of its boards of the type
    assert claim_board(settings, inventory, "cpu", _job(settings.db_url), only="elsewhere").name == "b0"


def test_no_usable_board_of_the_type_hands_the_job_back(host_lab) -> None:
    settings, inventory = host_lab
    states.set_state(settings.db_url, "b0", "maintenance", "drained")
    states.set_state(settings.db_url, "b1", "bad", "unreachable")
    assert claim_board(settings, inventory, "cpu", _job(settings.db_url)).name == "b2"  # the one left
    with pytest.raises(BoardsBusy):  # b2 is busy: it is usable, so wait and retry
        claim_board(settings, inventory, "cpu", _job(settings.db_url))
    states.set_state(settings.db_url, "b2", "retired", "gone")
    with pytest.raises(BoardUnavailable) as info:
        claim_board(settings, inventory, "cpu", _job(settings.db_url))
    assert "no board of type 'cpu' here" in str(info.value)
    assert "b0 maintenance (drained); b1 bad (unreachable); b2 retired (gone)" in str(info.value)
    with pytest.raises(BoardUnavailable, match="none on this host"):
        claim_board(settings, inventory, "jetson-agx-xavier", _job(settings.db_url, "jetson-agx-xavier"))


def test_a_single_board_worker_claims_its_board_as_before(host_lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_BOARDS")
    monkeypatch.setenv("FARM_BOARD", "b1")
    settings = load_settings()
    inventory = host_lab[1]
    assert settings.bound_boards == ("b1",)
    assert claim_board(settings, inventory, "cpu", _job(settings.db_url)).name == "b1"
    with pytest.raises(BoardUnavailable, match="board b1 is running"):  # no waiting: the queue's next board
        claim_board(settings, inventory, "cpu", _job(settings.db_url))


def test_a_host_claims_only_boards_its_keepers_let_take_jobs(host_lab) -> None:
    """The host consumes the cpu queue because b1 passed its check; b0 and b2 (not checked yet, or failing
    their checks while still idle) take none of its jobs."""
    settings, inventory = host_lab
    worker_host = host.WorkerHost(settings, inventory, settings.bound_boards, lambda q: None, lambda q: None)
    worker_host.keepers["b1"]._set_consuming(True)
    host.install(worker_host)
    try:
        assert claim_board(settings, inventory, "cpu", _job(settings.db_url)).name == "b1"
        with pytest.raises(BoardsBusy):
            claim_board(settings, inventory, "cpu", _job(settings.db_url))
        states.set_state(settings.db_url, "b1", "maintenance", "drained")
        with pytest.raises(BoardUnavailable, match="taking no jobs until a check passes: b0, b2"):
            claim_board(settings, inventory, "cpu", _job(settings.db_url))
    finally:
        host.install(None)
