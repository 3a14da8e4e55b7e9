"""Which transport reaches which board. One per board per process, so a worker reuses its connection."""

from __future__ import annotations

import threading

from farm.inventory import Board, Inventory
from farm.transport.base import Transport
from farm.transport.local import LocalTransport

_CACHE: dict[str, Transport] = {}
_LOCK = threading.Lock()
CONNECT_TIMEOUT_S = 10.0


def transport_for(inventory: Inventory, board: Board) -> Transport:
    with _LOCK:
        if board.name not in _CACHE:
            _CACHE[board.name] = _make(inventory, board)
        return _CACHE[board.name]


def _make(inventory: Inventory, board: Board) -> Transport:
    if board.transport == "local":
        return LocalTransport()
    from farm.transport.ssh import SshTransport

    ep = board.ssh
    assert ep is not None  # the inventory guarantees it for transport: ssh
    return SshTransport(
        host=ep.host,
        port=ep.port,
        user=ep.user,
        key_file=inventory.resolve(ep.key_file),
        known_hosts=inventory.resolve(ep.known_hosts),
        work_dir=ep.work_dir,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        python=ep.python,
        name=board.name,
    )


def forget(board_name: str) -> None:
    """Close and drop a board's transport (after a fault, so the next use starts clean)."""
    with _LOCK:
        transport = _CACHE.pop(board_name, None)
    if transport is not None:
        transport.close()


def close_all() -> None:
    with _LOCK:
        transports = list(_CACHE.values())
        _CACHE.clear()
    for transport in transports:
        transport.close()


def drop_inherited() -> None:
    """In a forked child: forget the parent's connections without touching them (their threads did not
    survive the fork, and closing would disturb the parent's sessions)."""
    _CACHE.clear()
