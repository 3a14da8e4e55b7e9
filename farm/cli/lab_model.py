"""Commands of `farm lab` (see farm/cli/lab.py)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
