"""``farm lab set BOARD clock_mhz=N ambient_c=N | --reset``: change a running emulated board.

It writes ``emu/clock_set_mhz`` / ``emu/ambient_c`` under the board's root, which its simulator re-reads
every tick, and waits until the simulator shows the new values, so the next run on the board is already
slower (the emulated backend stretches its clock-bound time by nominal / clock) or hotter. ``farm lab down``
removes what was set (:func:`clear_settings`), so a lab comes up again with the catalog's values.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

from farm.config import Settings
from farm.errors import FarmError
from farm.inventory import BoardType
from farm.lab.labfile import LabBoard, boards_from, read_lab_state
from farm.lab.physics.boardsim import load_catalog
from farm.lab.physics.sensorfs import (
    AMBIENT_FILE,
    CLOCK_SET_FILE,
    SensorState,
    read_setting,
    read_state,
    write_atomic,
)
from farm.lab.sshd import cmdline, pid_alive

#: What `farm lab set` may change, and the files the simulator reads them from.
SETTABLE = {"clock_mhz": CLOCK_SET_FILE, "ambient_c": AMBIENT_FILE}
CLOCK_MAX_FACTOR = 1.5  # a set clock may exceed nominal by this much (overclocking a DPU, within reason)
AMBIENT_RANGE_C = (-40.0, 85.0)  # the industrial temperature range
SET_APPLIED_S = 5.0  # how long `set` waits for the simulator to show the new values


def is_boardsim(pid: int | None, root: str | None) -> bool:
    if not pid or not root or not pid_alive(pid):
        return False
    argv = cmdline(pid).split(b"\0")
    return b"farm.lab.physics.boardsim" in argv and root.encode() in argv


def nominal_clock(catalog: dict[str, BoardType], type_name: str) -> float | None:
    board_type = catalog.get(type_name)
    accelerator = board_type.accelerator if board_type else None
    return float(accelerator.clock_mhz) if accelerator and accelerator.clock_mhz else None


class BadSetting(FarmError):
    """`farm lab set` was asked for something that cannot be: a board, key or value to fix (exit 2)."""


def parse_settings(items: list[str]) -> dict[str, float]:
    """``["clock_mhz=150", "ambient_c=40"]`` -> {key: value}; BadSetting names the item that is wrong."""
    out: dict[str, float] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq:
            raise BadSetting(f"{item!r}: expected KEY=VALUE (keys: {', '.join(SETTABLE)})")
        if key not in SETTABLE:
            raise BadSetting(f"{item!r}: unknown key {key!r} (keys: {', '.join(SETTABLE)})")
        if key in out:
            raise BadSetting(f"{key} is given twice")
        try:
            value = float(raw)
        except ValueError:
            raise BadSetting(f"{item!r}: {raw.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise BadSetting(f"{item!r}: not a finite number")
        out[key] = value
    return out


def set_board(
    settings: Settings, name: str, values: dict[str, float] | None = None, *, reset: bool = False
) -> SensorState:
    """Change a running emulated board (see the module docstring): ``values`` from :func:`parse_settings`,
    or ``reset`` to the catalog's. Returns the simulator's first state that shows the change.

    BadSetting for an unknown or non-emulated board or a value out of range; FarmError when the lab or the
    board's simulator is not running, or the simulator does not apply it within ``SET_APPLIED_S``."""
    values = dict(values or {})
    if reset == bool(values):
        raise BadSetting(
            "give KEY=VALUE settings (clock_mhz, ambient_c) or --reset, not "
            + ("both" if reset else "neither")
        )
    boards = boards_from(read_lab_state(settings))
    if not boards:
        raise FarmError("the virtual lab is not up (farm lab up starts it)")
    board = boards.get(name)
    if board is None:
        raise BadSetting(f"no board {name!r} in the virtual lab (boards: {', '.join(boards)})")
    emulated = [b.name for b in boards.values() if b.emulated]
    if not board.emulated or not board.root:
        raise BadSetting(
            f"{name} is a real board of this machine, not emulated: only emulated boards can be set "
            f"({', '.join(emulated) or 'none in this lab'})"
        )
    catalog = load_catalog(settings.inventory_dir)
    board_type = catalog.get(board.type)
    if board_type is None or board_type.thermal is None:
        raise FarmError(f"board type {board.type!r} of {name} is not in the catalog, or has no thermal model")
    nominal = nominal_clock(catalog, board.type)
    if "clock_mhz" in values:
        if nominal is None:
            raise BadSetting(f"{name} ({board.type}) has no accelerator clock in the catalog to change")
        top = nominal * CLOCK_MAX_FACTOR
        if not 0 < values["clock_mhz"] <= top:
            raise BadSetting(
                f"clock_mhz={values['clock_mhz']:g}: out of range for {name} (> 0 and <= {top:g} MHz, "
                f"{CLOCK_MAX_FACTOR:g} x its nominal {nominal:g} MHz)"
            )
    if "ambient_c" in values:
        low, high = AMBIENT_RANGE_C
        if not low <= values["ambient_c"] <= high:
            raise BadSetting(f"ambient_c={values['ambient_c']:g}: out of range ({low:g} to {high:g} C)")
    if not is_boardsim(board.boardsim_pid, board.root):
        raise FarmError(f"the board simulator of {name} is not running (farm lab up restarts it)")
    root = Path(board.root)
    if reset:
        clear_settings(board)
    for key, value in values.items():
        write_atomic(root / SETTABLE[key], f"{value!r}\n")
    want_clock = None if reset else values.get("clock_mhz", read_setting(root, CLOCK_SET_FILE))
    want_ambient = read_setting(root, AMBIENT_FILE)
    if want_ambient is None:
        want_ambient = board_type.thermal.ambient_c
    return _applied(board, want_clock, want_ambient)


def _applied(board: LabBoard, clock_mhz: float | None, ambient_c: float) -> SensorState:
    """The first simulator state that shows these settings: from then on every run sees them."""
    assert board.root
    deadline = time.monotonic() + SET_APPLIED_S
    while True:
        state = read_state(board.root)
        if state is not None and _same(state.clock_set_mhz, clock_mhz) and _same(state.ambient_c, ambient_c):
            return state
        if time.monotonic() > deadline:
            raise FarmError(
                f"the board simulator of {board.name} has not applied the setting within {SET_APPLIED_S:g} s "
                f"(see its log beside {board.root})"
            )
        time.sleep(0.02)


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9))


def clear_settings(board: LabBoard) -> None:
    if board.root:
        for name in SETTABLE.values():
            with contextlib.suppress(FileNotFoundError):
                (Path(board.root) / name).unlink()
