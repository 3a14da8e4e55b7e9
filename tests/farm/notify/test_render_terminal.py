"""render_text / render_plain (farm/notify/render.py) from full, partial and odd alerts, and the terminal
channel's block on stderr or in a log file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from farm.notify import DeliveryError, Notification, render_text
from farm.notify.render import alert_line, render_plain
from farm.notify.terminal import TerminalChannel

FULL = {
    "id": 7,
    "state": "confirmed",
    "kind": "regression",
    "metric": "latency_ms_p99",
    "model": "resnet50",
    "precision": "int8",
    "batch_size": 1,
    "scenario": "SingleStream",
    "target": "zcu104",
    "board": "zcu104-0",
    "before": 10.4,
    "after": 12.63,
    "change_pct": 21.2,
    "confirmed": True,
    "run_ids": [1, 2, 3, 4, 5, 6],
    "cause": "clock 300 -> 240 MHz on zcu104-0 only",
}


def test_a_full_alert_reads_as_one_sentence() -> None:
    assert alert_line(FULL) == (
        "resnet50 int8 b1 SingleStream on zcu104 (zcu104-0): p99 latency 10.4 -> 12.6 ms (+21.2 %), "
        "confirmed by 6 runs; cause: clock 300 -> 240 MHz on zcu104-0 only"
    )


@pytest.mark.parametrize(
    ("alert", "line"),
    [
        (
            {"model": "tiny", "metric": "throughput_ips", "before": 1200, "after": 950, "change_pct": -20.8},
            "tiny: Throughput 1200 -> 950 inferences/s (-20.8 %)",
        ),
        ({"model": "tiny", "metric": "not_in_catalog", "after": 0.5}, "tiny: not_in_catalog 0.50"),
        ({"id": 3, "state": "resolved", "model": "m", "confirmed": False}, "[resolved] m: not confirmed yet"),
        ({"id": 9}, "alert 9"),
        ({}, "alert"),
        (
            {"kind": "provenance", "target": "u50", "cause": {"summary": "toolchain 3.5 -> 3.6"}},
            "on u50: provenance; cause: toolchain 3.5 -> 3.6",
        ),
        ({"model": "m", "confirmed": 3}, "m: confirmed by 3 runs"),
    ],
)
def test_missing_fields_fall_back_gracefully(alert: dict, line: str) -> None:
    assert alert_line(alert) == line


def test_slack_text_escapes_and_links() -> None:
    n = Notification(
        key="k",
        title="2 regressions <b> & more",
        text="nightly",
        alerts=[FULL, {"id": 2}],
        url="http://x/a?b=1",
    )
    lines = render_text(n).splitlines()
    assert lines[0] == "*[farm] 2 regressions &lt;b&gt; &amp; more*" and lines[1] == "nightly"
    assert lines[2].startswith("• resnet50 int8 b1") and "10.4 → 12.6 ms" in lines[2]
    assert lines[3] == "• alert 2" and lines[4] == "<http://x/a?b=1|details>"
    assert render_plain(n).splitlines()[0] == "[farm] 2 regressions <b> & more"


def test_terminal_writes_a_block_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    n = Notification(
        key="sweep-3", title="1 regression confirmed", text="", alerts=[FULL], severity="critical"
    )
    assert TerminalChannel("console").send(n) == "stderr"
    err = capsys.readouterr().err
    assert "CRITICAL  sweep-3" in err and "[farm] 1 regression confirmed" in err
    assert "- resnet50 int8 b1 SingleStream on zcu104 (zcu104-0)" in err and "\x1b[" not in err  # no colour


def test_terminal_appends_to_a_log_file_and_reports_one_it_cannot_write(tmp_path: Path) -> None:
    n = Notification(key="k", title="t", text="x", alerts=[])
    log = tmp_path / "alerts.log"
    channel = TerminalChannel("log", path=log)
    assert channel.send(n) == f"appended to {log}"
    channel.send(n)
    assert log.read_text().count("[farm] t") == 2
    with pytest.raises(DeliveryError) as caught:
        TerminalChannel("log", path=tmp_path / "no-such-dir" / "a.log").send(n)
    assert caught.value.retryable is False and "cannot write" in str(caught.value)
    stream = io.StringIO()
    TerminalChannel("s", stream=stream).send(n)
    assert "[farm] t" in stream.getvalue()
