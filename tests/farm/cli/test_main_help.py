"""`farm --help` lists every command from the table in farm/cli/main.py without importing any of them (the
heavy libraries: SQLAlchemy, pandas, Celery), and each command's own help is its command's."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from farm.cli.main import COMMANDS, cli

HEAVY = ("sqlalchemy", "pandas", "celery", "kombu", "numpy", "onnx", "streamlit", "farm.cli.common")


def test_farm_help_lists_every_command_and_imports_none_of_them() -> None:
    probe = (
        "import sys, json\nfrom farm.cli.main import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    help_text, loaded = proc.stdout.rsplit("\n", 2)[0], json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], loaded  # nothing heavy for the help: it answers at once (docs/benchmarks.md)
    for name, (_, line) in COMMANDS.items():
        assert f"{name}  " in help_text and line in help_text


def test_every_command_in_the_table_loads_and_has_its_own_help() -> None:
    ctx = click.Context(cli)
    for name, (target, line) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.help, target
        assert len(line) <= 70 and line.endswith(".")
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage: " in result.output, (name, result.output)
