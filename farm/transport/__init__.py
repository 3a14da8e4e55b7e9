"""How the farm reaches a board: one module per transport, behind transport/base.py.

Registered like the agent's backends: a board's ``transport:`` in the lab file names an entry of
:data:`TRANSPORTS` ("module:Class", module relative to this package), imported when first used. The class
builds itself for a board with ``for_board(inventory, board)``. Adding a transport is one module here plus
one line below (and, if it needs settings of its own, a section of the lab file's board schema).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from farm.inventory import Board, Inventory
    from farm.transport.base import Transport

#: name -> "module:Class".
TRANSPORTS: dict[str, str] = {
    "local": "local:LocalTransport",
    "ssh": "ssh:SshTransport",
}


def build(inventory: Inventory, board: Board) -> Transport:
    """A new transport for ``board`` (its ``transport:`` is validated against :data:`TRANSPORTS` at load)."""
    module_name, _, class_name = TRANSPORTS[board.transport].partition(":")
    cls = getattr(importlib.import_module(f".{module_name}", __name__), class_name)
    return cls.for_board(inventory, board)
