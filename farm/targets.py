"""What a sweep's target names: a board type (`zcu104`), or a board's own application CPU
(`<board type>:cpu`, all its cores; `<board type>:cpu:<threads>`), which runs on the boards of its type.
One parser for the inventory, the queues, the ARM CPU model and every place that asks."""

from __future__ import annotations


def parse_board_cpu(target: str) -> tuple[str, int | None] | None:
    """``"pynq-z2:cpu"`` -> ("pynq-z2", None), ``"pynq-z2:cpu:1"`` -> ("pynq-z2", 1); None for anything else
    (a plain board type, or a malformed board CPU such as ``pynq-z2:cpu:0``)."""
    parts = str(target).split(":")
    if len(parts) not in (2, 3) or not parts[0] or parts[1] != "cpu":
        return None
    if len(parts) == 2:
        return parts[0], None
    threads = parts[2]
    if not (threads.isascii() and threads.isdigit() and int(threads) >= 1):
        return None
    return parts[0], int(threads)


def is_board_cpu(target: str) -> bool:
    return parse_board_cpu(target) is not None


def host_type(target: str) -> str:
    """The board type whose boards run a target: ``pynq-z2`` for ``pynq-z2:cpu:1``, else the target."""
    return target.split(":", 1)[0]
