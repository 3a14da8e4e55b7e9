"""`farm procure`: the table, JSON and HTML outputs, and bad input as one line and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from farm.cli.main import cli
from farm.config import Settings
from tests.farm.procure.store import add_run, probe

ASK = ["procure", "--model", "mobilenet_v2", "--precision", "int8", "--p99-ms", "10", "--qps", "2000"]


def _seed(db: str) -> None:
    for day in (0, 1):
        add_run(db, target="zcu104", scenario="Server", day=day, metrics={"power_w": 20.0},
                probes=[probe(300, 3.0, 0.4), probe(450, 5.0, 0.6), probe(675, 25.0, 0.95)])  # fmt: skip


def test_json_table_and_html(farm_env: Settings, tmp_path: Path) -> None:
    _seed(farm_env.db_url)
    runner = CliRunner()
    boards = ["--boards", "zcu104,vck190,cpu"]
    res = runner.invoke(cli, [*ASK, *boards, "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) >= {"assumptions", "candidates", "ruled_out"}
    by = {c["board_type"]: c for c in doc["candidates"]}
    assert by["zcu104"]["source"] == "measured" and by["vck190"]["source"] == "predicted"
    assert by["zcu104"]["boards_needed"] == 6 and len(by["zcu104"]["run_ids"]) == 2
    assert doc["assumptions"]["economics"]["electricity_usd_per_kwh"] == 0.15
    assert {r["board_type"] for r in doc["ruled_out"]} == {"cpu"}
    res = runner.invoke(cli, [*ASK, *boards])
    assert res.exit_code == 0 and "zcu104 int8" in res.stdout and "vck190 int8 (predicted)" in res.stdout
    assert "verdict:" in res.stdout and "assumptions: electricity $0.15/kWh" in res.stdout
    out = tmp_path / "report.html"
    res = runner.invoke(cli, [*ASK, *boards, "--format", "html", "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "<svg" in html and "vck190 int8 (predicted)" in html and "run ids" in html
    assert '<svg class="pareto" data-x="usd_per_million_inferences"' in html  # p99 against $/M inferences
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"<(script|link|img)[^>]+(src|href)\s*=\s*[\"']?https?://", html, re.I)
    assert "http://" not in html and "https://" not in html
    res = runner.invoke(
        cli, ["procure", "sensitivity", *ASK[1:], *boards, "--vary", "qps", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["vary"] == "qps"


def test_bad_input_is_one_line_and_exit_2(farm_env: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_costs = tmp_path / "costs.yaml"
    bad_costs.write_text(
        "economics:\n  electricity_usd_per_kwh: 0.2\nboard_types:\n  u50:\n    list_usd: -1\n"
    )
    cases = [
        (["procure", "--model", "mobilenet_v2", "--p99-ms", "10", "--qps", "0"], "--qps: must be a positive"),
        ([*ASK, "--offline-ips", "5"], "exactly one target"),
        ([*ASK, "--boards", "zcu105"], "--boards: unknown board type 'zcu105'"),
        ([*ASK, "--costs", str(bad_costs)], f"{bad_costs}:5: board_types.u50.list_usd"),
        ([*ASK, "--costs", str(tmp_path / "missing.yaml")], "missing.yaml"),
        (["procure", "--model", "mobilenet_v2", "--p99-ms", "0.01", "--qps", "5", "--boards", "vck190,cpu"],
         "no board type meets"),
        (["procure", "sensitivity", *ASK[1:], "--vary", "qps", "--values", "a,b"], "--values"),
    ]  # fmt: skip
    for args, words in cases:
        res = runner.invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert words in res.output, (args, res.output)
        assert "Traceback" not in res.output


def test_economics_options_override_the_defaults_and_are_shown(farm_env: Settings) -> None:
    runner = CliRunner()
    base = json.loads(runner.invoke(cli, [*ASK, "--boards", "zcu104,vck190", "--format", "json"]).output)
    res = runner.invoke(
        cli,
        [*ASK, "--boards", "zcu104,vck190", "--format", "json", "--electricity", "0.30", "--lifetime", "5",
         "--spares", "10%"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    econ = doc["assumptions"]["economics"]
    assert (
        econ["electricity_usd_per_kwh"] == 0.30 and econ["lifetime_years"] == 5 and econ["spares_pct"] == 10
    )
    a = {c["board_type"]: c for c in base["candidates"]}
    b = {c["board_type"]: c for c in doc["candidates"]}
    for board in a:  # energy doubles with the price; spares add boards
        assert b[board]["energy_usd_per_year"] > a[board]["energy_usd_per_year"] * 1.5
        assert b[board]["boards_needed"] >= a[board]["boards_needed"]
    for args, says in ((["--headroom", "1.5"], "headroom"), (["--spares", "lots"], "--spares")):
        res = runner.invoke(cli, [*ASK, *args])
        assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output


def test_help_prints_percent_signs_once() -> None:
    """click does not %-format option help: "10%%" would print as is."""
    res = CliRunner().invoke(cli, ["procure", "--help"])
    assert res.exit_code == 0 and "a share (10%)" in res.output and "%%" not in res.output
