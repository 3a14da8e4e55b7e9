"""`farm worker --board A --board B` reads its boards either way; `farm fleet up --boards-per-worker N`
groups the inventory's boards into worker hosts, a type's boards together."""

from __future__ import annotations

import pytest

from farm.cli.admin import _board_names
from farm.cli.fleet import worker_commands, worker_groups
from farm.errors import FarmError
from farm.inventory import Board


def _boards(*spec: tuple[str, int]) -> list[Board]:
    return [Board(name=f"{t}-{i}", type=t) for t, n in spec for i in range(n)]


def test_board_names_repeat_or_commas() -> None:
    assert _board_names(("a", "b,c", " d ")) == ["a", "b", "c", "d"]
    assert _board_names(("a", "a,b")) == ["a", "b"]
    assert _board_names(()) == []
    with pytest.raises(FarmError, match="an empty board name"):
        _board_names(("a,,b",))


def test_groups_keep_a_types_boards_together() -> None:
    boards = _boards(("cpu", 5), ("zcu104", 3), ("kv260", 1))
    assert worker_groups(boards, 4) == [
        ["cpu-0", "cpu-1", "cpu-2", "cpu-3"],
        ["zcu104-0", "zcu104-1", "zcu104-2", "cpu-4"],  # what is left of each type, packed largest first
        ["kv260-0"],
    ]
    assert worker_groups(boards, 1) == [[b.name] for b in boards]
    assert worker_groups(boards, 100) == [[b.name for b in boards]]  # one host for the whole lab
    every = [n for g in worker_groups(boards, 3) for n in g]
    assert sorted(every) == sorted(b.name for b in boards)  # each board once
    # no type is split when its rest fits: 3 cpu + 4 zcu104 in hosts of 4 -> one host per type
    assert worker_groups(_boards(("cpu", 3), ("zcu104", 4)), 4) == [
        ["zcu104-0", "zcu104-1", "zcu104-2", "zcu104-3"],
        ["cpu-0", "cpu-1", "cpu-2"],
    ]


def test_fleet_up_commands() -> None:
    boards = _boards(("cpu", 3))
    one = worker_commands(boards, "lab", 1)
    assert one["cpu-0@lab"] == ["worker", "--board", "cpu-0", "-n", "cpu-0@lab"]  # as before
    assert set(one) == {"cpu-0@lab", "cpu-1@lab", "cpu-2@lab", "compile@lab", "control@lab"}
    hosts = worker_commands(boards, "lab", 2, compile_worker=False)
    assert hosts == {
        "host-0@lab": ["worker", "--board", "cpu-0", "--board", "cpu-1", "-n", "host-0@lab"],
        "host-1@lab": ["worker", "--board", "cpu-2", "-n", "host-1@lab"],
        "control@lab": ["worker", "-Q", "control", "-n", "control@lab", "--beat"],
    }
