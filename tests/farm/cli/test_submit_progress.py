"""`farm submit`'s progress bar and the log records met while it is drawn (issue 15): a compile's warning
("only 16 calibration samples") is printed on a line of its own above the bar, never through it; the bar's
line is cleared first and drawn again below."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from farm.cli import submit as submit_cli
from farm.cli.main import cli
from farm.cli.submit import ProgressLine, logs_above
from tests.conftest import QUICK_CPU_SWEEP, write_sweep

WARNS = (
    QUICK_CPU_SWEEP.replace("precisions: [fp32]", "precisions: [int8]")
    + "quantization: {{calibration_samples: 16}}\n"
)
SAID = "warning: tiny int8: only 16 calibration samples (< 100): INT8 scales may be poor"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_compile_warning_prints_above_the_bar_on_a_terminal(
    tmp_path: Path, farm_env, tiny_onnx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit_cli, "_is_terminal", lambda stream: True)  # CliRunner's stderr, as a terminal
    result = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, WARNS.format(onnx=tiny_onnx)))])
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert err.count(SAID) == 1, err
    (line,) = [x for x in err.split("\n") if SAID in x]
    *before, said = line.split("\r")
    assert said == SAID  # alone on its line: the bar's text is not before it nor after it
    assert before[-1].strip() == "" and "jobs  [" in "".join(before)  # the bar was drawn, then cleared
    after = err.split(SAID, 1)[1]
    assert after.startswith("\n\rjobs  [")  # and drawn again below the warning
    assert not any("jobs  [" in x and "calibration" in x for x in err.split("\r"))
    assert "WARNING" not in err  # nothing went through the console handler as well
    final = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert final.startswith("jobs  [" + "#" * ProgressLine.WIDTH + "]  2/2")


def test_without_a_terminal_the_warning_is_a_plain_line(tmp_path: Path, farm_env, tiny_onnx) -> None:
    result = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, WARNS.format(onnx=tiny_onnx)))])
    assert result.exit_code == 0, result.output
    assert SAID in result.stderr.splitlines() and "\r" not in result.stderr and "jobs  [" not in result.stderr


def test_log_records_from_another_thread_are_said_between_redraws() -> None:
    screen = _Terminal()
    console = logging.StreamHandler(io.StringIO())  # what `farm`'s basicConfig installs
    root = logging.getLogger()
    root.addHandler(console)
    try:
        bar = ProgressLine("jobs", file=screen)
        with logs_above(bar), bar:
            bar.update(1, 4)
            worker = threading.Thread(
                target=lambda: logging.getLogger("farm.x").warning("board %s is hot", "u50")
            )
            worker.start()
            worker.join()
            bar.update(4, 4)
        logging.getLogger("farm.x").warning("after the bar")
    finally:
        root.removeHandler(console)
    first, second, rest = click.unstyle(screen.getvalue()).split("\n", 2)
    *drawn, blank, said = first.split("\r")
    assert said == "warning: board u50 is hot" and blank == " " * len(drawn[-1])  # cleared, then said
    assert drawn[-1].startswith("jobs  [########------------------------]  1/4")
    assert second.startswith("\rjobs  [########---") and second.split("\r")[-1].startswith("jobs  [####")
    assert rest == ""  # the bar's last line ends the output
    assert console.stream.getvalue() == "after the bar\n"  # muted while the bar was up, not after
    assert not console.filters and not any(isinstance(h, submit_cli._AboveBar) for h in root.handlers)
