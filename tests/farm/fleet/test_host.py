"""A worker host's keepers share their type's run queue: it is consumed while at least one of the host's
boards of that type is healthy and usable, and cancelled only when none is (farm/fleet/host.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm.config import builtin_inventory_dir, load_settings
from farm.db.session import session_scope
from farm.fleet import states
from farm.fleet.host import QueueConsumers, WorkerHost
from farm.fleet.keeper import BoardKeeper
from farm.inventory import load_inventory


class Broker:
    """What the consumers said, in order, and what the worker consumes as a result."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []
        self.consumed: set[str] = set()

    def consume(self, queue: str) -> None:
        self.said.append(("consume", queue))
        self.consumed.add(queue)

    def cancel(self, queue: str) -> None:
        self.said.append(("cancel", queue))
        self.consumed.discard(queue)


def test_a_shared_queue_is_cancelled_only_when_no_board_wants_it() -> None:
    broker = Broker()
    consumers = QueueConsumers(broker.consume, broker.cancel)
    consumers.set("b0", "run.cpu")
    consumers.set("b1", "run.cpu")
    consumers.set("g0", "run.gpu")
    assert broker.consumed == {"run.cpu", "run.gpu"} and consumers.wanted("run.cpu") == {"b0", "b1"}
    consumers.set("b0", None)  # b0 went bad: b1 still takes cpu jobs
    assert broker.consumed == {"run.cpu", "run.gpu"} and broker.said[-1] == ("consume", "run.cpu")
    consumers.set("b0", None)  # said again next round: nothing to say about a queue it never wanted
    consumers.set("b1", None)
    assert broker.consumed == {"run.gpu"} and broker.said[-1] == ("cancel", "run.cpu")
    consumers.set("b1", "run.cpu")
    assert broker.consumed == {"run.cpu", "run.gpu"}


def test_a_board_that_changes_type_moves_queue() -> None:
    broker = Broker()
    consumers = QueueConsumers(broker.consume, broker.cancel)
    consumers.set("b0", "run.cpu")
    consumers.set("b0", "run.gpu")
    assert broker.consumed == {"run.gpu"} and consumers.wanted("run.cpu") == frozenset()


def test_keepers_said_every_round_keep_the_consumer(tmp_path: Path) -> None:
    """A healthy board says "consume" every round (a consumer lost in between comes back)."""
    broker = Broker()
    consumers = QueueConsumers(broker.consume, broker.cancel)
    for _ in range(3):
        consumers.set("b0", "run.cpu")
    assert broker.said == [("consume", "run.cpu")] * 3


@pytest.fixture
def host(tmp_path: Path, farm_env, monkeypatch: pytest.MonkeyPatch) -> tuple[WorkerHost, Broker]:
    inv = tmp_path / "inventory"
    inv.mkdir()
    shutil.copy(builtin_inventory_dir() / "board-types.yaml", inv / "board-types.yaml")
    lines = ["boards:"] + [
        f"  - {{name: {n}, type: {t}}}" for n, t in (("b0", "cpu"), ("b1", "cpu"), ("g0", "gpu"))
    ]
    (inv / "lab.yaml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("FARM_INVENTORY", str(inv))
    monkeypatch.setenv("FARM_LAB", "lab.yaml")
    settings = load_settings()
    inventory = load_inventory(settings.inventory_dir)
    with session_scope(settings.db_url) as s:
        states.sync_boards(s, inventory)
    broker = Broker()
    return WorkerHost(settings, inventory, ["b0", "b1", "g0"], broker.consume, broker.cancel), broker


def test_each_keeper_holds_its_boards_share_of_the_types_queue(host) -> None:
    worker_host, broker = host
    keepers = worker_host.keepers
    for keeper in keepers.values():
        keeper._set_consuming(True)  # what a passing check on a usable board does
    assert broker.consumed == {"run.cpu", "run.gpu"}
    keepers["b0"]._set_consuming(False)  # b0 failed its check
    assert broker.consumed == {"run.cpu", "run.gpu"}
    keepers["b1"]._set_consuming(False)
    assert broker.consumed == {"run.gpu"}
    keepers["b1"]._set_consuming(True)
    assert broker.consumed == {"run.cpu", "run.gpu"}


def test_a_failed_board_stops_only_its_share(host, farm_env) -> None:
    """A task thread saw b0 fail (it is bad now): b0 stops, b1 keeps the cpu queue, g0 the gpu queue."""
    worker_host, broker = host
    for keeper in worker_host.keepers.values():
        keeper._set_consuming(True)
    states.set_state(farm_env.db_url, "b0", "bad", "agent crashed")
    assert worker_host.drop_unusable() == ["b0"]
    assert broker.consumed == {"run.cpu", "run.gpu"} and not worker_host.keepers["b0"].consuming
    assert worker_host.consumers.wanted("run.cpu") == {"b1"}
    states.set_state(farm_env.db_url, "b1", "maintenance", "drained")
    assert worker_host.drop_unusable() == ["b0", "b1"]
    assert broker.consumed == {"run.gpu"}


def test_the_host_records_its_node_on_each_board(host, farm_env, monkeypatch: pytest.MonkeyPatch) -> None:
    worker_host, _ = host
    started = []
    monkeypatch.setattr(BoardKeeper, "start", lambda keeper: started.append(keeper.board_name))
    worker_host.start("host-b0@test")
    try:
        assert {states.get_state(farm_env.db_url, n).worker for n in ("b0", "b1", "g0")} == {"host-b0@test"}
    finally:
        worker_host.stop()
    assert started == ["b0", "b1", "g0"]
    assert {states.get_state(farm_env.db_url, n).worker for n in ("b0", "b1", "g0")} == {None}
