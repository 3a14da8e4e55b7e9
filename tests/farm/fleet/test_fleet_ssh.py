"""Sweeps on boards over SSH (embedded mode), fleet commands, health and board faults."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.db.models import BoardEventRow, JobRow, RunRow
from farm.db.session import session_scope
from farm.fleet.transports import _CACHE, close_all
from tests.conftest import TINY_SWEEP, write_sweep

ONE = TINY_SWEEP.replace("[fp32, int8]", "[fp32]").replace(", Offline", "")


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _events(db_url: str, board: str) -> list[tuple]:
    with session_scope(db_url) as s:
        q = select(BoardEventRow).where(BoardEventRow.board_name == board).order_by(BoardEventRow.id)
        return [(e.kind, e.from_state, e.to_state, e.ok) for e in s.scalars(q)]


def test_sweep_runs_on_ssh_boards_and_rerun_uploads_nothing(
    tmp_path: Path, ssh_lab, farm_env, tiny_onnx
) -> None:
    ssh_lab(1)
    sweep = write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx))
    first = _cli("submit", str(sweep))
    assert first.exit_code == 0, first.output
    assert "runs stored: 4" in first.output
    transport = _CACHE["node-0"]
    assert transport.bytes_uploaded > 0 and transport.agent_bytes_uploaded > 0
    rows = json.loads(_cli("results", "--format", "json").output)
    assert {r["board"] for r in rows} == {"node-0"} and all(r["throughput_ips"] > 0 for r in rows)

    close_all()  # a new worker process: nothing cached locally, the board is asked
    second = _cli("submit", str(sweep))
    assert second.exit_code == 0, second.output
    transport = _CACHE["node-0"]
    assert transport.bytes_uploaded == 0 and transport.agent_bytes_uploaded == 0
    assert transport.uploads_skipped >= 2 and transport.agent_uploads_skipped == 1
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 8


def test_fleet_list_check_drain_enable_retire(ssh_lab, farm_env) -> None:
    servers = ssh_lab(2)
    listed = json.loads(_cli("fleet", "list", "--format", "json").output)
    assert [b["board"] for b in listed] == ["node-0", "node-1"] and {b["state"] for b in listed} == {"idle"}
    assert listed[0]["where"] == f"{servers[0].host}:{servers[0].port}"

    checked = _cli("fleet", "check")
    assert checked.exit_code == 0, checked.output
    rows = checked.output.splitlines()[1:]  # the table: board, check, state now, reason
    assert [r.split()[:3] for r in rows] == [["node-0", "ok", "idle"], ["node-1", "ok", "idle"]]
    assert all(r.endswith("all checks passed") for r in rows)

    servers[1].stop()
    close_all()
    failed = _cli("fleet", "check", "node-1")
    assert failed.exit_code == 1, failed.output
    assert failed.output.splitlines()[1].split()[:4] == ["node-1", "FAILED", "bad", "unreachable:"]
    assert json.loads(_cli("fleet", "list", "--format", "json").output)[1]["state"] == "bad"
    servers[1].start()
    assert _cli("fleet", "check", "node-1").exit_code == 0  # a bad board that passes is idle again
    assert [e[2] for e in _events(farm_env.db_url, "node-1") if e[0] == "state"] == ["idle", "bad", "idle"]

    assert "idle -> maintenance" in _cli("fleet", "drain", "node-0").output
    assert _cli("fleet", "check", "node-0").exit_code == 0
    assert json.loads(_cli("fleet", "list", "--format", "json").output)[0]["state"] == "maintenance"
    assert "maintenance -> idle" in _cli("fleet", "enable", "node-0").output
    assert "idle -> retired" in _cli("fleet", "retire", "node-0").output
    again = CliRunner().invoke(cli, ["fleet", "enable", "node-0"])
    assert again.exit_code == 1 and "retired" in again.output


def test_unreachable_board_fails_over_then_fails_with_reason(
    tmp_path: Path, ssh_lab, farm_env, tiny_onnx
) -> None:
    servers = ssh_lab(2)
    servers[0].stop()  # node-0 is down; embedded mode takes boards in order, so it is tried first
    result = _cli("submit", str(write_sweep(tmp_path, ONE.format(onnx=tiny_onnx))))
    assert result.exit_code == 0, result.output
    with session_scope(farm_env.db_url) as s:
        run = s.scalars(select(JobRow).where(JobRow.kind == "run")).one()
        assert run.state == "done" and run.board_name == "node-1" and run.attempts == 2
    assert ("state", "running", "bad", None) in _events(farm_env.db_url, "node-0")

    servers[1].stop()
    close_all()
    result = CliRunner().invoke(cli, ["submit", str(write_sweep(tmp_path, ONE.format(onnx=tiny_onnx)))])
    assert result.exit_code == 1
    assert "no other healthy board of type 'cpu'" in result.output or "no healthy board" in result.output
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 1


def test_trust_pins_the_host_key(ssh_lab, farm_env) -> None:
    servers = ssh_lab(1)
    known = servers[0].known_hosts
    pinned = known.read_text()
    known.write_text("")
    out = CliRunner().invoke(cli, ["fleet", "check", "node-0"])
    assert out.exit_code == 1 and "farm fleet trust node-0" in " ".join(out.output.split())  # wrapped or not
    trusted = _cli("fleet", "trust", "node-0", "--yes")
    assert "SHA256:" in trusted.output and "pinned in" in trusted.output
    assert known.read_text().split()[1:3] == pinned.split()[1:3]
    close_all()
    assert _cli("fleet", "enable", "node-0").exit_code == 0
    assert _cli("fleet", "check", "node-0").exit_code == 0


def test_compile_runs_on_a_compile_host_over_ssh(tmp_path: Path, ssh_lab, farm_env, tiny_onnx) -> None:
    from farm.db.models import ArtifactRow

    ssh_lab(1, compile_host=True)
    result = _cli("submit", str(write_sweep(tmp_path, TINY_SWEEP.format(onnx=tiny_onnx))))
    assert result.exit_code == 0, result.output
    assert "compile jobs executed: 2" in result.output and "runs stored: 4" in result.output
    with session_scope(farm_env.db_url) as s:
        artifacts = list(s.scalars(select(ArtifactRow)))
    assert {(a.compile_runner, a.compile_host) for a in artifacts} == {("host", "builder")}
    assert all(a.toolchain_version.startswith("onnxruntime") for a in artifacts)
    int8 = next(a for a in artifacts if a.precision == "int8")
    assert int8.top1_agreement is not None and int8.sqnr_db > 5
