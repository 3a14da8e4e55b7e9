"""farm fleet: list, check, drain, enable, retire, trust, up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import click
from sqlalchemy import select

from farm.cli.common import db_option, format_option, handle_errors, require_broker, settings_for, wide_option
from farm.cli.render import Column, local_time, table
from farm.db.models import BoardRow
from farm.db.session import session_scope
from farm.errors import FarmError
from farm.fleet import states
from farm.fleet.health import check_board
from farm.fleet.policy import HealthPolicy
from farm.inventory import Board, load_inventory
from farm.queries.common import iso


@click.group()
def fleet() -> None:
    """Boards and their states: idle, running, bad, maintenance, retired."""


def _inventory_and_sync(settings):
    inventory = load_inventory(settings.inventory_dir)
    with session_scope(settings.db_url) as s:
        states.sync_boards(s, inventory)
    return inventory


#: `farm fleet list`'s table (--format json keeps every field, timestamps ISO 8601 in UTC).
LIST_COLUMNS = [
    ("board", "board"),
    ("type", "type"),
    Column("where", "where", drop=1),
    Column("state", "state", color=lambda v: {"bad": "red", "maintenance": "yellow", "retired": "yellow"}.get(v)),
    ("health", "health"),
    Column("checked_at", "checked", fmt=local_time, drop=2),
    Column("job", "job"),
    Column("worker", "worker", drop=3),
    Column("reason", "reason", wrap=True),
]  # fmt: skip

#: `farm fleet check`'s table: one line per board, the reason whole (it wraps) since it says what to do.
CHECK_COLUMNS = [
    ("board", "board"),
    Column("result", "check", color=lambda v: {"ok": "green", "FAILED": "red"}.get(v)),
    ("state", "state now"),
    Column("reason", "reason", wrap=True),
]


@fleet.command(name="list")
@format_option("table", "json")
@wide_option
@db_option
@handle_errors
def list_cmd(fmt: str, wide: bool, db_url: str | None) -> None:
    """Every board in the inventory with its state, worker, current job and last health check."""
    settings = settings_for(db_url)
    inventory = _inventory_and_sync(settings)
    rows = []
    with session_scope(settings.db_url) as s:
        db = {r.name: r for r in s.scalars(select(BoardRow))}
        for b in inventory.boards:
            r = db[b.name]
            rows.append(
                {
                    "board": b.name,
                    "type": b.type,
                    "where": "local" if b.transport == "local" else f"{b.ssh.host}:{b.ssh.port}",
                    "state": r.state,
                    "reason": r.state_reason,
                    "worker": r.worker,
                    "job": r.current_job_id,
                    "health": None if r.last_health_ok is None else ("ok" if r.last_health_ok else "FAILED"),
                    "checked_at": iso(r.last_health_at),
                }
            )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(table(rows, LIST_COLUMNS, wide=wide, empty="no boards in the inventory"))


@fleet.command()
@click.argument("boards", nargs=-1)
@click.option("--force", is_flag=True, help="Also check boards that are running a job.")
@format_option("table", "json", more="json: one object per board (ok: true, false, or null when skipped).")
@wide_option
@db_option
@handle_errors
def check(boards: tuple[str, ...], force: bool, fmt: str, wide: bool, db_url: str | None) -> None:
    """Health-check boards (all by default): reachable, host key, agent runs, backend loads, sensors read,
    free space where artifacts go. An operator's check acts at once: a pass brings a bad board back.
    Exit 1 when a board fails."""
    settings = settings_for(db_url)
    inventory = _inventory_and_sync(settings)
    chosen = [inventory.board(n) for n in boards] if boards else inventory.boards
    policy = HealthPolicy.from_settings(settings)
    rows = []
    for board in chosen:
        state = states.get_state(settings.db_url, board.name).state
        if state == "retired" or (state == "running" and not force):
            reason = f"skipped: the board is {state}" + (" (--force checks it)" if state == "running" else "")
            rows.append({"board": board.name, "ok": None, "result": "skipped", "state": state, "reason": reason,
                         "checks": []})  # fmt: skip
            continue
        report = check_board(settings.db_url, inventory, board, policy=policy, by_operator=True)
        rows.append(
            {
                "board": board.name,
                "ok": report.ok,
                "result": "ok" if report.ok else "FAILED",
                "state": states.get_state(settings.db_url, board.name).state,
                "reason": report.reason,
                "checks": report.checks,
            }
        )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        click.echo(table(rows, CHECK_COLUMNS, wide=wide, empty="no boards to check"))
    if any(r["ok"] is False for r in rows):
        raise SystemExit(1)


def _move(db_url: str | None, board: str, to: str, reason: str, only_from: tuple[str, ...]) -> None:
    settings = settings_for(db_url)
    inventory = _inventory_and_sync(settings)
    inventory.board(board)
    before = states.get_state(settings.db_url, board).state
    if not states.set_state(settings.db_url, board, to, reason, only_from=only_from):
        raise FarmError(f"board {board} is {before}: cannot go to {to} from there")
    note = " (it finishes its current job first)" if before == "running" and to != "running" else ""
    click.echo(f"{board}: {before} -> {to}{note}")


@fleet.command()
@click.argument("board")
@click.option(
    "--reason", default="drained by an operator", show_default=True, help="Why, for the board's history."
)
@db_option
@handle_errors
def drain(board: str, reason: str, db_url: str | None) -> None:
    """Take a board out of service for maintenance; a running job finishes, no new one starts."""
    _move(db_url, board, "maintenance", reason, ("idle", "running", "bad", "maintenance"))


@fleet.command()
@click.argument("board")
@db_option
@handle_errors
def enable(board: str, db_url: str | None) -> None:
    """Put a drained or bad board back in service (its worker health-checks it before the next job)."""
    _move(db_url, board, "idle", "enabled by an operator", ("maintenance", "bad", "idle"))


@fleet.command()
@click.argument("board")
@click.option(
    "--force", is_flag=True, help="Even if its job is running under a live lease (its worker is gone)."
)
@db_option
@handle_errors
def release(board: str, force: bool, db_url: str | None) -> None:
    """Free a board stuck as running: its job is not running any more, or (--force) you know its worker is
    gone; the job then goes back to the queue."""
    from farm.db.models import JobRow
    from farm.db.session import session_scope
    from farm.leases import cleared, expired

    settings = settings_for(db_url)
    _inventory_and_sync(settings).board(board)
    st = states.get_state(settings.db_url, board)
    if st.state != "running":
        raise FarmError(f"board {board} is {st.state}, not running: nothing to release (`farm fleet enable`)")
    with session_scope(settings.db_url) as s:
        row = s.get(BoardRow, board)
        job = s.get(JobRow, row.current_job_id) if row is not None and row.current_job_id else None
        live = job is not None and job.state == "running" and not expired(job.lease_expires_at)
        if live and not force:
            raise FarmError(
                f"board {board} runs job {job.id} under {job.lease_owner}'s lease until "
                f"{job.lease_expires_at:%H:%M:%S}: wait for it, or use --force if that worker is gone"
            )
        if live:  # the operator knows better: the job goes back to the queue for the reconciler to publish
            job.state, job.published_at, job.board_name = "queued", None, None
            for key, value in cleared().items():
                setattr(job, key, value)
        states.set_state(
            settings.db_url, board, "idle", "released by an operator", only_from=("running",), session=s
        )
    click.echo(f"{board}: running -> idle" + (f" (job {job.id} queued again)" if live else ""))


@fleet.command()
@click.argument("board")
@click.option(
    "--reason", default="retired by an operator", show_default=True, help="Why, for the board's history."
)
@db_option
@handle_errors
def retire(board: str, reason: str, db_url: str | None) -> None:
    """Retire a board for good: it never takes a job again."""
    _move(db_url, board, "retired", reason, ("idle", "running", "bad", "maintenance"))


@fleet.command()
@click.argument("board")
@click.option(
    "--yes", is_flag=True, help="Pin without asking (after checking the fingerprint some other way)."
)
@handle_errors
def trust(board: str, yes: bool) -> None:
    """Show BOARD's SSH host key fingerprint and pin it in the board's known_hosts file."""
    from farm.config import load_settings
    from farm.transport.hostkeys import fingerprint_sha256, lookup_host_key, pin_host_key, scan_host_key

    inventory = load_inventory(load_settings().inventory_dir)
    b = inventory.board(board)
    if b.ssh is None:
        raise FarmError(f"board {board} is not reached over SSH")
    known_hosts = inventory.resolve(b.ssh.known_hosts)
    key = scan_host_key(b.ssh.host, b.ssh.port, timeout=10)
    click.echo(f"{board} ({b.ssh.host}:{b.ssh.port}) offers {key.get_name()} {fingerprint_sha256(key)}")
    pinned = lookup_host_key(known_hosts, b.ssh.host, b.ssh.port) if known_hosts.exists() else []
    for old in pinned:
        same = old.asbytes() == key.asbytes()
        click.echo(
            f"currently pinned: {fingerprint_sha256(old)}" + (" (the same)" if same else " (DIFFERENT)")
        )
        if same:
            return
    if not yes and not click.confirm(
        "Compare it with the board's console (ssh-keygen -lf on the board). Pin it?"
    ):
        raise SystemExit(1)
    pin_host_key(known_hosts, b.ssh.host, b.ssh.port, key)
    click.echo(f"pinned in {known_hosts}")


def worker_groups(boards: list[Board], per_worker: int) -> list[list[str]]:
    """The boards, in groups of up to ``per_worker`` for one worker process each. A type's boards are kept
    together (a host that serves one type never holds a job for a busy type while another waits): each
    type fills whole groups, and what is left of each type is packed into shared groups largest first,
    never split."""
    by_type: dict[str, list[str]] = {}
    for board in boards:
        by_type.setdefault(board.type, []).append(board.name)
    groups: list[list[str]] = []
    rests: list[list[str]] = []
    for names in by_type.values():
        whole = len(names) - len(names) % per_worker
        groups += [names[i : i + per_worker] for i in range(0, whole, per_worker)]
        if names[whole:]:
            rests.append(names[whole:])
    shared: list[list[str]] = []
    for rest in sorted(rests, key=len, reverse=True):  # first fit, largest first
        room = next((g for g in shared if len(g) + len(rest) <= per_worker), None)
        if room is None:
            shared.append(list(rest))
        else:
            room += rest
    return groups + shared


def worker_commands(
    boards: list[Board], host: str, per_worker: int = 1, compile_worker: bool = True
) -> dict[str, list[str]]:
    """Node name -> `farm` arguments of every worker `farm fleet up` starts: the board workers (one per
    board, or worker hosts of up to ``per_worker`` boards), a compile worker, and the control worker."""
    commands: dict[str, list[str]] = {}
    if per_worker == 1:
        for b in boards:
            commands[f"{b.name}@{host}"] = ["worker", "--board", b.name, "-n", f"{b.name}@{host}"]
    else:
        for i, group in enumerate(worker_groups(boards, per_worker)):
            node = f"host-{i}@{host}"
            commands[node] = ["worker", *(a for name in group for a in ("--board", name)), "-n", node]
    if compile_worker:
        commands[f"compile@{host}"] = ["worker", "-Q", "compile", "-n", f"compile@{host}"]
    # The farm's housekeeping: the reconciler's schedule (beat) and its runs, never behind a long compile.
    commands[f"control@{host}"] = ["worker", "-Q", "control", "-n", f"control@{host}", "--beat"]
    return commands


@fleet.command()
@click.option("--no-compile", is_flag=True, help="Do not start a compile worker.")
@click.option(
    "--boards-per-worker",
    type=click.IntRange(min=1),
    default=None,
    help="Boards one worker process drives [default: FARM_BOARDS_PER_WORKER, else 1]. Each process costs "
    "~180 MB; a type's boards are kept together.",
)
@click.option("-l", "--loglevel", default="INFO", show_default=True, help="The workers' Celery log level.")
@handle_errors
def up(no_compile: bool, boards_per_worker: int | None, loglevel: str) -> None:
    """Start the board workers (one per board, or one per --boards-per-worker boards), a compile worker
    and the control worker (Celery beat and the reconciler); restart any that dies."""
    from farm.config import load_settings

    settings = load_settings()
    if settings.embedded:
        raise FarmError("farm fleet up needs a broker: set FARM_BROKER_URL")
    require_broker(settings)
    inventory = load_inventory(settings.inventory_dir)
    per_worker = boards_per_worker or settings.boards_per_worker
    commands = worker_commands(inventory.boards, socket.gethostname(), per_worker, not no_compile)
    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def start(node: str) -> None:
        argv = [sys.executable, "-m", "farm.cli.main", *commands[node], "-l", loglevel]
        procs[node] = subprocess.Popen(argv, start_new_session=True)
        click.echo(f"started {node} (pid {procs[node].pid})")

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for node in commands:
        start(node)
    while not stopping:
        time.sleep(1)
        for node, proc in list(procs.items()):
            if proc.poll() is not None and not stopping:
                click.echo(f"{node} exited with {proc.returncode}: restarting", err=True)
                time.sleep(2)
                start(node)
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
