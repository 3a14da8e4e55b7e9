"""Commands of `farm lab` (see farm/cli/lab.py): up, down, status and set of the virtual lab
(farm/lab/processes.py)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from farm.cli.common import format_option, handle_errors


def _settings():
    from farm.config import load_settings

    return load_settings()


@click.command(name="up")
@click.option(
    "--time-scale",
    type=float,
    default=None,
    help="Wall seconds per emulated second, in (0, 1]: 0.01 runs the boards' time 100x faster "
    "(default: the running lab's, else the template's 1.0).",
)
@click.option(
    "--boards",
    default=None,
    metavar="A,B",
    help="Only these boards (names or board types), plus this machine's CPU (local-cpu) [default: all].",
)
@click.option(
    "--local-cpu/--no-local-cpu",
    default=True,
    show_default=True,
    help="With --boards: keep this machine's CPU (the measured baseline) in the lab.",
)
@click.option(
    "--compile-host",
    type=click.Choice(["none", "container"]),
    default=None,
    help="container: compile in the farm's compile image (podman) on a compile host reached over SSH, "
    "as a lab with Docker hosts does (builds the image once per machine); none: in the workers "
    "[default: the running lab's, else none].",
)
@format_option("table", "json", more="JSON: the boards, the lab file and what started (notes go to stderr).")
@handle_errors
def up(
    time_scale: float | None, boards: str | None, local_cpu: bool, compile_host: str | None, fmt: str
) -> None:
    """Start the virtual lab: one sshd and one board simulator per emulated board (idempotent)."""
    from farm.lab import processes

    chosen = [b.strip() for b in boards.split(",") if b.strip()] if boards else None
    handle = processes.up(
        _settings(), time_scale=time_scale, boards=chosen, keep_local=local_cpu, compile_host=compile_host
    )
    if fmt == "json":
        for note in handle.notes:
            click.secho(f"note: {note}", fg="yellow", err=True)
        doc = {
            "lab_file": str(handle.lab_file),
            "export": f"export FARM_LAB={handle.lab_file}",
            "time_scale": handle.time_scale,
            "transport": handle.transport,
            "started": handle.started,
            "compile_host": handle.compile_host,
            "boards": [
                {k: v for k, v in asdict(b).items() if k not in ("sshd_dir", "work_dir")}
                for b in handle.boards
            ],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    for note in handle.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    for line in handle.started:
        click.echo(f"started {line}")
    if not handle.started:
        click.echo("the virtual lab is already up: nothing to start")
    for b in handle.boards:
        where = f"{b.host}:{b.port}" if b.transport == "ssh" else "local"
        kind = f"emulated, {b.serial}" if b.emulated else "real (this machine)"
        click.echo(f"  {b.name:<22} {b.type:<18} {where:<22} {kind}")
    if handle.compile_host:
        from farm.lab.compile_host import CompileHost

        ch = CompileHost(**handle.compile_host)
        click.echo(f"  {'lab-compile':<22} {'compile host':<18} {f'{ch.host}:{ch.port}':<22} {ch.summary()}")
    click.echo(f"time scale {handle.time_scale:g}; lab file {handle.lab_file}")
    click.echo("use it with:")
    click.echo(f"  export FARM_LAB={handle.lab_file}")
    click.echo("then e.g. `farm fleet check` or `farm submit sweep.yaml`; stop it with `farm lab down`.")


@click.command(name="down")
@handle_errors
def down() -> None:
    """Stop everything `farm lab up` started and remove the rendered lab file."""
    from farm.lab import processes

    stopped = processes.down(_settings())
    for line in stopped:
        click.echo(f"stopped {line}")
    click.echo("the virtual lab is down" if stopped else "no virtual lab processes were running")


@click.command(name="status")
@format_option("table", "json", more="JSON: every field of every board.")
@handle_errors
def status(fmt: str) -> None:
    """Each board of the virtual lab: sshd up? simulator up? temperature, clock and power now."""
    from farm.lab import compile_host, processes

    settings = _settings()
    rows = processes.status(settings)
    builder = compile_host.from_state(processes.read_lab_state(settings))
    if fmt == "json":
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("the virtual lab is not up (farm lab up starts it)")
        return

    def mark(value: bool | None) -> str:
        return "-" if value is None else ("up" if value else "DOWN")

    click.echo(
        f"{'board':<22} {'type':<18} {'where':<22} {'sshd':<5} {'sim':<5} {'temp C':>7} {'clock MHz':>10} "
        f"{'power W':>8}  state"
    )
    for r in rows:
        temp = "-" if r.temp_c is None else f"{r.temp_c:.1f}"
        clock = "-" if r.clock_mhz is None else f"{r.clock_mhz:.0f}"
        power = "-" if r.power_w is None else f"{r.power_w:.2f}"
        notes = []
        if r.throttled:
            notes.append("THROTTLED")
        if r.clock_set_mhz is not None:
            nominal = f"; nominal {r.nominal_clock_mhz:g}" if r.nominal_clock_mhz else ""
            notes.append(f"clock {r.clock_set_mhz:g} MHz (set{nominal})")
        if r.ambient_set and r.ambient_c is not None:
            notes.append(f"ambient {r.ambient_c:g} C (set)")
        note = ", ".join(notes)
        if r.age_s is not None and r.age_s > 5:
            note = f"{note} stale ({r.age_s:.0f} s old)".strip()
        click.echo(
            f"{r.name:<22} {r.type:<18} {r.where:<22} {mark(r.sshd_up):<5} {mark(r.boardsim_up):<5} "
            f"{temp:>7} {clock:>10} {power:>8}  {note}"
        )
    if builder is not None:
        up_ = compile_host.is_up(builder)
        click.echo(
            f"{'lab-compile':<22} {'compile host':<18} {f'{builder.host}:{builder.port}':<22} "
            f"{'up' if up_ else 'DOWN':<5} {'-':<5} {'-':>7} {'-':>10} {'-':>8}  "
            f"{builder.summary()}"
        )
    click.echo(f"lab file: {processes.lab_file(settings)}")


@click.command(name="set")
@click.argument("board")
@click.argument("settings", nargs=-1, metavar="[clock_mhz=N] [ambient_c=N]")
@click.option("--reset", is_flag=True, help="Back to the catalog's clock and ambient temperature.")
@handle_errors
def set_(board: str, settings: tuple[str, ...], reset: bool) -> None:
    """Change a running emulated BOARD, to rehearse an alert without a real regression.

    clock_mhz=N sets its accelerator clock (> 0, at most 1.5 x the catalog's nominal): the next runs on
    it are slower by the clock-bound part of their time (nominal / N) and draw less dynamic power.
    ambient_c=N sets the room's temperature (-40 to 85 C): the board warms or cools towards it with its
    thermal time constant, and may throttle. Runs record both in their provenance. The change holds until
    --reset or `farm lab down`.

    \b
    Examples:
      farm lab set zcu104-1 clock_mhz=150
      farm lab set pynq-z2-1 ambient_c=60
      farm lab set zcu104-1 --reset
    """
    from farm.lab import board_set

    try:
        values = board_set.parse_settings(list(settings))
        state = board_set.set_board(_settings(), board, values, reset=reset)
    except board_set.BadSetting as exc:
        raise click.BadParameter(str(exc), param_hint="BOARD SETTINGS") from None
    clock = f"clock {state.clock_mhz:g} MHz" + (" (set)" if state.clock_set_mhz is not None else " (nominal)")
    what = "reset to the catalog's values" if reset else "set"
    click.echo(f"{board}: {what}: {clock}, ambient {state.ambient_c:g} C, now {state.temp_c:.1f} C")


COMMANDS: list[click.Command] = [up, down, status, set_]
