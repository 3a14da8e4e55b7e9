"""The rehearsal, end to end in the virtual lab, as an operator runs it: a history of nightly runs on a
zcu104, `farm lab set zcu104-1 clock_mhz=150`, the next sweep's first slow run is a candidate, the farm
re-runs it on its own board, the rank test confirms it, the alert opens with its cause and is delivered to
a real webhook; `farm lab set --reset`, the series comes back and the alert resolves itself (and says so).
At time scale 1: a time-scaled lab's runs are flagged and never alert (tests/farm/lab/test_time_scale.py)."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from farm.alerts import delivery
from farm.cli.main import cli
from farm.db.models import AlertDeliveryRow, AlertRow, JobRow, RunRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.zoo.tiny import heavy_sweep
from tests.conftest import write_sweep
from tests.farm.notify.http_server import Server
from tests.virtual_lab import heavy_model


def _farm(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _resolved_notices(server: Server) -> list[dict]:
    return [n for n in (json.loads(body) for _, _, body in server.received) if "resolved" in n["title"]]


def _submit(tmp_path, model, repeats: int, name: str) -> str:
    sweep = write_sweep(tmp_path, heavy_sweep(model, repeats=repeats, min_query_count=128), name)
    _farm("submit", str(sweep), "--label", f"night={name}")
    with session_scope_latest() as sweep_id:
        return sweep_id


class session_scope_latest:  # noqa: N801 (a tiny context: the newest ordinary sweep's id)
    def __enter__(self) -> str:
        from farm.config import load_settings

        with session_scope(load_settings().db_url) as s:
            return s.scalars(
                select(SweepRow.id).where(SweepRow.purpose == "sweep").order_by(SweepRow.created_at.desc())
            ).first()

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_clock_cut_is_confirmed_delivered_and_resolves(
    tmp_path, farm_env, lab, server: Server, monkeypatch
) -> None:
    config = tmp_path / "alerts.yaml"
    config.write_text(f"channels:\n  - {{name: lab-hook, kind: webhook, url: '{server.url}'}}\n")
    monkeypatch.setenv("FARM_ALERTS", str(config))
    lab("zcu104", 1.0)
    model = heavy_model(tmp_path / "heavy.onnx")

    _submit(tmp_path, model, 10, "history.yaml")  # ten nights at the nominal clock
    assert _farm("alerts", "list", "--format", "json").strip() == "[]"

    _farm("lab", "set", "zcu104-1", "clock_mhz=150")
    slow = _submit(tmp_path, model, 3, "slow.yaml")

    alerts = json.loads(_farm("alerts", "list", "--format", "json"))
    opened = [a for a in alerts if a["state"] == "open"]
    assert opened and all(a["confirmed"] for a in opened), (alerts, _farm("results", "--all"))
    p50 = next((a for a in opened if a["metric"] == "latency_ms_p50"), None)
    assert p50 is not None, [(a["metric"], a["state"], a["change_pct"]) for a in alerts]
    assert p50["change_pct"] > 20 and p50["sweep_id"] == slow
    assert "clock 300 -> 150 MHz" in p50["cause"] and "zcu104-1" in p50["cause"]
    with session_scope(farm_env.db_url) as s:
        confirm_sweep = s.get(AlertRow, p50["id"]).confirm_sweep_id
        purpose = s.get(SweepRow, confirm_sweep).purpose
        reruns = s.scalars(select(RunRow.id).where(RunRow.sweep_id == confirm_sweep)).all()
        jobs = s.scalars(
            select(JobRow.key).where(JobRow.sweep_id == confirm_sweep, JobRow.kind == "run")
        ).all()
    assert (
        purpose == "confirmation" and len(reruns) == 3 and sorted(jobs) == ["run:B:0", "run:B:1", "run:B:2"]
    )

    # one notification for the sweep's alerts, on the real webhook
    (first,) = [json.loads(body) for _, _, body in server.received]
    assert "confirmed" in first["title"] and {a["id"] for a in first["alerts"]} == {a["id"] for a in opened}
    assert "p50 latency" in first["text"] and "(emulated)" in first["text"]  # emulated says so everywhere
    assert p50["labels"] == {"night": "slow.yaml"}  # the sweep's version labels travel with the alert

    result = CliRunner().invoke(cli, ["alerts", "check", "--sweep", slow])
    assert result.exit_code == 1 and "confirmed regression" in result.output

    _farm("lab", "set", "zcu104-1", "--reset")
    _submit(tmp_path, model, 3, "fixed.yaml")
    after = {a["id"]: a for a in json.loads(_farm("alerts", "list", "--format", "json"))}
    assert after[p50["id"]]["state"] == "resolved" and "back to" in after[p50["id"]]["reason"]
    still = [a for a in opened if after[a["id"]]["state"] != "resolved"]
    if still:  # a noisier metric of the group has not come back yet: its resolved notice waits GROUP_WAIT
        assert not _resolved_notices(server), (still, server.received)
        later = utcnow() + delivery.GROUP_WAIT + timedelta(seconds=1)
        delivery.flush(farm_env.db_url, now=later)
        delivery.deliver_due(farm_env.db_url, now=later)
    (notice,) = _resolved_notices(server)  # one for the group: what resolved, and why
    assert p50["id"] in [a["id"] for a in notice["alerts"]] and "back to" in notice["text"], notice
    with session_scope(farm_env.db_url) as s:
        assert all(d.state == "sent" for d in s.scalars(select(AlertDeliveryRow)))
