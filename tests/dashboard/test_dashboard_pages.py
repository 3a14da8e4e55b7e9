"""Every dashboard page under streamlit.testing.v1.AppTest: with data, on an empty database, and with bad
URLs. No page may raise; each shows what it is for (its title, tables, charts) or says why it cannot."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import LOGS, PAGES, SWEEP_ID, VIEWS

TITLES = {
    "overview": "Overview",
    "compare": "Compare targets",
    "run_detail": "Run detail",
    "trends": "Trends",
    "sweep_detail": "Sweep detail",
    "fleet": "Fleet",
    "alerts": "Alerts",
    "procurement": "Procurement",
}


def run_page(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(VIEWS / f"{page}.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == TITLES[page]
    return at


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def winners(at: AppTest) -> dict[str, str]:
    """Metric label -> the winner's name, from the "which wins" cards (ui.winners)."""
    found = [re.search(r'data-label="([^"]+)"[^>]*>([^<]+)<', m.value) for m in at.markdown]
    return {html.unescape(f[1]): html.unescape(f[2]) for f in found if f}


@pytest.mark.parametrize("page", PAGES)
def test_page_with_data(seeded_db: str, page: str) -> None:
    at = run_page(page)
    assert at.dataframe, "every page shows at least one table"
    assert at.get("download_button"), "tables are downloadable as CSV"
    if page not in ("sweep_detail", "alerts"):
        assert charts(at) or page == "overview"


@pytest.mark.parametrize("page", PAGES)
def test_page_on_empty_database(empty_db: str, page: str) -> None:
    at = run_page(page)
    assert not at.error
    if page != "overview":  # overview shows an empty fleet caption and the empty-sweeps note
        assert "farm" in texts(at.info)
    else:
        assert "No sweeps yet" in texts(at.info)


def test_router_runs_the_default_page(seeded_db: str) -> None:
    at = AppTest.from_file(str(Path(VIEWS).parent / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Overview"


def test_compare_shows_targets_speedups_and_marks_emulated(seeded_db: str) -> None:
    at = run_page("compare")
    assert "emulated" in texts(at.warning)
    table = at.dataframe[0].value
    assert set(table["label"]) == {"cpu", "zcu104 (emulated)", "vck190 (emulated)"}
    # median of the latest sweep's repeat; vck190 reported no power: perf/W stays empty, said in a caption
    row = table.set_index("target").loc["zcu104"]
    assert row["latency_ms_p50"] == pytest.approx(4.0)
    assert row["inferences_per_joule"] == pytest.approx(250.0 / 15.0)
    assert "vck190 (emulated): power_w" in texts(at.caption)
    speedups = at.dataframe[1].value.set_index("fpga")
    assert speedups.loc["zcu104 (emulated)", "throughput_speedup"] == pytest.approx(2.5)
    assert speedups.loc["zcu104 (emulated)", "emulated"] == "yes"
    assert at.query_params["model"] == "resnet18"


def test_compare_with_emulated_switched_off(seeded_db: str) -> None:
    at = run_page("compare", emulated="0")
    table = at.dataframe[0].value
    assert list(table["source"]) == ["measured"]
    assert not any("emulated" in w for w in texts(at.warning).split("Unknown"))
    assert "Speedups need" in texts(at.info)


def test_compare_with_unknown_url_values(seeded_db: str) -> None:
    at = run_page("compare", model="no-such-model", batch_size="banana", emulated="maybe")
    warnings = texts(at.warning)
    assert "Unknown model 'no-such-model'" in warnings
    assert "Unknown batch size 'banana'" in warnings
    assert "'maybe'" in warnings
    assert at.dataframe, "falls back to the defaults and still shows them"


OLDEST_SWEEP = "5eed0000-0000-4000-8000-000000000100"  # nightly-0: latencies 10 % above the latest's


def test_compare_can_pin_one_sweep(seeded_db: str) -> None:
    latest = run_page("compare")
    picker = next(s for s in latest.selectbox if s.label == "Sweep")
    assert picker.value == "latest" and len(picker.options) == 4  # latest + the three nightly sweeps
    assert "nightly-10" in picker.options[1] and "3 targets" in picker.options[1]  # newest first

    at = run_page("compare", sweep=OLDEST_SWEEP)
    table = at.dataframe[0].value.set_index("target")
    assert table.loc["zcu104", "latency_ms_p50"] == pytest.approx(4.4)
    assert all(OLDEST_SWEEP in link for link in table["sweep"])
    assert f"sweep nightly-0 ({OLDEST_SWEEP})" in texts(at.caption)
    assert at.query_params["sweep"] == OLDEST_SWEEP


def test_compare_with_an_unknown_sweep_in_the_url(seeded_db: str) -> None:
    at = run_page("compare", sweep="not-a-sweep")
    assert "Unknown sweep 'not-a-sweep'" in texts(at.warning)
    assert at.dataframe[0].value.set_index("target").loc["zcu104", "latency_ms_p50"] == pytest.approx(4.0)


def test_run_detail_with_samples_traces_and_provenance(seeded_db: str) -> None:
    at = run_page("run_detail")
    assert at.query_params["run"]
    assert len(charts(at)) >= 2  # latency histogram + traces
    assert "Flagged for a second look: latency spread" in texts(at.warning)


def test_run_detail_offers_the_loadgen_logs_as_downloads(seeded_db: str) -> None:
    at = run_page("run_detail")
    buttons = {b.proto.label: b for b in at.get("download_button")}
    summary = LOGS["mlperf_log_summary.txt"]
    assert f"Download mlperf_log_summary.txt ({len(summary.encode()):,} bytes)" in buttons
    assert any(label.startswith("Download mlperf_log_detail.txt") for label in buttons)


def test_run_detail_of_a_run_without_metrics(seeded_db: str) -> None:
    from sqlalchemy import select

    from farm.db.models import RunRow
    from farm.db.session import session_scope

    with session_scope(seeded_db) as s:
        bare = s.scalar(select(RunRow.id).where(RunRow.repeat == 7))
    at = run_page("run_detail", run=str(bare))
    info = texts(at.info)
    assert "no latency samples" in info and "no metrics" in info
    assert "no provenance" in texts(at.warning)
    assert "no LoadGen logs" in info
    assert not any("mlperf_log" in b.proto.label for b in at.get("download_button"))


@pytest.mark.parametrize("value, message", [("abc", "not a number"), ("987654", "There is no run 987654")])
def test_run_detail_with_a_bad_run_in_the_url(seeded_db: str, value: str, message: str) -> None:
    at = run_page("run_detail", run=value)
    assert message in texts(at.warning)
    assert at.dataframe


def test_trends_follow_one_fingerprint(seeded_db: str) -> None:
    at = run_page("trends", target="zcu104", metric="latency_ms_p50")
    table = at.dataframe[0].value
    assert len(table) == 3 and set(table["source"]) == {"emulated"}
    assert "emulated" in texts(at.warning)


def test_trends_mark_change_points_and_alerts(seeded_db: str) -> None:
    from tests.farm.alerts.history import add_runs

    add_runs(seeded_db, [10.0, 10.1, 9.9, 10.05, 9.95] * 5)
    add_runs(seeded_db, [12.5, 12.4, 12.6, 12.55] * 2, start=25, flags=None)
    add_runs(seeded_db, [20.0], start=40, flags=["noisy-host: load 4"])
    at = run_page("trends", model="tiny", target="zcu104", metric="latency_ms_p99")
    caption = texts(at.caption)
    assert "Change points" in caption and "+2" in caption  # about +25 %
    assert "1 run(s) noisy-host" in caption
    spec = charts(at)[0].proto.spec
    assert "regression" in spec and "level" in spec


def test_trends_can_be_read_against_a_version_label(seeded_db: str) -> None:
    from tests.farm.alerts.history import add_runs

    add_runs(seeded_db, [11.0, 11.1], labels={"toolchain": "vitis-ai-3.10"}, start=10)
    add_runs(seeded_db, [10.0, 10.1], labels={"toolchain": "vitis-ai-3.5"})  # an older version, run later
    at = run_page("trends", model="tiny", target="zcu104", metric="latency_ms_p99", order="label:toolchain")
    spec = charts(at)[0].proto.spec
    assert spec.index("vitis-ai-3.5") < spec.index("vitis-ai-3.10")  # natural order, not text or time
    assert (
        "toolchain=vitis-ai-3.10" in texts([at.dataframe[0]])
        or "toolchain=vitis-ai-3.10" in at.dataframe[0].value.to_string()
    )


def test_alerts_page_shows_state_cause_and_provenance(seeded_db: str) -> None:
    at = run_page("alerts")
    page = texts(at.markdown) + texts(at.subheader)
    assert "Alert 1" in page and "on zcu104-01 only" in page and "confirmed: p50 latency" in page
    tables = [t.value for t in at.dataframe]
    assert any("toolchain_version" in set(t.get("field", [])) for t in tables)
    assert "emulated" in texts(at.warning)


def test_trends_with_a_metric_nobody_reported(seeded_db: str) -> None:
    at = run_page("trends", target="vck190", metric="power_w")
    assert "No run of this fingerprint reported power_w" in texts(at.info)


def test_sweep_detail_lists_jobs_and_failures(seeded_db: str) -> None:
    at = run_page("sweep_detail", sweep=SWEEP_ID)
    jobs = at.dataframe[0].value
    assert "failed" in set(jobs["state"])
    assert "agent timed out" in " ".join(jobs["error"].dropna())
    assert "failed" in texts(at.error)
    at = run_page("sweep_detail", sweep=SWEEP_ID, state="failed")
    assert set(at.dataframe[0].value["state"]) == {"failed"}


def test_sweep_detail_with_an_unknown_sweep(seeded_db: str) -> None:
    at = run_page("sweep_detail", sweep="nope")
    assert "Unknown sweep 'nope'" in texts(at.warning)


def test_fleet_shows_states_and_health(seeded_db: str) -> None:
    at = run_page("fleet", board="vck190-01")
    assert "vck190-01" in texts(at.error)  # the bad board is called out
    boards = at.dataframe[0].value if "board" in at.dataframe[0].value else at.dataframe[1].value
    assert "bad" in set(boards["state"])
    assert at.query_params["board"] == "vck190-01"


def test_overview_lists_sweeps_and_failures(seeded_db: str) -> None:
    at = run_page("overview")
    sweeps = at.dataframe[0].value
    assert len(sweeps) == 3 and sweeps.iloc[0]["failed"] == 1
    assert "agent timed out" in " ".join(at.dataframe[1].value["error"])


def test_unreadable_database_is_a_message_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FARM_DB_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    at = AppTest.from_file(str(VIEWS / "overview.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert "cannot" in texts(at.error)


def test_procurement_answers_from_the_url_and_labels_what_is_not_measured(seeded_db: str) -> None:
    at = run_page(
        "procurement", model="mobilenet_v2", precision="int8", kind="server", p99_ms="10", qps="2000"
    )
    said = texts(at.success) + texts(at.warning) + texts(at.error)
    assert "cheapest" in said or "cannot separate" in said
    assert "predicted" in texts(at.warning)  # nothing of mobilenet_v2 ran here: every figure is predicted
    assert "No run of mobilenet_v2 counts here" in texts(at.info)
    assert len(charts(at)) == 2  # Pareto and sensitivity
    assert any(b.proto.label == "Download the HTML report" for b in at.get("download_button"))
    tables = [t.value for t in at.dataframe]
    assert any("reason" in t.columns for t in tables)  # the ruled-out boards, with why


def test_procurement_with_a_bad_number_in_the_url(seeded_db: str) -> None:
    at = run_page("procurement", model="mobilenet_v2", kind="server", qps="-5")
    assert "is not usable; showing 2000" in texts(at.warning)
