"""Which transport reaches which board. One per board per process, so a worker reuses its connection."""

from __future__ import annotations

import threading

from farm.inventory import Board, Inventory
from farm.transport import build
from farm.transport.base import Transport

_CACHE: dict[str, Transport] = {}
_BOARDS: dict[str, tuple[Board, object]] = {}  # what each cached transport was built from
_LOCK = threading.Lock()


def transport_for(inventory: Inventory, board: Board) -> Transport:
    """The board's transport, built again when the inventory now describes the board differently (the lab
    moved its sshd to another port, a new key file): a worker never keeps talking to where it used to be."""
    built_from = (board, inventory.base_dir)
    stale: Transport | None = None
    with _LOCK:
        if board.name in _CACHE and _BOARDS.get(board.name) != built_from:
            stale = _CACHE.pop(board.name)
        if board.name not in _CACHE:
            _CACHE[board.name] = build(inventory, board)
            _BOARDS[board.name] = built_from
        transport = _CACHE[board.name]
    if stale is not None:
        stale.close()
    return transport


def forget(board_name: str) -> None:
    """Close and drop a board's transport (after a fault, so the next use starts clean)."""
    with _LOCK:
        transport = _CACHE.pop(board_name, None)
        _BOARDS.pop(board_name, None)
    if transport is not None:
        transport.close()


def cancel_all() -> int:
    """Stop every agent run this process has in progress (an embedded sweep interrupted): each cached
    transport's ``cancel`` (an SSH agent session is closed, so its board-side guard kills the agent), then
    any local agent left. Returns how many local agents were killed."""
    from farm.transport import local

    with _LOCK:
        transports = list(_CACHE.values())
    for transport in transports:
        transport.cancel()
    return local.stop_all()


def close_all() -> None:
    with _LOCK:
        transports = list(_CACHE.values())
        _CACHE.clear()
        _BOARDS.clear()
    for transport in transports:
        transport.close()


def drop_inherited() -> None:
    """In a forked child: forget the parent's connections without touching them (their threads did not
    survive the fork, and closing would disturb the parent's sessions)."""
    _CACHE.clear()
    _BOARDS.clear()
