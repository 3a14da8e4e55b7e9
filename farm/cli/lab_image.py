"""`farm lab image build | show`: the farm's compile image in this machine's podman (farm/containers/image.py).

`make test` runs `farm lab image build` once per machine (it returns at once when the image is current);
`farm lab up --compile-host container` builds it too when it is missing.
"""

from __future__ import annotations

import json

import click

from farm.cli.common import format_option, handle_errors


@click.group(name="image")
def image() -> None:
    """The farm's compile image (Debian + Python + ONNX Runtime + farm), built here without pulling."""


@image.command(name="build")
@click.option("--rebuild", is_flag=True, help="Rebuild the image even when it is current (not the base).")
@click.option(
    "--if-possible",
    is_flag=True,
    help="Where no container engine can run here, say why and exit 0 (make test: the container tests then "
    "skip with that reason).",
)
@handle_errors
def build(rebuild: bool, if_possible: bool) -> None:
    """Build the compile image if its recipe or farm's code changed (cached by the recipe's hash)."""
    from farm.config import load_settings
    from farm.containers.image import ensure_image
    from farm.containers.podman import engine_problem

    problem = engine_problem()
    if problem and if_possible:
        click.echo(f"compile image not built: {problem}")
        return

    def say(line: str) -> None:
        click.echo(line, err=True)

    built = ensure_image(load_settings(), rebuild=rebuild, say=say)
    what = f"built {' and '.join(built.built)}" if built.built else "already current"
    click.echo(f"{built.ref}: {what} in {built.seconds:.1f} s")
    click.echo(f"  id      {built.image_id}")
    click.echo(f"  digest  {built.digest or '-'}")
    click.echo(f"  recipe  {built.recipe_hash}   farm code {built.code_hash}")


@image.command(name="show")
@format_option("table", "json", more="JSON: every field.")
@handle_errors
def show(fmt: str) -> None:
    """The compile image here: present? current? its id, digest and the engine that holds it."""
    from farm.config import load_settings
    from farm.containers.image import image_status

    doc = image_status(load_settings())
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    if doc.get("engine_problem"):
        click.echo(f"{doc['image']}: no container engine here: {doc['engine_problem']}")
        return
    if not doc["present"]:
        click.echo(f"{doc['image']}: not built (farm lab image build)")
        return
    state = "current" if doc["current"] else "stale: farm lab image build updates it"
    click.echo(f"{doc['image']}: {state}")
    for key in ("image_id", "digest", "recipe", "code", "store"):
        click.echo(f"  {key:<9} {doc.get(key) or '-'}")
    click.echo(f"  engine    {' '.join(doc['engine'])}")


COMMANDS: list[click.Command] = [image]
