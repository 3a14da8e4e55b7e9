"""`farm`: submit sweeps, read results, run workers and the demo.

Each command's module is imported when the command is used (click's lazy-group pattern): importing some of
them configures the Celery app from the settings and the inventory, so a bad FARM_* value met there must
reach main(), which reports it as one line, instead of failing the import with a traceback. `farm --help`
lists the commands from :data:`COMMANDS` without importing any of them (SQLAlchemy, pandas, Celery: about
a second), so it answers at once (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib
import logging

import click

from farm import __version__

#: Every command: its name -> ("module:attribute", the one line `farm --help` shows). Add a command here.
COMMANDS = {
    "submit": ("farm.cli.submit:submit", "Validate a sweep file, plan its jobs and run them."),
    "status": ("farm.cli.submit:status", "One sweep's progress and failures, or the latest sweeps."),
    "results": ("farm.cli.submit:results_cmd", "Results: one row per run, measured and emulated labelled."),
    "show": ("farm.cli.show:show", "One run: metrics, latency distribution, traces, provenance."),
    "compare": ("farm.cli.compare:compare", "FPGA vs CPU and GPU baselines: ratios with intervals."),
    "procure": ("farm.cli.procure:procure", "Which board type meets a workload cheapest, and how many."),
    "cancel": ("farm.cli.ops:cancel", "Cancel a sweep's unfinished jobs."),
    "retry": ("farm.cli.ops:retry", "Run a sweep's failed jobs again, or unstick lost ones."),
    "demo": ("farm.cli.demo:demo", "Run the bundled example sweep here and print its results."),
    "import": ("farm.cli.imports:import_cmd", "Store runs made by the agent on a host outside the fleet."),
    "alerts": ("farm.cli.alerts:alerts", "Regression alerts: list, show, acknowledge, silence, check."),
    "schedule": ("farm.cli.schedule:schedule", "Sweeps submitted on a cron, once per slot."),
    "fleet": ("farm.cli.fleet:fleet", "Boards and their states; health checks; the fleet's workers."),
    "lab": ("farm.cli.lab:lab", "The virtual lab: emulated boards and the performance models."),
    "datasets": ("farm.cli.datasets:datasets", "Labelled image sets for accuracy runs."),
    "dashboard": ("farm.cli.dashboard:dashboard", "Start the dashboard (Streamlit)."),
    "worker": ("farm.cli.admin:worker", "Run a Celery worker for the farm's queues."),
    "beat": ("farm.cli.admin:beat", "Run Celery beat: the reconciler, alerts and schedules."),
    "db": ("farm.cli.admin:db", "The results database schema (Alembic migrations)."),
    "config": ("farm.cli.config:config", "Settings in force and where each came from (FARM_*, farm.toml)."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; its help lists them from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name][0].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
    except Exception as exc:  # a FarmError, or the database or broker unreachable: one line, no traceback
        from farm.cli.common import as_farm_error, exit_with

        translated = as_farm_error(exc)
        if translated is None:
            raise
        exit_with(translated)


if __name__ == "__main__":
    main()
