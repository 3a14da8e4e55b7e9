"""Catalog sensor specs -> the board agent's sensor config entries (docs/virtual-lab.md section 4).

The catalog (inventory/board-types.yaml) names what a board type carries (``hwmon:ina226``, ``xbutil``,
...); the agent's readers (workers/agent/sensors/) take one entry each. The files a reader opens live
under the board's root: ``/`` on a real board, the lab board's ``emulation.root`` on an emulated one
(where the board simulator writes the same files), so the same readers serve both.

==========================  ===========================================================================
catalog spec                agent entry
==========================  ===========================================================================
``hwmon:ina219|226|260``    ``{"kind": "hwmon_ina2xx", "root": R, "chip": "ina226"}``
``hwmon:ina3221``           ``{"kind": "hwmon_ina3221", "root": R, "chip": "ina3221"}``
``hwmon-temp:<chip>``       ``{"kind": "hwmon_temp", "root": R, "chip": "<chip>"}``
``thermal_zone[:N]``        ``{"kind": "thermal_zone", "root": R, "zone": N}`` (N = 0 by default)
``xbutil[:BDF]``            ``{"kind": "xbutil", "path": R + "/opt/xilinx/xrt/bin/xbutil", "device": BDF|None}``
``nvml[:index]``            ``{"kind": "nvml", "index": 0}``
``rapl``                    ``{"kind": "rapl", "root": R}``
==========================  ===========================================================================
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from farm.errors import InventoryError
from farm.inventory import Board, BoardType

INA2XX = ("ina219", "ina226", "ina260")
XBUTIL_PATH = "/opt/xilinx/xrt/bin/xbutil"
_CHIP = re.compile(r"^[a-z0-9_]{1,32}$")
_BDF = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


def board_root(board: Board) -> str:
    """Where a board's sensor files live: its emulation root, or "/" on a real board."""
    return board.emulation.root if board.emulation is not None else "/"


def under(root: str, path: str) -> str:
    return posixpath.join(root, path.lstrip("/"))


def agent_entry(spec: str, root: str = "/") -> dict[str, Any]:
    """One catalog spec as an agent config entry. InventoryError for a spec no reader understands."""
    kind, _, arg = spec.partition(":")
    if kind == "hwmon" and arg in INA2XX:
        return {"kind": "hwmon_ina2xx", "root": root, "chip": arg}
    if kind == "hwmon" and arg == "ina3221":
        return {"kind": "hwmon_ina3221", "root": root, "chip": arg}
    if kind == "hwmon-temp" and _CHIP.match(arg):
        return {"kind": "hwmon_temp", "root": root, "chip": arg}
    if kind == "thermal_zone" and (not arg or arg.isdigit()):
        return {"kind": "thermal_zone", "root": root, "zone": int(arg or 0)}
    if kind == "xbutil" and (not arg or _BDF.match(arg)):
        return {"kind": "xbutil", "path": under(root, XBUTIL_PATH), "device": arg or None}
    if kind == "nvml" and (not arg or arg.isdigit()):
        return {"kind": "nvml", "index": int(arg or 0)}
    if kind == "rapl" and not arg:
        return {"kind": "rapl", "root": root}
    raise InventoryError(
        f"unknown sensor spec {spec!r}; known: hwmon:ina219|ina226|ina260|ina3221, hwmon-temp:<chip>, "
        "thermal_zone[:N], xbutil[:BDF], nvml[:index], rapl"
    )


def agent_sensors(board_type: BoardType, board: Board) -> list[dict[str, Any]]:
    """The agent's ``sensors`` config for a job on ``board``."""
    root = board_root(board)
    return [agent_entry(spec, root) for spec in board_type.sensors]
