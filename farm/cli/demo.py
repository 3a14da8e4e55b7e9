"""farm demo: a whole sweep on the built-in defaults (SQLite, no broker, the virtual lab + the local CPU)."""

from __future__ import annotations

import os
import time
from importlib import resources

import click

from farm.cli.common import db_option, handle_errors, settings_for
from farm.cli.render import render
from farm.cli.submit import run_submit
from farm.db.session import redact, session_scope
from farm.queries.runs import results

#: The virtual lab boards the demo sweep targets (inventory/virtual-lab.yaml).
DEMO_BOARDS = ["local-cpu", "pynq-z2", "zcu104", "u50", "vck190", "jetson-agx-xavier"]
#: The seeds' own question, asked of the demo's runs (SingleStream and Offline: an Offline target): which
#: board type sustains mobilenet_v2 INT8 at 400 images/s most cheaply over three years.
DEMO_QUESTION = {"model": "mobilenet_v2", "precisions": ["int8"], "offline_ips": 400.0}
DEMO_TYPES = ["cpu", "pynq-z2", "zcu104", "u50", "vck190", "jetson-agx-xavier"]


def warnings_summary(said: list[str]) -> str:
    """The demo's warnings as one summary: each distinct warning once, with how often it came (the sweep's
    fp32-on-a-DPU skips, the compiles' few-calibration-samples notes)."""
    import re
    from collections import Counter

    # the same warning about another model or target counts as one: "mobilenet_v2 int8: only 100 ..." -> "only 100 ..."
    counts = Counter(re.sub(r"^[\w.-]+ (int8|fp32): ", "", w) for w in said)
    lines = [f"{len(said)} warnings, {len(counts)} kinds (expected for the demo; `farm submit` shows each):"]
    lines += [f"  {n} x {text}" if n > 1 else f"  {text}" for text, n in counts.most_common()]
    return "\n".join(lines)


def procurement_step(db_url: str) -> str:
    """The demo's last step: one procurement question answered from the runs it just stored, labelled
    emulated where the figures are (farm procure asks any other)."""
    from farm.perfmodel.target import load_catalog
    from farm.procure import decide, from_catalog, workload
    from farm.procure.report import text_report

    catalog = load_catalog()
    w = workload(DEMO_QUESTION["model"], precisions=DEMO_QUESTION["precisions"],
                 offline_ips=DEMO_QUESTION["offline_ips"], boards=DEMO_TYPES)  # fmt: skip
    with session_scope(db_url) as s:
        decision = decide(s, w, from_catalog(catalog), catalog=catalog)
    sources = sorted({c.source for c in decision.candidates})
    head = (
        "procurement: which board type sustains mobilenet_v2 INT8 at 400 images/s most cheaply over 3 years?\n"
        f"(from this demo's runs: {', '.join(sources) or 'none'}; emulated = the virtual lab's models, not "
        "hardware; ask your own with `farm procure`, docs/procurement.md)"
    )
    return head + "\n" + text_report(decision)


@click.command()
@db_option
@click.option("--keep-lab", is_flag=True, help="Leave the virtual lab running afterwards (`farm lab down`).")
@handle_errors
def demo(db_url: str | None, keep_lab: bool) -> None:
    """Run the bundled example sweep in this process and print its results.

    The emulated boards come from the virtual lab, brought up for the demo (real sshd hosts on loopback
    when openssh-server is installed) and taken down afterwards unless it was already running."""
    from farm.lab import processes

    os.environ.pop("FARM_BROKER_URL", None)  # the demo needs no broker: tasks run in-process
    settings = settings_for(db_url)
    if settings.broker_url:  # a farm.toml names one: the demo would queue to it instead of running here
        from farm.config import effective_settings

        rows, _ = effective_settings()
        where = next((r.source for r in rows if r.key == "broker_url"), "a farm.toml")
        raise click.UsageError(
            f"farm demo runs in this process, without a broker, but {where} sets broker_url: run the demo "
            "from another folder, or point FARM_CONFIG at a file without it (`farm config show` says where "
            "each setting comes from)"
        )
    already_up = bool(processes.status(settings))
    handle = processes.up(settings, boards=DEMO_BOARDS)
    for note in handle.notes:
        click.echo(f"note: {note}", err=True)
    os.environ.update(handle.env)  # FARM_LAB: this process's inventory is the virtual lab
    from farm.celery_app import app, configure

    configure(app)  # queues for the lab's board types
    sweep_file = resources.files("farm") / "examples" / "demo.yaml"
    click.echo(f"farm demo: {sweep_file}")
    click.echo(f"virtual lab: {handle.lab_file} ({len(handle.boards)} boards, transport {handle.transport})")
    click.echo(f"database: {redact(settings.db_url)}; artifacts: {settings.artifact_dir}")
    started = time.monotonic()
    try:
        with resources.as_file(sweep_file) as path:
            said: list[str] = []
            summary = run_submit(settings, str(path), wait=True, warnings_out=said)
    finally:
        if not (keep_lab or already_up):
            processes.down(settings)
    assert summary is not None
    if said:
        click.secho(warnings_summary(said), fg="yellow", err=True)
    with session_scope(settings.db_url) as s:
        click.echo(render(results(s, summary["id"]), "table"))
    click.echo(
        "source: measured = run for real on this machine; emulated = the virtual lab's models (not hardware)"
    )
    click.echo("")
    click.echo(procurement_step(settings.db_url))
    click.echo(f"finished in {time.monotonic() - started:.0f} s. Results are in {redact(settings.db_url)}")
    click.echo(f"see them again with: farm results --sweep {summary['id'][:8]}")
    if keep_lab or already_up:
        click.echo(
            f"the virtual lab is still up: export FARM_LAB={handle.lab_file}; `farm lab down` stops it"
        )
    if summary["state"] == "failed":
        raise SystemExit(1)
