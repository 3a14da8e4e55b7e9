"""`farm datasets`: labelled image sets for accuracy runs (docs/accuracy.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def datasets() -> None:
    """Labelled image sets for accuracy runs (a sweep's `dataset:` field)."""


@datasets.command("make")
@click.argument("name", type=click.Choice(["shapes"]))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--per-class", default=40, show_default=True, type=click.IntRange(1, 10000), help="Images per class."
)
@click.option(
    "--seed",
    default=None,
    type=click.IntRange(0),
    help="Generator seed (default: the held-out seed, images shapes_net never saw in training).",
)
def make(name: str, folder: Path, per_class: int, seed: int | None) -> None:
    """Write the NAME dataset to FOLDER in the ImageFolder layout (<class>/<image>.png).

    shapes: 8 classes of procedural 32x32 RGB pictures (checker, circle, cross, hstripes, ring, square,
    triangle, vstripes); the zoo's shapes_net is trained on the same generator with another seed.
    """
    from farm.datasets.shapes import CLASSES, HELDOUT_SEED_OFFSET, write_image_folder

    if folder.exists() and any(folder.iterdir()):
        raise click.UsageError(f"{folder} exists and is not empty")
    files = write_image_folder(folder, per_class, HELDOUT_SEED_OFFSET if seed is None else seed)
    click.echo(f"wrote {len(files)} images of {len(CLASSES)} classes to {folder}")
