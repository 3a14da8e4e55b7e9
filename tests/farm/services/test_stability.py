"""Stability: CV-driven repeats stop under the threshold or at the cap (flagged), extra repeats are added
once even when a job is delivered again; provenance and noise are stored with every run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from farm import scheduler
from farm.cli.main import cli
from farm.config import REPO_ROOT, load_settings
from farm.db.models import JobRow, RunRow
from farm.db.session import session_scope
from farm.publish import publish
from farm.queries.sweeps import sweep_summary
from farm.services import run as run_service
from farm.services import stability
from farm.services.run import run_run_job
from farm.services.submit import submit_sweep, wait_for
from farm.sweep.schema import Stability, Sweep
from farm.transport.base import AgentOutcome
from farm.transport.local import LocalTransport
from farm.workers.tasks import fail
from tests.conftest import write_sweep

SWEEP = """\
name: stab
models:
  - name: tiny
    onnx: {onnx}
precisions: [fp32]
targets: [cpu]
scenarios: [SingleStream]
loadgen:
  min_duration_ms: 100
  min_query_count: 8
stability: {{cv_threshold_pct: 3.5, min_repeats: 3, max_repeats: 6}}
"""
NO_STABILITY = SWEEP.replace("stability: {{cv_threshold_pct: 3.5, min_repeats: 3, max_repeats: 6}}", "")

NOISY = {
    "load_1m": 9.5,
    "cpus": 2,
    "busy_processes": [{"pid": 42, "name": "stress", "cpu_pct": 99.0}],
    "cpu_mhz": 2400.0,
    "governor": "powersave",
    "verdict": "noisy",
    "reasons": ["load 9.50 on 2 CPUs (> 0.70 per CPU)", "busy: stress (pid 42) 99% CPU"],
}


class ScriptedAgent(LocalTransport):
    """Stands in for the agent: each run reports the next p90 of a script (so the spread is known)."""

    def __init__(
        self, p90s: list[float], noise: dict | None = None, model_errors: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.p90s, self.noise, self.calls = list(p90s), noise, 0
        self.model_errors = model_errors  # the calls (0-based) that report a model error

    def run_agent(self, config, timeout_s) -> AgentOutcome:
        p90 = self.p90s[self.calls % len(self.p90s)]
        self.calls += 1
        if self.calls - 1 in self.model_errors:
            error = {"kind": "model", "message": "unsupported operator Foo"}
            return AgentOutcome(2, json.dumps({"status": "error", "error": error}), "")
        report = {
            "status": "ok",
            "scenario": config["scenario"],
            "latency_ms": {"p50": p90 * 0.9, "p90": p90, "p99": p90 * 1.1},
            "throughput_ips": 1000.0 / p90,
            "result_valid": True,
            "samples_ms": [p90 * 0.9] * 10,
            "noise": self.noise,
            "environment": {
                "runtime": "onnxruntime",
                "runtime_version": "1.x",
                "kernel": "6.1.0-test",
                "board_serial": "SER-1",
                "dpu_fingerprint": None,
                "ambient_c": None,
            },
        }
        return AgentOutcome(0, json.dumps(report), "")


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    def install(
        p90s: list[float], noise: dict | None = None, model_errors: tuple[int, ...] = ()
    ) -> ScriptedAgent:
        agent = ScriptedAgent(p90s, noise, model_errors)
        monkeypatch.setattr(run_service, "transport_for", lambda inventory, board: agent)
        return agent

    return install


def _submit(tmp_path: Path, settings, onnx: Path, body: str = SWEEP, state: str = "done") -> str:
    sub = submit_sweep(settings, write_sweep(tmp_path, body.format(onnx=onnx)))
    summary = wait_for(settings, sub, lambda _: None)
    assert summary["state"] == state, summary
    return sub.sweep_id


def _runs(settings) -> list[RunRow]:
    with session_scope(settings.db_url) as s:
        runs = list(s.scalars(select(RunRow).order_by(RunRow.repeat)))
        for r in runs:
            _ = r.provenance, r.metrics
        s.expunge_all()
    return runs


# --------------------------------------------------------------------------- the rule itself


def test_cv_and_decisions() -> None:
    cfg = Stability(cv_threshold_pct=3.5, min_repeats=3, max_repeats=5)
    assert stability.cv_pct([10.0]) is None
    assert stability.cv_pct([9.0, 10.0, 11.0]) == pytest.approx(10.0)  # stdev 1 / mean 10
    assert stability.decide([10.0, 10.1], 2, cfg).action == "more"  # under min_repeats
    assert stability.decide([10.0, 10.1, 10.05], 3, cfg).action == "stable"
    assert stability.decide([9.0, 10.0, 11.0], 3, cfg).action == "more"
    assert stability.decide([9.0, 10.0, 11.0, 9.0, 11.0], 5, cfg).action == "capped"
    assert stability.headline("Offline", {"throughput_ips": 5.0, "latency_ms_p90": 1.0}) == 5.0
    assert stability.headline("MultiStream", {"latency_ms_p99": 7.0, "latency_ms_p90": 1.0}) == 7.0


def test_sweep_refuses_repeats_with_stability() -> None:
    with pytest.raises(ValueError, match="either repeats"):
        Sweep.model_validate(
            {
                "name": "x",
                "models": ["a"],
                "precisions": ["fp32"],
                "targets": ["cpu"],
                "repeats": 3,
                "stability": {},
            }
        )
    with pytest.raises(ValueError, match="below min_repeats"):
        Stability(min_repeats=5, max_repeats=4)


# --------------------------------------------------------------------------- through the farm


def test_stable_runs_stop_at_min_repeats(tmp_path, farm_env, tiny_onnx, scripted) -> None:
    agent = scripted([10.0, 10.1, 9.95, 20.0])  # the 4th would be an outlier, but is never run
    sweep_id = _submit(tmp_path, farm_env, tiny_onnx)
    runs = _runs(farm_env)
    assert [r.repeat for r in runs] == [0, 1, 2] and agent.calls == 3
    assert all(not r.flags for r in runs)
    with session_scope(farm_env.db_url) as s:
        (row,) = stability.summary(s, sweep_id)
    assert row["state"] == "stable" and row["cv_pct"] < 3.5 and row["repeats"] == 3


def test_repeats_continue_until_the_cv_is_under_the_threshold(
    tmp_path, farm_env, tiny_onnx, scripted
) -> None:
    # 10, 11, 10: cv 5.4 %; + 10: 4.9 %; ... the spread shrinks as more 10s come in: under 3.5 % at 8
    agent = scripted([10.0, 11.0] + [10.0] * 20)
    _submit(tmp_path, farm_env, tiny_onnx, SWEEP.replace("max_repeats: 6", "max_repeats: 20"))
    values = [10.0, 11.0] + [10.0] * 20
    n = next(k for k in range(3, 21) if stability.cv_pct(values[:k]) < 3.5)
    assert n == 8 and agent.calls == n and len(_runs(farm_env)) == n
    assert stability.cv_pct(values[: n - 1]) >= 3.5  # it did not stop early either


def test_unstable_configuration_hits_the_cap_and_is_flagged(tmp_path, farm_env, tiny_onnx, scripted) -> None:
    scripted([8.0, 12.0])  # cv ~ 20 % forever
    sweep_id = _submit(tmp_path, farm_env, tiny_onnx)
    runs = _runs(farm_env)
    assert len(runs) == 6
    for r in runs:
        (flag,) = r.flags
        assert flag.startswith("unstable: cv ") and "> 3.5% after 6 repeats" in flag
    out = CliRunner().invoke(cli, ["status", sweep_id])
    assert out.exit_code == 0, out.output
    assert "stability tiny/fp32/cpu/b1/SingleStream: unstable" in out.output
    assert "flagged run" in out.output and "unstable: cv" in out.output
    rows = json.loads(CliRunner().invoke(cli, ["results", "--format", "json"]).output)
    assert len(rows) == 6 and all(r["flags"][0].startswith("unstable") for r in rows)


def test_redelivered_job_adds_no_second_extra_repeat(tmp_path, farm_env, tiny_onnx, scripted) -> None:
    agent = scripted([8.0, 12.0])
    sweep_id = _submit(tmp_path, farm_env, tiny_onnx)
    with session_scope(farm_env.db_url) as s:
        keys_before = sorted(s.scalars(select(JobRow.key).where(JobRow.sweep_id == sweep_id)))
        first_repeat = s.scalar(select(JobRow.id).where(JobRow.key.endswith("/r2")))
    calls = agent.calls
    # every run job delivered again (in order, then the one that triggered the first extra again)
    with session_scope(farm_env.db_url) as s:
        ids = list(s.scalars(select(JobRow.id).where(JobRow.kind == "run").order_by(JobRow.id)))
    for job_id in [*ids, first_repeat]:
        assert run_run_job(farm_env, job_id) == "done"
    # planning again directly, as a racing finisher would
    assert stability.plan_after_run(farm_env.db_url, first_repeat) == []
    with session_scope(farm_env.db_url) as s:
        keys_after = sorted(s.scalars(select(JobRow.key).where(JobRow.sweep_id == sweep_id)))
    assert keys_after == keys_before and agent.calls == calls and len(_runs(farm_env)) == 6


def test_plan_twice_gives_the_same_job_and_dispatches_it_once(
    tmp_path, farm_env, tiny_onnx, scripted
) -> None:
    """The decision to add r3 taken twice (a redelivery racing the first delivery): one row, one run."""
    agent = scripted([8.0, 12.0, 10.0])
    body = SWEEP.replace("max_repeats: 6", "max_repeats: 4")
    sweep_id = _submit(tmp_path, farm_env, tiny_onnx, body)
    with session_scope(farm_env.db_url) as s:
        r3 = s.scalars(select(JobRow).where(JobRow.key.endswith("/r3"))).one()
        r2_id = s.scalar(select(JobRow.id).where(JobRow.key.endswith("/r2")))
        s.delete(s.scalars(select(RunRow).where(RunRow.job_id == r3.id)).one())
        s.flush()
        s.delete(r3)  # as if r2 had just finished and r3 was never planned
    calls = agent.calls
    first = stability.plan_after_run(farm_env.db_url, r2_id)
    assert len(first) == 1
    # decided again after that: r3 is planned and unfinished, so nothing more is added
    assert stability.plan_after_run(farm_env.db_url, r2_id) == []
    # decided at the same moment (a race): the insert meets the unique key and finds the same row
    with session_scope(farm_env.db_url) as s:
        row = s.get(JobRow, first[0][0])
        spec = {
            c.key: getattr(row, c.key) for c in JobRow.__table__.columns if c.key not in ("id", "created_at")
        }
    assert stability._add_job(farm_env.db_url, spec) == first[0][0]
    publish(farm_env.db_url, scheduler.runs(farm_env.db_url, first))
    publish(farm_env.db_url, scheduler.runs(farm_env.db_url, first))  # a second dispatch enqueues nothing
    assert agent.calls == calls + 1
    with session_scope(farm_env.db_url) as s:
        assert (
            len(list(s.scalars(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.kind == "run")))) == 4
        )


def test_a_last_repeat_that_fails_for_good_still_gets_its_decision(
    tmp_path, farm_env, tiny_onnx, scripted
) -> None:
    """The last repeat to finish is the one that decides, stored or failed: here r2 failed for good (the
    task layer's last retry gave up), leaving 2 values under min_repeats 3, so one more repeat runs."""
    agent = scripted([10.0, 10.1, 9.95, 10.05])
    sweep_id = _submit(tmp_path, farm_env, tiny_onnx)
    with session_scope(farm_env.db_url) as s:  # as if r2 had been running when its last retry failed
        r2 = s.scalars(select(JobRow).where(JobRow.key.endswith("/r2"))).one()
        s.delete(s.scalars(select(RunRow).where(RunRow.job_id == r2.id)).one())
        r2.state, r2_id = "running", r2.id
    calls = agent.calls

    fail(farm_env.db_url, r2_id, "infrastructure failure after 4 attempts: board unreachable")

    assert agent.calls == calls + 1  # r3 planned, dispatched and run
    assert [r.repeat for r in _runs(farm_env)] == [0, 1, 3]
    with session_scope(farm_env.db_url) as s:
        (row,) = stability.summary(s, sweep_id)
        assert sweep_summary(s, sweep_id)["state"] == "failed"  # one job failed; the sweep says so
    assert row["state"] == "stable" and row["repeats"] == 4 and row["values"] == 3


def test_no_more_repeats_after_a_model_error(tmp_path, farm_env, tiny_onnx, scripted) -> None:
    """A model error would repeat: the configuration stops there, undecided, and says so."""
    agent = scripted([10.0, 10.1, 9.95], model_errors=(2,))
    sweep_id = _submit(tmp_path, farm_env, tiny_onnx, state="failed")
    assert agent.calls == 3 and len(_runs(farm_env)) == 2
    with session_scope(farm_env.db_url) as s:
        (row,) = stability.summary(s, sweep_id)
        (failed,) = s.scalars(select(JobRow).where(JobRow.state == "failed"))
        assert failed.error == "model error: unsupported operator Foo"
    assert row["state"] == "failed" and row["repeats"] == 3 and row["values"] == 2
    out = CliRunner().invoke(cli, ["status", sweep_id])
    assert "stability tiny/fp32/cpu/b1/SingleStream: failed" in out.output, out.output


def test_provenance_noise_and_noisy_flag_stored(tmp_path, farm_env, tiny_onnx, scripted) -> None:
    scripted([10.0], noise=NOISY)
    _submit(
        tmp_path,
        farm_env,
        tiny_onnx,
        NO_STABILITY,
    )
    (run,) = _runs(farm_env)
    prov = run.provenance
    assert len(prov.artifact_sha256) == 64 and prov.kernel == "6.1.0-test" and prov.board_serial == "SER-1"
    assert prov.farm_version and prov.runtime == "onnxruntime" and prov.toolchain
    assert prov.ambient_c is None and prov.accelerator_clock_mhz is None  # a CPU: no accelerator, no sensor
    assert run.noise["verdict"] == "noisy"
    assert run.flags == ["noisy-host: load 9.50 on 2 CPUs (> 0.70 per CPU); busy: stress (pid 42) 99% CPU"]
    row = json.loads(CliRunner().invoke(cli, ["results", "--format", "json"]).output)[0]
    assert row["noise_verdict"] == "noisy" and row["flags"] == run.flags


def test_real_agent_run_records_noise_and_provenance(tmp_path, farm_env, tiny_onnx) -> None:
    """No stand-in: the real agent's noise check and environment land in the run's columns."""
    _submit(tmp_path, farm_env, tiny_onnx, NO_STABILITY)
    (run,) = _runs(farm_env)
    assert run.noise["verdict"] in ("quiet", "caution", "noisy", "unknown")
    assert {"load_1m", "busy_processes", "cpu_mhz", "governor", "reasons"} <= set(run.noise)
    assert (run.noise["verdict"] == "noisy") == any(f.startswith("noisy-host:") for f in run.flags or [])
    assert run.provenance.artifact_sha256 and run.provenance.kernel


def test_a_boards_ambient_sensor_is_recorded_with_each_run(
    tmp_path, farm_env, tiny_onnx, monkeypatch
) -> None:
    """`ambient_sensor:` in the lab file: the agent reads that file (hwmon millidegrees here) into ambient_c."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", inventory / "board-types.yaml")
    sensor = tmp_path / "sys" / "temp1_input"
    sensor.parent.mkdir()
    sensor.write_text("23500\n")
    (inventory / "lab.yaml").write_text(
        f"boards:\n  - name: bench-cpu\n    type: cpu\n    ambient_sensor: {sensor}\n"
    )
    monkeypatch.setenv("FARM_INVENTORY", str(inventory))
    monkeypatch.setenv("FARM_LAB", "lab.yaml")
    _submit(tmp_path, load_settings(), tiny_onnx, NO_STABILITY)
    (run,) = _runs(farm_env)
    assert run.board_name == "bench-cpu" and run.provenance.ambient_c == pytest.approx(23.5)
