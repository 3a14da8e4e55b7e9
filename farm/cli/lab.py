"""`farm lab`: the virtual lab. Model commands (predict, calibrate) live in lab_model.py, fleet commands
(up, down, status, set) in lab_processes.py, the compile image in lab_image.py; this file only groups them."""

from __future__ import annotations

import click

from farm.cli import lab_image, lab_model, lab_processes


@click.group()
def lab() -> None:
    """The virtual lab: emulated FPGA and GPU boards, and the performance model behind them."""


for command in (*lab_model.COMMANDS, *lab_processes.COMMANDS, *lab_image.COMMANDS):
    lab.add_command(command)
