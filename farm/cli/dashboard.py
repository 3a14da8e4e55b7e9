"""farm dashboard: start the Streamlit comparison dashboard (dashboard/app.py) on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

import farm.dashboard as dashboard_package
from farm.cli.common import db_option, handle_errors, settings_for
from farm.db.session import dispose_engines, redact

APP = Path(dashboard_package.__file__).resolve().parent / "app.py"


@click.command()
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="HTTP port.")
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 shares it on the network).",
)
@db_option
@handle_errors
def dashboard(port: int, address: str, db_url: str | None) -> None:
    """Start the dashboard: FPGA vs GPU vs CPU, runs, trends, sweeps and the fleet, in a browser."""
    settings = settings_for(db_url)  # exports FARM_DB_URL and checks (or creates) the schema first
    click.echo(f"farm dashboard on http://{address}:{port} reading {redact(settings.db_url)}", err=True)
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    env = {**os.environ, "FARM_DB_URL": settings.db_url}
    dispose_engines()  # the schema check's connections are not handed to Streamlit
    sys.stdout.flush()
    sys.stderr.flush()
    # Streamlit replaces this process (same pid), so a signal to `farm dashboard` (Ctrl-C, a service
    # manager's SIGTERM, a test's terminate()) reaches the server itself and no orphan is left behind.
    os.execve(sys.executable, argv, env)
