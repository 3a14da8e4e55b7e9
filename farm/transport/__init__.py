"""How the farm reaches a board: one module per transport, behind transport/base.py."""
