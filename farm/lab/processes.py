"""The virtual lab's processes: ``farm lab up | down | status`` (docs/virtual-lab-usage.md).

``up`` renders the template ``inventory/virtual-lab.yaml`` into a concrete lab file,
``$FARM_DATA_DIR/lab/virtual-lab.yaml``, and starts what it describes. For every emulated board:

* an emulation root ``<data>/lab/boards/<name>/root`` with the sensor files (:mod:`farm.lab.physics.sensorfs`) and
  ``emu/board.json`` (board, type, serial ``EMU-<type>-<n>``, dpu_fingerprint, time_scale);
* a board simulator process (``python -m farm.lab.physics.boardsim``);
* a real sshd (:mod:`farm.lab.sshd`) on its own 127.0.0.x address (from 127.0.0.101) and port, with its
  own host key pinned in its ``known_hosts`` and the lab's client key (``<data>/lab/ssh/id_ed25519``) as the
  only one it accepts. Without openssh-server (no ``sshd`` binary at ``FARM_LAB_SSHD``, default
  /usr/sbin/sshd) the emulated boards use ``transport: local`` instead; everything else is the same.

Pids, addresses and ports are kept in ``<data>/lab/state.json``. ``up`` is idempotent: run again, it
keeps what runs (same addresses, ports, keys), restarts what died, adds boards it is asked for, and
restarts the simulators only when the time scale changes. ``down`` stops what ``up`` started (processes
named in the state file, checked by their command line, and commands left over from the boards' SSH
sessions) and removes the lab file. A lock file keeps two ``up``/``down`` from running at once.

``farm lab set`` lives in farm/lab/board_set.py; ``--compile-host container`` (a compile host with the
farm's compile image in podman, reached over SSH) in farm/lab/compile_host.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from farm.config import Settings, load_settings
from farm.errors import FarmError
from farm.inventory import REMOTE_DIR, BoardType, load_inventory
from farm.lab import compile_host as compile_hosts
from farm.lab.board_set import clear_settings, is_boardsim, nominal_clock
from farm.lab.labfile import (
    TEMPLATE,
    BoardStatus,
    LabBoard,
    LabHandle,
    boards_from,
    dpu_fingerprint,
    lab_dir,
    lab_file,
    load_template,
    locked,
    next_address,
    read_lab_state,
    render,
    select_boards,
    state_file,
    user,
    write_lab_state,
)
from farm.lab.physics.boardsim import load_catalog
from farm.lab.physics.sensorfs import (
    AMBIENT_FILE,
    BOARD_FILE,
    LOAD_FILE,
    STATE_FILE,
    SensorFs,
    read_setting,
    read_state,
    write_atomic,
)
from farm.lab.sshd import (
    SSHD,
    ClientKey,
    keep_or_start,
    pid_alive,
    serves,
    sshd_available,
    stop_server,
)

SSHD_ENV = "FARM_LAB_SSHD"
BOARDSIM_READY_S = 20.0


def default_sshd() -> str:
    return str(load_settings().lab_sshd or SSHD)


# ---------------------------------------------------------------------------------------------- processes
def _start_boardsim(settings: Settings, board: LabBoard, log: Path) -> int:
    assert board.root
    argv = [
        sys.executable,
        "-m",
        "farm.lab.physics.boardsim",
        "--root",
        board.root,
        "--type",
        board.type,
        "--time-scale",
        repr(board.time_scale or 1.0),
        "--inventory",
        str(settings.inventory_dir),
    ]
    # The simulator is ours to find again (its root is in its command line), so it may outlive this process.
    state = Path(board.root) / STATE_FILE
    with contextlib.suppress(FileNotFoundError):
        state.unlink()
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True, cwd=log.parent
        )
    deadline = time.monotonic() + BOARDSIM_READY_S
    while not state.exists():
        if proc.poll() is not None:
            raise FarmError(f"the board simulator of {board.name} exited with {proc.returncode}: see {log}")
        if time.monotonic() > deadline:
            proc.kill()
            raise FarmError(
                f"the board simulator of {board.name} did not start within {BOARDSIM_READY_S:.0f} s"
            )
        time.sleep(0.05)
    return proc.pid


def _stop_boardsim(pid: int | None, root: str | None, timeout_s: float = 5.0) -> bool:
    if not is_boardsim(pid, root):
        return False
    assert pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
    return True


def _markers(board: LabBoard) -> list[str]:
    return [f"{p}/" for p in (board.sshd_dir, board.work_dir) if p]


# ---------------------------------------------------------------------------------------------- API
def up(
    settings: Settings,
    time_scale: float | None = None,
    boards: list[str] | None = None,
    sshd_path: str | None = None,
    template: Path | None = None,
    keep_local: bool = True,
    compile_host: str | None = None,
) -> LabHandle:
    """Bring the virtual lab up (or make sure it is up): see the module docstring. ``boards`` names boards
    or board types of the template (default: all of them), and the template's local boards (this machine's
    CPU) unless ``keep_local`` is False; boards already running stay in the lab.
    ``sshd_path`` is the OpenSSH server binary (default ``FARM_LAB_SSHD`` or /usr/sbin/sshd).
    ``compile_host``: ``"container"`` (compiles in the farm's image over SSH, farm/lab/compile_host.py),
    ``"none"`` (in the workers), or None (what the running lab has; none for a new lab)."""
    if compile_host not in (None, "none", "container"):
        raise FarmError(f"unknown compile host kind {compile_host!r} (none or container)")
    if time_scale is not None and not 0 < time_scale <= 1:
        raise FarmError("the time scale must be in (0, 1] (0.01 runs emulated time 100x faster)")
    template_path = template or settings.inventory_dir / TEMPLATE
    tpl = load_template(template_path)
    catalog = load_catalog(settings.inventory_dir)
    selected = select_boards(tpl, boards, keep_local)
    for tb in selected:
        board_type = catalog.get(tb.type)
        if board_type is None:
            raise FarmError(f"{template_path}: board {tb.name}: unknown board type {tb.type!r}")
        if tb.transport != "local" and (
            board_type.emulation is None or board_type.power is None or board_type.thermal is None
        ):
            raise FarmError(f"board type {tb.type!r} cannot be emulated (no emulation/power/thermal model)")
    sshd_path = sshd_path or default_sshd()
    use_sshd = sshd_available(sshd_path)
    transport = "ssh" if use_sshd else "local"
    notes: list[str] = []
    if not use_sshd:
        notes.append(
            f"openssh-server not found ({sshd_path}): the emulated boards run on transport local "
            "(same emulated sensors and simulators, no SSH). Install openssh-server for SSH boards."
        )
    started: list[str] = []
    serials: dict[str, str] = {}
    counters: dict[str, int] = {}
    for b in tpl.boards:
        counters[b.type] = counters.get(b.type, 0) + 1
        serials[b.name] = f"EMU-{b.type}-{counters[b.type]}"
    directory = lab_dir(settings)
    if not re.fullmatch(REMOTE_DIR, str(directory)) or ".." in directory.parts:
        raise FarmError(
            f"the lab folder {directory} is not a plain absolute path (letters, digits, _ . / - only), which "
            "a lab file needs for its boards' paths: set FARM_DATA_DIR to such a folder"
        )
    with locked(settings):
        state = read_lab_state(settings)
        current = boards_from(state)
        scale = time_scale if time_scale is not None else float(state.get("time_scale") or tpl.time_scale)
        client = ClientKey.create(directory / "ssh" / "id_ed25519", "farm-virtual-lab") if use_sshd else None
        builder = compile_hosts.from_state(state)
        try:
            for tb in selected:
                if tb.transport == "local":
                    current[tb.name] = LabBoard(name=tb.name, type=tb.type, emulated=False, transport="local")
                    continue
                board = current.get(tb.name)
                if board is not None and board.type != tb.type:  # the template changed under a running lab
                    down_board(board)
                    board = None
                if board is None:
                    board = LabBoard(name=tb.name, type=tb.type, emulated=True, transport=transport)
                current[tb.name] = (
                    board  # recorded before anything starts, so `down` finds it whatever happens
                )
                board.serial = serials[tb.name]
                _prepare_board(directory, board, catalog[tb.type], scale)
            for board in current.values():
                if not board.emulated:
                    continue
                if use_sshd:
                    assert client is not None
                    _ensure_sshd(board, client, sshd_path, current, started)
                elif board.sshd_pid:  # sshd went away since the lab came up: its boards go local
                    down_board(board, simulator=False)
                board.transport = transport
                _ensure_boardsim(settings, directory, board, scale, started)
            kind = compile_host or (builder.kind if builder else "none")
            if kind == "container":
                builder = compile_hosts.ensure(
                    settings, directory, builder, client, sshd_path, started, notes
                )
            elif builder is not None:
                started += [f"stopped {line}" for line in compile_hosts.down(settings, builder)]
                builder = None
        finally:
            order = {b.name: i for i, b in enumerate(tpl.boards)}
            current = dict(sorted(current.items(), key=lambda kv: order.get(kv[0], len(order))))
            kept = builder.as_state() if builder is not None else None
            write_lab_state(settings, scale, current, transport, kept)
        path = lab_file(settings)
        hosts = compile_hosts.lab_lines(settings, builder, client, user())
        write_atomic(path, render(settings, current, client, scale, hosts))
        try:
            load_inventory(settings.inventory_dir, lab=str(path))
        except FarmError as exc:
            raise FarmError(f"the rendered lab file does not validate: {exc}") from None
    return LabHandle(
        lab_file=path,
        state_file=state_file(settings),
        transport=transport,
        time_scale=scale,
        boards=list(current.values()),
        notes=notes,
        started=started,
        compile_host=builder.as_state() if builder is not None else None,
    )


def _prepare_board(directory: Path, board: LabBoard, board_type: BoardType, scale: float) -> None:
    """The board's folders, its sensor tree and emu/board.json."""
    board_dir = directory / "boards" / board.name
    board.root = str(board_dir / "root")
    board.sshd_dir = str(board_dir / "sshd")
    board.work_dir = str(board_dir / "work")
    Path(board.work_dir).mkdir(parents=True, exist_ok=True)
    SensorFs(board.root, board_type, board.type).layout()
    board_json = {
        "board": board.name,
        "type": board.type,
        "serial": board.serial,
        "dpu_fingerprint": dpu_fingerprint(board_type),
        "time_scale": scale,
    }
    write_atomic(Path(board.root) / BOARD_FILE, json.dumps(board_json) + "\n")
    load = Path(board.root) / LOAD_FILE
    if not load.exists():  # idle until the emulated backend says otherwise (never reset a running board's)
        write_atomic(load, "0\n")


def _ensure_sshd(
    board: LabBoard, client: ClientKey, sshd_path: str, current: dict[str, LabBoard], started: list[str]
) -> None:
    """Keep the board's sshd if it runs (same address, port, host key); else start it, on the same port
    when that is still free."""
    board.host = board.host or next_address(current)
    assert board.sshd_dir and board.work_dir
    try:
        server, fresh = keep_or_start(
            Path(board.sshd_dir),
            board.host,
            client,
            port=board.port,
            pid=board.sshd_pid,
            work_dir=Path(board.work_dir),
            sshd_path=sshd_path,
        )
    except RuntimeError as exc:
        raise FarmError(f"could not start sshd for {board.name}: {exc}") from None
    if not fresh:
        return
    board.port, board.sshd_pid = server.port, server.pid
    started.append(f"{board.name}: sshd {board.host}:{board.port} (pid {board.sshd_pid})")


def _ensure_boardsim(
    settings: Settings, directory: Path, board: LabBoard, scale: float, started: list[str]
) -> None:
    """Keep the board's simulator if it runs at this time scale; else (re)start it."""
    if is_boardsim(board.boardsim_pid, board.root) and board.time_scale == scale:
        return
    _stop_boardsim(board.boardsim_pid, board.root)
    board.boardsim_pid = None
    board.time_scale = scale
    _update_board_json(board, scale)
    board.boardsim_pid = _start_boardsim(settings, board, directory / "boards" / board.name / "boardsim.log")
    started.append(f"{board.name}: board simulator (pid {board.boardsim_pid})")


def _update_board_json(board: LabBoard, scale: float) -> None:
    assert board.root
    path = Path(board.root) / BOARD_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    doc["time_scale"] = scale
    write_atomic(path, json.dumps(doc) + "\n")


def down_board(board: LabBoard, simulator: bool = True) -> list[str]:
    """Stop one board's simulator and sshd (with whatever its SSH sessions left running)."""
    stopped = []
    if simulator and _stop_boardsim(board.boardsim_pid, board.root):
        stopped.append(f"{board.name}: board simulator (pid {board.boardsim_pid})")
    if board.sshd_dir and stop_server(board.sshd_pid, board.sshd_dir, _markers(board)):
        stopped.append(f"{board.name}: sshd {board.host}:{board.port} (pid {board.sshd_pid})")
    board.sshd_pid = None
    if simulator:
        board.boardsim_pid = None
    return stopped


def down(settings: Settings) -> list[str]:
    """Stop everything ``up`` started (and only that) and remove the lab file. Returns what was stopped."""
    with locked(settings):
        state = read_lab_state(settings)
        stopped: list[str] = []
        for board in boards_from(state).values():
            stopped += down_board(board)
            clear_settings(board)
        stopped += compile_hosts.down(settings, compile_hosts.from_state(state))
        for path in (lab_file(settings), state_file(settings)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return stopped


def status(settings: Settings) -> list[BoardStatus]:
    """Each board of the running lab: sshd up? simulator up? temperature and clock now, and what
    `farm lab set` changed."""
    rows = []
    try:
        catalog = load_catalog(settings.inventory_dir)
    except Exception:  # status must show the boards even when the catalog does not load
        catalog = {}
    for board in boards_from(read_lab_state(settings)).values():
        sshd_up: bool | None = None
        where = "local"
        if board.transport == "ssh" and board.sshd_dir and board.host and board.port:
            where = f"{board.host}:{board.port}"
            sshd_up = serves(board.sshd_pid, Path(board.sshd_dir) / "sshd_config") and _banner(
                board.host, board.port
            )
        row = BoardStatus(
            name=board.name,
            type=board.type,
            transport=board.transport,
            where=where,
            sshd_up=sshd_up,
            boardsim_up=is_boardsim(board.boardsim_pid, board.root) if board.emulated else None,
        )
        sensed = read_state(board.root) if board.emulated and board.root else None
        if sensed is not None:
            row.temp_c = round(sensed.temp_c, 1)
            row.clock_mhz = round(sensed.clock_mhz, 1)
            row.power_w = round(sensed.power_w, 2)
            row.throttled = sensed.throttled
            row.age_s = round(max(0.0, time.time() - sensed.wall_time), 1)
            row.clock_set_mhz = sensed.clock_set_mhz
            row.ambient_c = round(sensed.ambient_c, 1)
            row.ambient_set = board.root is not None and read_setting(board.root, AMBIENT_FILE) is not None
            row.nominal_clock_mhz = nominal_clock(catalog, board.type)
        rows.append(row)
    return rows


def _banner(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.settimeout(1)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
