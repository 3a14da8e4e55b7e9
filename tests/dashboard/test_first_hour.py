"""What a new user reads first (issue 15): the Overview leads with which target wins, progress bars are not
red, Fleet shows what `farm fleet list` shows (a board of a lab that is down is offline, not idle), Trends
axes carry units and a 24-hour clock and mark flagged runs, Run detail traces do not blow a wiggle up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm.dashboard import charts
from farm.queries.fleet import NEW, OFFLINE, UNKNOWN, fleet_list, list_counts
from tests.dashboard.conftest import write_lab
from tests.dashboard.test_dashboard_pages import charts as specs
from tests.dashboard.test_dashboard_pages import run_page, texts, winners
from tests.farm.queries.stored import figures, runs, sweep

# --- Overview -------------------------------------------------------------------------------------------


def test_overview_leads_with_the_latest_comparison(seeded_db: str) -> None:
    at = run_page("overview")
    heads = [h.value for h in at.subheader]
    assert heads.index("Latest comparison") < heads.index("Latest sweeps")
    wins = winners(at)
    assert wins["p50 latency"] == "vck190 (emulated)" and wins["Perf per watt"] == "zcu104 (emulated)"
    assert "resnet18" in texts(at.markdown) and "nightly-10" in texts(at.markdown)
    assert "10.00x over cpu" in texts(at.caption)


def test_overview_progress_is_never_red_and_failures_are_counted_apart(seeded_db: str) -> None:
    at = run_page("overview")
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["progress"]["type_config"]["color"] == "blue"
    sweeps = at.dataframe[0].value.set_index("name")
    assert sweeps.loc["nightly-10", "outcome"] == "finished, 1 failed"
    assert sweeps.loc["nightly-10", "progress"] == 1.0 and sweeps.loc["nightly-10", "failed"] == 1
    assert sweeps.loc["nightly-5", "outcome"] == "finished"


def test_overview_says_how_to_get_a_comparison(empty_db: str) -> None:
    at = run_page("overview")
    assert "Nothing to compare yet" in texts(at.info) and "farm demo" in texts(at.info)
    sid = sweep(empty_db, "cpu only")
    runs(empty_db, sid, "cpu", [figures(10.0, 100.0)])  # a baseline and no FPGA: still nothing to compare
    at = run_page("overview")
    assert "Nothing to compare yet" in texts(at.info)
    runs(empty_db, sweep(empty_db, "both", hours=1), "zcu104", [figures(2.0, 500.0)])
    assert "Nothing to compare yet" in texts(run_page("overview").info)  # the newest sweep has no cpu
    both = sweep(empty_db, "fpga and cpu", hours=2)
    runs(empty_db, both, "zcu104", [figures(2.0, 500.0)])
    runs(empty_db, both, "cpu", [figures(10.0, 100.0)])
    at = run_page("overview")
    assert winners(at)["Throughput"] == "zcu104"
    assert "fpga and cpu" in texts(at.markdown)


# --- Fleet ----------------------------------------------------------------------------------------------


def cli_fleet_list(db_url: str) -> list[dict]:
    from farm.cli.main import cli

    result = CliRunner().invoke(cli, ["fleet", "list", "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def page_boards(at) -> dict[str, str]:
    table = next(t.value for t in at.dataframe if "where" in t.value)
    return dict(zip(table["board"], table["state"], strict=True))


def test_fleet_shows_what_farm_fleet_list_shows(
    seeded_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # zcu104-01's lab went down (`farm lab down` removes its lab file): the CLI lists the others only
    monkeypatch.setenv("FARM_LAB", str(write_lab(tmp_path / "after-down.yaml", ["cpu", "vck190"])))
    at = run_page("fleet")
    shown = page_boards(at)
    listed = {r["board"]: r["state"] for r in cli_fleet_list(seeded_db)}
    assert (
        {b: s for b, s in shown.items() if s != OFFLINE} == listed == {"cpu-01": "idle", "vck190-01": "bad"}
    )
    assert shown["zcu104-01"] == OFFLINE  # not idle
    assert "zcu104-01" in texts(at.info) and "offline" in texts(at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["idle"] == "1" and metrics["offline"] == "1"
    overview = {m.label: m.value for m in run_page("overview").metric}
    assert overview["idle"] == "1" and overview["offline"] == "1"


def test_fleet_when_the_lab_file_is_gone(seeded_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_LAB", "/nonexistent/virtual-lab.yaml")  # exported, then `farm lab down`
    at = run_page("fleet")
    assert "The inventory cannot be read" in texts(at.warning) and "farm lab up" in texts(at.warning)
    assert set(page_boards(at).values()) == {UNKNOWN}


def test_fleet_list_keeps_retired_and_names_new_boards(seeded_db: str, tmp_path: Path) -> None:
    from farm.config import load_settings
    from farm.db.models import BoardRow
    from farm.db.session import session_scope
    from farm.inventory import load_inventory

    with session_scope(seeded_db) as s:
        s.get(BoardRow, "cpu-01").state = "retired"
    lab = write_lab(tmp_path / "new.yaml", ["vck190", "u50"])  # u50-01: in the lab, not yet recorded
    with session_scope(seeded_db) as s:
        rows = {r["board"]: r for r in fleet_list(s, load_inventory(load_settings().inventory_dir, str(lab)))}
        none = {r["board"]: r["state"] for r in fleet_list(s, None)}
    assert [rows[b]["state"] for b in ("vck190-01", "u50-01", "cpu-01", "zcu104-01")] == [
        "bad", "idle", "retired", OFFLINE,
    ]  # fmt: skip
    assert rows["u50-01"]["reason"] == NEW and rows["u50-01"]["where"] == "local"
    assert list_counts(list(rows.values()))["offline"] == 1
    assert none == {"cpu-01": "retired", "vck190-01": UNKNOWN, "zcu104-01": UNKNOWN}


def test_fleet_charts_count_whole_boards_and_read_24_hour_time(seeded_db: str) -> None:
    at = run_page("fleet")
    bars, timeline = (json.loads(c.proto.spec) for c in specs(at))
    x = bars["encoding"]["x"]
    assert x["axis"]["tickMinStep"] == 1 and x["axis"]["format"] == "d"
    assert bars["encoding"]["y"]["field"] == "type"  # horizontal bars: type names read flat
    axis = timeline["layer"][0]["encoding"]["x"]["axis"]
    assert "%H:%M" in axis["format"] and "%I" not in axis["format"] and axis["labelOverlap"] == "greedy"
    assert timeline["layer"][0]["encoding"]["y"]["axis"]["labelLimit"] == 180


# --- Trends ---------------------------------------------------------------------------------------------


def test_trends_axis_has_the_unit_a_24_hour_clock_and_flagged_runs(seeded_db: str) -> None:
    at = run_page("trends", target="vck190", metric="latency_ms_p50")
    spec = json.loads(specs(at)[0].proto.spec)
    runs = spec["layer"][0]["layer"]  # the runs; then the change layers, with their own colour scale
    assert spec["resolve"]["scale"]["color"] == "independent"
    first = runs[0]["encoding"]
    assert first["y"]["title"] == "p50 latency (ms)"
    assert first["x"]["axis"]["format"] in ("%d %b %H:%M", "%d %b") and first["x"]["scale"]["type"] == "utc"
    flagged = runs[2]
    assert flagged["mark"]["shape"] == "diamond"
    assert flagged["encoding"]["stroke"]["scale"]["domain"] == ["flagged run"]  # its legend entry
    assert "1 run(s) carry flags" in texts(at.caption)
    latest = at.metric[1]
    assert latest.proto.delta.endswith("since the first point: better")  # 1.1 ms -> 1.0 ms
    assert latest.proto.color == latest.proto.MetricColor.GREEN


def test_trends_change_since_first_is_red_when_worse(seeded_db: str) -> None:
    from tests.farm.alerts.history import add_runs

    add_runs(seeded_db, [10.0, 10.1, 12.0])  # p99 latency went up: worse
    at = run_page("trends", model="tiny", target="zcu104", metric="latency_ms_p99")
    latest = at.metric[1]
    assert latest.proto.delta == "+20.0 % since the first point: worse"
    assert latest.proto.color == latest.proto.MetricColor.RED


# --- Run detail -----------------------------------------------------------------------------------------


def test_trace_axes_do_not_blow_up_a_wiggle() -> None:
    wiggle = [5.0 + 0.1 * ((i % 4) - 2) for i in range(40)]  # 4.8 .. 5.1 W
    assert charts.trace_domain(wiggle, zero=True)[0] == 0.0
    low, high = charts.trace_domain([40.0, 40.3, 40.1], zero=False)
    assert high - low >= 0.1 * 40.3  # at least 10 % of the level, not 0.3 C stretched to the chart
    assert charts.trace_domain([10.0, 50.0], zero=False)[0] < 10.0  # a real swing keeps its own range
    spec = charts.trace(list(range(40)), wiggle, title="Power", y_title="W", zero=True).to_dict()
    assert spec["encoding"]["y"]["scale"]["domain"][0] == 0.0
    assert spec["title"]["limit"] == spec["width"]  # the title fits its panel


def test_run_detail_says_how_its_trace_axes_are_drawn(seeded_db: str) -> None:
    at = run_page("run_detail")
    caption = texts(at.caption)
    assert "Power axes start at 0" in caption and "power 5.00 W throughout" in caption
    spec = json.loads(specs(at)[1].proto.spec)
    power, thermal = spec["hconcat"]
    assert power["encoding"]["y"]["scale"]["domain"][0] == 0.0
    assert power["title"]["text"] == "Power" and "emulated" in power["title"]["subtitle"]
    assert thermal["encoding"]["y"]["title"] == "°C"
