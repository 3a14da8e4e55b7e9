"""`farm show RUN`: the table and JSON views of one run, the ways to name it, and the errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.cli.show import sparkline
from farm.db.models import RunAttachmentRow, RunRow
from farm.db.session import session_scope
from farm.services.submit import submit_sweep, wait_for
from tests.conftest import write_sweep

SWEEP = """\
name: show
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
scenarios: [SingleStream]
repeats: 2
loadgen:
  min_duration_ms: 100
  min_query_count: 16
"""

LOG = ":::MLLOG {}\n"


@pytest.fixture
def runs(tmp_path: Path, farm_env, tiny_onnx) -> list[tuple[int, str]]:
    """Two measured CPU runs; the first gets a flag, a noise record and an attachment."""
    sub = submit_sweep(farm_env, write_sweep(tmp_path, SWEEP.format(onnx=tiny_onnx)))
    assert wait_for(farm_env, sub, lambda _: None)["state"] == "done"
    with session_scope(farm_env.db_url) as s:
        rows = list(s.scalars(select(RunRow).order_by(RunRow.id)))
        first = rows[0]
        first.flags = ["noisy-host: load 9.00 on 2 CPUs (> 0.70 per CPU)"]
        first.noise = {
            "verdict": "noisy",
            "load_1m": 9.0,
            "busy_processes": [{"pid": 9, "name": "stress", "cpu_pct": 99.0}],
            "cpu_mhz": 2400.0,
            "governor": "performance",
            "reasons": ["load 9.00 on 2 CPUs (> 0.70 per CPU)"],
        }
        s.add(
            RunAttachmentRow(
                run_id=first.id,
                name="notes.txt",
                media_type="text/plain",
                size_bytes=len(LOG),
                sha256=hashlib.sha256(LOG.encode()).hexdigest(),
                content=LOG,
            )
        )
        return [(r.id, r.idempotency_key) for r in rows]


def _show(*args: str):
    return CliRunner().invoke(cli, ["show", *args])


def test_table(runs) -> None:
    run_id, key = runs[0]
    out = _show(str(run_id))
    assert out.exit_code == 0, out.output
    text = out.output
    assert f"run {run_id}  {key}" in text
    assert "tiny fp32 batch 1 SingleStream on cpu" in text and "source: measured" in text
    assert "EMULATED" not in text
    assert "! noisy-host: load 9.00" in text
    assert "latency_ms_p90" in text and "latency distribution (ms):" in text
    assert "host noise check:" in text and "noisy: load 9.000, busy stress 99.0%" in text
    assert "provenance:" in text and "artifact_sha256" in text and "kernel" in text
    assert "attachments:" in text and "notes.txt" in text
    assert "over the run: " in text  # the latency sparkline
    # the CPU type carries rapl only: no clock figure, and the section says why
    assert (
        "missing:" in text
        and "  clock_mhz_min: no clock sensor on the cpu board type (sensors: rapl)" in text
    )


def test_json(runs) -> None:
    run_id, key = runs[0]
    out = _show(str(run_id), "--format", "json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["run_id"] == run_id and doc["idempotency_key"] == key
    assert doc["source"] == "measured" and doc["emulated"] is False
    assert doc["flags"] == ["noisy-host: load 9.00 on 2 CPUs (> 0.70 per CPU)"]
    assert doc["noise"]["verdict"] == "noisy"
    lat = doc["latency_distribution"]
    assert lat["samples"] > 0 and lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert {m["name"] for m in doc["metrics"]} >= {"latency_ms_p90", "throughput_ips"}
    assert doc["provenance"]["artifact_sha256"] and doc["provenance"]["farm_version"]
    reasons = {name: g["reason"] for g in doc["missing"] for name in g["metrics"]}
    assert "latency_ms_p90" not in reasons and reasons["clock_mhz_min"].startswith("no clock sensor")
    assert {
        "name": "notes.txt",
        "media_type": "text/plain",
        "size_bytes": len(LOG),
        "sha256": hashlib.sha256(LOG.encode()).hexdigest(),
    } in doc["attachments"]


def test_by_idempotency_key_and_prefix(runs, farm_env) -> None:
    (first, key1), (second, key2) = runs
    assert json.loads(_show(key2, "--format", "json").output)["run_id"] == second
    assert json.loads(_show(key1, "--format", "json").output)["run_id"] == first
    out = _show(key1[:-1])  # .../r: both repeats
    assert out.exit_code == 2 and f"is ambiguous: it matches runs {first}, {second}" in out.output
    with session_scope(farm_env.db_url) as s:
        s.delete(s.get(RunRow, first))
    assert json.loads(_show(key2[:8], "--format", "json").output)["run_id"] == second  # a sweep id prefix


def test_unknown_and_ambiguous(runs) -> None:
    out = _show("999999")
    assert out.exit_code == 2 and "no run matches '999999'" in out.output
    out = _show("no-such-run")
    assert out.exit_code == 2 and "no run matches" in out.output
    key = runs[0][1]
    out = _show(key.split("/")[0])  # the sweep id: both runs start with it
    assert out.exit_code == 2 and "is ambiguous" in out.output


def test_results_json_has_flags_and_noise_verdict(runs) -> None:
    rows = json.loads(CliRunner().invoke(cli, ["results", "--format", "json"]).output)
    by_id = {r["run_id"]: r for r in rows}
    assert by_id[runs[0][0]]["flags"][0].startswith("noisy-host:")
    assert by_id[runs[0][0]]["noise_verdict"] == "noisy"
    assert by_id[runs[1][0]]["noise_verdict"] in ("quiet", "caution", "noisy", "unknown")


def test_results_table_and_csv_show_run_validity_and_flags(runs, farm_env) -> None:
    with session_scope(farm_env.db_url) as s:
        s.get(RunRow, runs[0][0]).result_valid = True  # as stored, whatever this host's load made of it
        second = s.get(RunRow, runs[1][0])
        second.result_valid, second.flags = None, None  # a run LoadGen gave no verdict on, unflagged
    table = CliRunner().invoke(cli, ["results"])
    assert table.exit_code == 0, table.output
    header, *lines = table.output.splitlines()
    assert header.split()[0] == "run" and "loadgen" in header.split() and header.split()[-1] == "flags"
    first = next(line for line in lines if line.split()[0] == str(runs[0][0]))
    second = next(line for line in lines if line.split()[0] == str(runs[1][0]))
    assert first.split()[-2:] == ["VALID", "noisy-host"]  # the flag's name; its detail is in JSON/CSV/show
    assert second.split()[-2:] == ["-", "-"]

    csv = CliRunner().invoke(cli, ["results", "--format", "csv"]).output.splitlines()
    cols = csv[0].split(",")
    assert {"run_id", "result_valid", "flags"} <= set(cols)
    assert (
        "noisy-host: load 9.00 on 2 CPUs (> 0.70 per CPU)" in csv[1 + [r[0] for r in runs].index(runs[0][0])]
    )
    assert "[" not in "".join(csv[1:])  # no Python list repr in a cell

    rows = json.loads(CliRunner().invoke(cli, ["results", "--format", "json"]).output)
    assert {(r["run_id"], r["result_valid"]) for r in rows} == {(runs[0][0], True), (runs[1][0], None)}


def test_show_log_prints_loadgen_log_as_stored(runs, farm_env) -> None:
    run_id = runs[0][0]
    with session_scope(farm_env.db_url) as s:
        stored = {
            a.name: a.content
            for a in s.scalars(select(RunAttachmentRow).where(RunAttachmentRow.run_id == run_id))
        }
    for kind in ("summary", "detail"):
        out = _show(str(run_id), "--log", kind)
        assert out.exit_code == 0, out.output
        assert out.output.rstrip("\n") == stored[f"mlperf_log_{kind}.txt"].rstrip("\n")
    assert "Result is : VALID" in _show(str(run_id), "--log", "summary").output


def test_show_log_of_a_run_without_one(runs, farm_env) -> None:
    run_id = runs[1][0]
    with session_scope(farm_env.db_url) as s:
        for a in s.scalars(select(RunAttachmentRow).where(RunAttachmentRow.run_id == run_id)):
            s.delete(a)
    out = _show(str(run_id), "--log", "detail")
    assert out.exit_code == 1
    assert f"run {run_id} has no LoadGen detail log (mlperf_log_detail.txt)" in out.output
    bad = _show(str(run_id), "--log", "trace")
    assert bad.exit_code == 2 and "'trace' is not one of" in bad.output


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert sparkline([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == "▁▂▃▄▅▆▇█"
    assert len(sparkline([float(i) for i in range(1000)], width=40)) == 40
