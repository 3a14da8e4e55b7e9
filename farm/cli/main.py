"""`farm`: submit sweeps, read results, run workers and the demo."""

from __future__ import annotations

import logging

import click

from farm import __version__
from farm.cli.admin import beat, db, worker
from farm.cli.dashboard import dashboard
from farm.cli.datasets import datasets
from farm.cli.demo import demo
from farm.cli.fleet import fleet
from farm.cli.lab import lab
from farm.cli.ops import cancel, retry
from farm.cli.show import show
from farm.cli.submit import results_cmd, status, submit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farm")
@click.option("-v", "--verbose", is_flag=True, help="Log what the farm does (to stderr).")
def cli(verbose: bool) -> None:
    """A benchmark farm for ML inference on FPGA boards, with GPU and CPU baselines."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


for command in (
    submit,
    status,
    results_cmd,
    show,
    cancel,
    retry,
    demo,
    worker,
    beat,
    db,
    fleet,
    lab,
    dashboard,
    datasets,
):
    cli.add_command(command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
