"""`farm import DIR`: a run measured outside the fleet (the standalone agent's --out DIR) stored once."""

from __future__ import annotations

from pathlib import Path

import click

from farm.cli.common import db_option, handle_errors, settings_for


@click.command(name="import")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--model", default=None, help="Model name (default: the artifact file's stem).")
@click.option(
    "--precision", default=None, help="fp32, fp16, bf16 or int8 (default: the config's gpu.dtype, else fp32)."
)
@click.option(
    "--type",
    "board_type",
    default=None,
    help="Board type, e.g. h200 (default: gpu for a GPU backend, else cpu).",
)
@click.option("--board", "board_name", default=None, help="Board name (default: the report's hostname).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="A version label (repeatable).")
@db_option
@handle_errors
def import_cmd(
    folder: Path,
    model: str | None,
    precision: str | None,
    board_type: str | None,
    board_name: str | None,
    labels: tuple[str, ...],
    db_url: str | None,
) -> None:
    """Store a run the agent made on a host outside the fleet as a measured run, with its provenance:

        python3 farm_agent.py run --config cfg.json --out DIR     # on the host (docs/agent-backends.md)
        farm import DIR --type h200 --board gpu-host-1

    DIR may also hold several run folders (a device check's --out): they are imported as one sweep, after
    every report has been checked. Importing the same DIR again adds nothing."""
    from farm.services.imports import import_folder
    from farm.sweep.labels import parse_label

    try:
        parsed = dict(parse_label(x) for x in labels)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from None
    settings = settings_for(db_url)
    imported = import_folder(
        settings,
        folder,
        model=model,
        precision=precision,
        board_type=board_type,
        board_name=board_name,
        labels=parsed or None,
    )
    for done in imported:
        what = f"run {done.run_id}: {done.model} {done.precision} {done.scenario} on {done.target} ({done.board})"
        if done.added:
            click.echo(f"imported {what}, measured; sweep {done.sweep_id}")
        else:
            click.echo(f"already imported as {what}; nothing added")
