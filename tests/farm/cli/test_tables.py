"""One table style across commands (issue 15): units in the headers, numbers right-aligned, "-" and never
"None", local time to the second, 120 columns unless --wide (and a note saying what was left out); the
machine formats unchanged. `farm status` is one line per sweep; `farm fleet check` has --format json."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from farm.cli.render import WIDE_HINT, Column, age, layout, local_time, table
from farm.db.models import JobRow
from farm.db.session import session_scope
from tests.farm.queries.stored import T0, figures, runs, sweep


@pytest.fixture
def kolkata() -> Iterator[None]:
    """A local time zone that is not UTC (and has no daylight saving time), for local_time's sake."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def _farm(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_numbers_right_text_left_none_is_a_dash() -> None:
    rows = [{"name": "resnet18", "p50": 1.5, "runs": 12, "note": None}, {"name": "x", "p50": None, "runs": 3}]
    header, first, second = table(
        rows, [("name", "model"), ("p50", "p50 ms"), ("runs", "runs"), ("note", "note")]
    ).split("\n")
    assert header == "model     p50 ms  runs  note"
    assert first == "resnet18    1.50    12  -"
    assert second == "x              -     3  -"


def test_a_wide_table_keeps_to_120_columns_and_says_what_it_left_out() -> None:
    rows = [{f"c{i}": f"value-{i}-" + "x" * 8 for i in range(12)} | {"n": 1234.5}]
    columns = [Column("n", "n ms"), *(Column(f"c{i}", f"c{i}", drop=1 if i == 3 else 0) for i in range(12))]
    narrow = layout(rows, columns)
    assert all(len(line) <= 120 for line in narrow.lines())
    assert narrow.note.startswith("… ") and narrow.note.endswith(WIDE_HINT)
    assert "c3" not in narrow.header.split() and "c3" in narrow.note  # the one marked to go first went first
    assert narrow.header.split()[:3] == ["n", "ms", "c0"]  # then from the right
    wide = layout(rows, columns, wide=True)
    assert wide.note == "" and len(wide.header.split()) == 14 and len(wide.lines()[1]) > 120


def test_long_text_is_cut_before_columns_go_and_a_last_column_can_wrap() -> None:
    rows = [{"board": "node-0", "reason": "word " * 60}]
    wrapped = layout(rows, [("board", "board"), Column("reason", "reason", wrap=True)])
    assert len(wrapped.rows[0]) > 1 and all(len(line) <= 120 for line in wrapped.lines())
    assert " ".join(" ".join(wrapped.rows[0]).split()) == "node-0 " + " ".join(["word"] * 60)
    assert wrapped.note == ""  # nothing was left out
    crowded = layout([{**{f"c{i}": "z" * 30 for i in range(6)}, "why": "run `farm fleet trust node-0`"}],
                     [*((f"c{i}", f"c{i}") for i in range(6)), Column("why", "why", wrap=True)])  # fmt: skip
    assert "why" in crowded.header and "farm fleet trust node-0" in " ".join(
        " ".join(crowded.rows[0]).split()
    )
    cut = layout([{"a": "y" * 200, "b": 1}], [("a", "a"), ("b", "b")])
    assert cut.rows[0][0].startswith("y" * 50) and "…" in cut.rows[0][0] and "long cells cut" in cut.note


def test_timestamps_are_local_to_the_second(kolkata) -> None:
    assert local_time("2026-12-06T01:22:05.123456+00:00") == "2026-12-06 06:52:05"
    assert local_time(datetime(2026, 12, 6, 1, 22, 5, 999)) == "2026-12-06 06:52:05"  # naive: UTC, as stored
    assert local_time(None) == "-"
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert age(now.isoformat(), now) == "0 s" and age(None) == "-"
    assert (
        age("2026-12-06T11:50:00+00:00", now) == "10 min" and age("2026-12-04T12:00:00+00:00", now) == "2 d"
    )


def _sweeps(db_url: str) -> tuple[str, str]:
    good = sweep(db_url, "nightly")
    runs(db_url, good, "cpu", [figures(10.0, 100.0, None) for _ in range(3)], precision="fp32")
    bad = sweep(db_url, "broken", hours=2)
    runs(db_url, bad, "zcu104", [figures(2.0, 500.0, 10.0)])
    with session_scope(db_url) as s:
        s.add(JobRow(sweep_id=bad, key="run/x/int8/zcu104/b1/SingleStream/r1", kind="run", state="failed",
                     model="x", precision="int8", target="zcu104", batch_size=1, scenario="SingleStream",
                     repeat=1, error="model error: unsupported operator Foo"))  # fmt: skip
    return good, bad


def test_status_is_one_line_per_sweep_and_details_behind_v(farm_env, kolkata) -> None:
    good, bad = _sweeps(farm_env.db_url)
    header, newest, oldest = _farm("status").splitlines()
    assert header.split() == ["sweep", "name", "state", "done/jobs", "failed", "age", "created"]
    assert newest.split()[:5] == [bad[:8], "broken", "done", "2/2", "1"]
    assert oldest.split()[:5] == [good[:8], "nightly", "done", "3/3", "0"]
    assert oldest.endswith(local_time(T0)) and "None" not in newest + oldest
    verbose = _farm("status", "-v")
    assert f"sweep {bad} (broken): done; 2/2 jobs finished" in verbose
    assert "failed run/x/int8/zcu104/b1/SingleStream/r1: model error: unsupported operator Foo" in verbose
    listing = json.loads(_farm("status", "--format", "json"))  # unchanged: whole summaries, UTC ISO times
    assert [s["id"] for s in listing] == [bad, good] and listing[1]["created_at"] == T0.isoformat()
    assert f"sweep {good} (nightly): done; 3/3 jobs finished" in _farm("status", good[:8])


def test_results_table_fits_and_the_machine_formats_keep_utc(farm_env) -> None:
    good, _ = _sweeps(farm_env.db_url)
    out = _farm("results", "--all")
    header, *rows, note = out.splitlines()
    assert all(len(line) <= 120 for line in out.splitlines()) and note.endswith(WIDE_HINT)
    assert "p50 ms" in header and "inf/s" in header and "None" not in out
    wide = _farm("results", "--all", "--wide")
    assert WIDE_HINT not in wide and "int8 top1 agr" in wide.splitlines()[0]
    first = json.loads(_farm("results", "--sweep", good[:8], "--format", "json"))[0]
    assert first["created_at"].endswith("+00:00")
    assert "+00:00" in _farm("results", "--all", "--format", "csv").splitlines()[1]


def test_fleet_check_offers_json_and_fleet_list_shows_local_time(farm_env, kolkata) -> None:
    doc = json.loads(_farm("fleet", "check", "--format", "json"))
    assert [(b["board"], b["ok"], b["result"], b["state"]) for b in doc] == [
        ("local-cpu", True, "ok", "idle")
    ]
    assert doc[0]["reason"] == "all checks passed" and {c["name"] for c in doc[0]["checks"]} >= {"reachable"}
    header, row = _farm("fleet", "check").splitlines()
    assert header.split() == ["board", "check", "state", "now", "reason"]
    assert row.split() == ["local-cpu", "ok", "idle", "all", "checks", "passed"]
    (listed,) = json.loads(_farm("fleet", "list", "--format", "json"))
    assert listed["checked_at"].endswith("+00:00")
    header, row = _farm("fleet", "list").splitlines()
    assert local_time(listed["checked_at"]) in row and "None" not in row
