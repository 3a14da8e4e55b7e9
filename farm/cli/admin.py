"""farm worker / farm db."""

from __future__ import annotations

import os
import socket

import click

from farm.cli.common import db_option, handle_errors, require_broker
from farm.config import load_settings
from farm.db import migrate
from farm.db.session import dispose_engines, redact
from farm.errors import FarmError


@click.command()
@click.option(
    "-Q", "--queues", default=None, help="Comma-separated queues (default: compile and every run queue)."
)
@click.option(
    "--board",
    "boards",
    multiple=True,
    help="Drive this board: its type's run jobs, one at a time, health-checked. Repeat it (or A,B) to "
    "drive several from one process (a worker host: a thread per board).",
)
@click.option(
    "-c", "--concurrency", default=1, show_default=True, help="Jobs at once (a board runs one job at a time)."
)
@click.option(
    "-n",
    "--name",
    default=None,
    help="Worker node name (default: farm@<host>, <board>@<host>, or host-<first board>@<host>).",
)
@click.option(
    "--beat",
    is_flag=True,
    help="Also run Celery beat here (one per farm): the reconciler and the scheduled sweeps (farm schedule).",
)
@click.option("-l", "--loglevel", default="INFO", show_default=True, help="Celery's log level.")
@handle_errors
def worker(
    queues: str | None,
    boards: tuple[str, ...],
    concurrency: int,
    name: str | None,
    beat: bool,
    loglevel: str,
) -> None:
    """Run a Celery worker for the farm's queues (needs FARM_BROKER_URL)."""
    settings = load_settings()
    if settings.embedded:
        raise FarmError("farm worker needs a broker: set FARM_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    require_broker(
        settings
    )  # one line and exit 1 (`farm fleet up` restarts it) instead of Celery's retry log
    migrate.ensure_schema(settings.db_url)
    from farm.celery_app import app, configure

    configure(app)
    declared = [q.name for q in app.conf.task_queues]
    names = _board_names(boards)
    pool: list[str] = []
    if len(names) == 1:
        node = name or f"{names[0]}@{socket.gethostname()}"
        chosen = [_bind_board(app, settings, names[0], node)]
        concurrency = 1
    elif names:
        node = name or f"host-{names[0]}@{socket.gethostname()}"
        chosen = _bind_host(app, settings, names, node)
        concurrency = len(names)  # a thread per board: run jobs wait on SSH, not on this CPU
        pool = ["-P", "threads"]
    else:
        node = name or f"farm@{socket.gethostname()}"
        chosen = queues.split(",") if queues else [q for q in declared if not q.startswith("board.")]
    unknown = [q for q in chosen if q not in declared]
    if unknown:
        raise FarmError(f"unknown queue(s) {', '.join(unknown)}; declared: {', '.join(declared)}")
    argv = [
        "worker",
        "-Q",
        ",".join(chosen),
        *pool,
        "-c",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "-l",
        loglevel,
    ]
    argv += ["-n", node, "--without-gossip", "--without-mingle"]
    if beat:
        argv += ["--beat", "--schedule", str(_beat_file(settings))]
        # The embedded beat is a forked process that closes the file descriptors it inherits, and it reads
        # the schedules table: a SQLite connection left open here would leave it SQLite's per-process state
        # on closed descriptors ("locking protocol"). None is open when it forks.
        dispose_engines()
    app.worker_main(argv)


def _board_names(given: tuple[str, ...]) -> list[str]:
    """--board A --board B and --board A,B alike, in order, each once."""
    names = [part.strip() for value in given for part in value.split(",")]
    if any(not n for n in names):
        raise FarmError(f"--board: an empty board name in {','.join(given)!r}")
    return list(dict.fromkeys(names))


def _beat_file(settings) -> object:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.data_dir / "celerybeat-schedule"


@click.command()
@click.option("-l", "--loglevel", default="INFO", show_default=True, help="Celery's log level.")
@handle_errors
def beat(loglevel: str) -> None:
    """Run Celery beat: the reconciler's periodic task and the scheduled sweeps of the schedules table
    (farm.schedules.beat; one beat per farm; needs FARM_BROKER_URL)."""
    settings = load_settings()
    if settings.embedded:
        raise FarmError(
            "farm beat needs a broker: set FARM_BROKER_URL (embedded sweeps reconcile themselves)"
        )
    migrate.ensure_schema(settings.db_url)
    from farm.celery_app import app, configure

    configure(app)
    app.start(["beat", "-l", loglevel, "--schedule", str(_beat_file(settings))])


def _bound_inventory(settings, boards: list[str]):
    """The inventory, with every board of this worker known to it and in the database, none retired."""
    from farm.db.session import session_scope
    from farm.fleet import states
    from farm.inventory import load_inventory

    inventory = load_inventory(settings.inventory_dir)
    for board in boards:
        inventory.board(board)  # an unknown name: says which boards there are
    with session_scope(settings.db_url) as s:
        states.sync_boards(s, inventory)
    for board in boards:
        if states.get_state(settings.db_url, board).state == "retired":
            raise FarmError(f"board {board} is retired")
    return inventory


def _bind_board(app, settings, board: str, node: str) -> str:
    """Set up a worker that drives one board: it listens on the board's own queue, and its keeper adds the
    type's run queue only while the board is healthy. Returns the queue to start with."""
    from celery.signals import worker_ready, worker_shutdown

    from farm.fleet import states
    from farm.fleet.keeper import BoardKeeper
    from farm.queues import board_queue, run_queue

    inventory = _bound_inventory(settings, [board])
    run_q = run_queue(inventory.board(board).type)
    os.environ["FARM_BOARD"] = board  # the pool's processes inherit it: run jobs use this board only
    os.environ.pop("FARM_BOARDS", None)
    keeper = BoardKeeper(
        load_settings(),
        inventory,
        board,
        consume=lambda: app.control.add_consumer(run_q, destination=[node], reply=False),
        stop_consuming=lambda: app.control.cancel_consumer(run_q, destination=[node], reply=False),
    )

    @worker_ready.connect(weak=False)
    def _ready(**_: object) -> None:
        states.set_worker(settings.db_url, board, node)
        keeper.start()

    @worker_shutdown.connect(weak=False)
    def _shutdown(**_: object) -> None:
        keeper.stop()
        states.set_worker(settings.db_url, board, None)

    return board_queue(board)


def _bind_host(app, settings, boards: list[str], node: str) -> list[str]:
    """Set up a worker host that drives several boards (farm/fleet/host.py): it listens on each board's
    own queue, and a keeper per board adds its type's run queue while at least one board of that type is
    healthy. Returns the queues to start with."""
    from celery.signals import worker_ready, worker_shutdown

    from farm.fleet import host
    from farm.queues import board_queue

    inventory = _bound_inventory(settings, boards)
    os.environ["FARM_BOARDS"] = ",".join(boards)  # read by the run jobs (threads of this process)
    os.environ.pop("FARM_BOARD", None)
    worker_host = host.WorkerHost(
        load_settings(),
        inventory,
        boards,
        consume=lambda q: app.control.add_consumer(q, destination=[node], reply=False),
        cancel=lambda q: app.control.cancel_consumer(q, destination=[node], reply=False),
    )
    host.install(worker_host)

    @worker_ready.connect(weak=False)
    def _ready(**_: object) -> None:
        worker_host.start(node)

    @worker_shutdown.connect(weak=False)
    def _shutdown(**_: object) -> None:
        worker_host.stop()

    return [board_queue(b) for b in boards]


@click.group()
def db() -> None:
    """The results database schema (Alembic migrations)."""


@db.command()
@db_option
@handle_errors
def upgrade(db_url: str | None) -> None:
    """Migrate the database to the latest schema."""
    url = db_url or load_settings().db_url
    migrate.upgrade(url)
    click.echo(f"{redact(url)}: at revision {migrate.current_revision(url)}")


@db.command()
@db_option
@handle_errors
def current(db_url: str | None) -> None:
    """Print the database's schema revision and the latest one."""
    url = db_url or load_settings().db_url
    click.echo(
        f"{redact(url)}: at revision {migrate.current_revision(url)} (latest {migrate.head_revision()})"
    )
