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


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert sparkline([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == "▁▂▃▄▅▆▇█"
    assert len(sparkline([float(i) for i in range(1000)], width=40)) == 40
