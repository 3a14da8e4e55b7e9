"""Catalog sensor specs -> the board agent's sensor config entries.

The catalog (inventory/board-types.yaml) names what a board type carries (``hwmon:ina226``, ``xbutil``,
...); the agent's readers (workers/agent/sensors/) take one entry each. How a spec becomes an entry is
declared once, in the farm-agent contract (``farm.workers.agent.protocol.SENSOR_KINDS``), so a new sensor is a
reader, one line there and its spec in the catalog. The files a reader opens live under the board's root:
``/`` on a real board, the lab board's ``emulation.root`` on an emulated one (where the board simulator
writes the same files), so the same readers serve both.
"""

from __future__ import annotations

from typing import Any

from farm.errors import InventoryError
from farm.inventory import Board, BoardType
from farm.workers.agent import protocol


def board_root(board: Board) -> str:
    """Where a board's sensor files live: its emulation root, or "/" on a real board."""
    return board.emulation.root if board.emulation is not None else "/"


def agent_entry(spec: str, root: str = "/") -> dict[str, Any]:
    """One catalog spec as an agent config entry (the contract's table). InventoryError for a spec no
    reader understands."""
    try:
        return protocol.sensor_entry(spec, root)
    except ValueError as exc:
        raise InventoryError(str(exc)) from None


def agent_sensors(board_type: BoardType, board: Board) -> list[dict[str, Any]]:
    """The agent's ``sensors`` config for a job on ``board``."""
    root = board_root(board)
    return [agent_entry(spec, root) for spec in board_type.sensors]
