"""`farm`: submit sweeps, read results, run workers and the demo.

Each command's module is imported when the command is used (click's lazy-group pattern): importing some of
them configures the Celery app from the settings and the inventory, so a bad FARM_* value met there must
reach main(), which reports it as one line, instead of failing the import with a traceback.
"""

from __future__ import annotations

import importlib
import logging

import click
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import InterfaceError as DBInterfaceError
from sqlalchemy.exc import OperationalError as DBOperationalError

from farm import __version__
from farm.cli.common import as_farm_error, exit_with
from farm.errors import FarmError

#: Every command: its name -> "module:attribute". Add a command here.
COMMANDS = {
    "submit": "farm.cli.submit:submit",
    "status": "farm.cli.submit:status",
    "results": "farm.cli.submit:results_cmd",
    "show": "farm.cli.show:show",
    "cancel": "farm.cli.ops:cancel",
    "retry": "farm.cli.ops:retry",
    "demo": "farm.cli.demo:demo",
    "worker": "farm.cli.admin:worker",
    "beat": "farm.cli.admin:beat",
    "db": "farm.cli.admin:db",
    "fleet": "farm.cli.fleet:fleet",
    "lab": "farm.cli.lab:lab",
    "dashboard": "farm.cli.dashboard:dashboard",
    "alerts": "farm.cli.alerts:alerts",
    "datasets": "farm.cli.datasets:datasets",
    "schedule": "farm.cli.schedule:schedule",
    "procure": "farm.cli.procure:procure",
    "compare": "farm.cli.compare:compare",
    "import": "farm.cli.imports:import_cmd",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (and all of them for --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farm")
@click.option("-v", "--verbose", is_flag=True, help="Log what the farm does (to stderr).")
def cli(verbose: bool) -> None:
    """A benchmark farm for ML inference on FPGA boards, with GPU and CPU baselines."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    """The console script. Commands report their own errors (handle_errors); this catches the ones met
    outside them, such as a bad setting while a command's modules load."""
    try:
        cli()
    except (FarmError, DBOperationalError, DBInterfaceError, BrokerOperationalError) as exc:
        translated = as_farm_error(exc)
        if translated is None:
            raise
        exit_with(translated)


if __name__ == "__main__":
    main()
