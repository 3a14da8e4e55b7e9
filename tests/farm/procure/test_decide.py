"""decide() on a database built by Alembic: which runs count, the SLA rule, sources labelled, placeholders
reported, the verdict, the mix and the sensitivity."""

from __future__ import annotations

import json
from typing import Any

import pytest

from farm.config import Settings
from farm.db.session import session_scope
from farm.perfmodel.target import load_catalog
from farm.procure import ProcureError, decide, from_catalog, sensitivity, workload
from farm.procure.capacity import queue_capacity
from farm.procure.predicted import Predicted
from tests.farm.procure.store import NOW, add_alert, add_run, probe

SERVER = workload(
    "mobilenet_v2", precisions=["int8"], p99_ms=10, qps=2000, boards=["zcu104", "vck190", "kv260"]
)


def fake_predictor(model: str, board_type: str, batch: int, bt: Any) -> Predicted | str:
    """Fixed figures, so the test does not depend on the model's calibration."""
    table = {"vck190": (1.1, 1350.0, 3000.0), "kv260": (3.5, 280.0, 392.0), "pynq-z2": (17.1, 58.0, 58.0)}
    if board_type not in table:
        return "no performance model"
    lat, st, mt = table[board_type]
    return Predicted(lat, st, mt, "test/1", 9.6 if board_type == "vck190" else 16.4, "test")


def zcu104_server(db: str, day: float = 0, **kw: Any) -> int:
    return add_run(db, target="zcu104", scenario="Server", day=day, metrics={"power_w": 20.0},
                   probes=[probe(300, 3.0, 0.4), probe(450, 5.0, 0.6), probe(675, 25.0, 0.95)], **kw)  # fmt: skip


def run(db: str, w=SERVER, **kw: Any):
    with session_scope(db) as s:
        return decide(s, w, predictor=fake_predictor, now=NOW, draws=400, **kw)


def test_measured_server_runs_give_the_interpolated_capacity(farm_env: Settings) -> None:
    """Probes 450 q/s at 5 ms and 675 at 25 ms, bound 10: 450 + 5 x 225 / 20 = 506.25 q/s; three runs
    alike, so their median is that; N = ceil(2000 / (506.25 x 0.7)) = 6 boards."""
    db = farm_env.db_url
    ids = [zcu104_server(db, day=d) for d in (0, 1, 2)]
    d = run(db)
    z = next(c for c in d.candidates if c.board_type == "zcu104")
    assert z.source == "measured" and z.capacity_basis == "Server probes"
    assert z.capacity_qps == pytest.approx(506.25)
    assert 450 <= z.capacity_qps_low <= z.capacity_qps <= z.capacity_qps_high <= 675
    assert z.boards_needed == 6 and z.run_ids == sorted(ids)
    assert z.active_w == 20.0 and "measured power_w" in z.active_w_source
    assert z.newest_run_age_days == 8.0
    assert z.capex_usd == 6 * 3500  # the seed design's price, not a placeholder
    assert not any("zcu104" in p for p in z.placeholders_used)


def test_predicted_boards_are_labelled_and_wider(farm_env: Settings) -> None:
    """vck190 has no run: predicted, with the model's error; its relative interval is wider than the
    measured zcu104's. kv260's placeholder price is reported."""
    db = farm_env.db_url
    for day in (0, 1, 2):
        zcu104_server(db, day=day)
    d = run(db)
    by = {c.board_type: c for c in d.candidates}
    v = by["vck190"]
    assert v.source == "predicted" and v.label == "vck190 int8 (predicted)" and v.run_ids == []
    assert v.prediction_error_pct == 9.6 and v.newest_run_age_days is None
    assert "catalog TDP" in v.active_w_source
    rel = lambda c: (c.capacity_qps_high - c.capacity_qps_low) / c.capacity_qps  # noqa: E731
    assert rel(v) > rel(by["zcu104"])
    # kv260 predicted at 392/s (2.5 ms a query): the M/D/1 rule keeps about 160/s within 10 ms, placeholder
    # price reported; pynq-z2's one query already takes longer than the bound: ruled out with the reason
    k = by["kv260"]
    assert k.source == "predicted" and 100 < k.capacity_qps < 200 and k.placeholders_used
    with session_scope(db) as s:
        wide = workload(
            "mobilenet_v2", precisions=["int8"], p99_ms=10, qps=2000, boards=["zcu104", "pynq-z2"]
        )
        pynq = next(r for r in decide(s, wide, predictor=fake_predictor, now=NOW, draws=100).ruled_out)
    assert pynq.board_type == "pynq-z2" and pynq.source == "predicted"
    assert "exceeds the 10 ms bound" in pynq.reason
    assert d.assumptions["workload"]["qps"] == 2000 and d.assumptions["economics"]["headroom"] == 0.3


def test_singlestream_above_the_bound_is_ruled_out(farm_env: Settings) -> None:
    db = farm_env.db_url
    zcu104_server(db)
    add_run(
        db, target="zcu104", scenario="SingleStream", metrics={"latency_ms_p99": 12.5, "throughput_ips": 260}
    )
    d = run(db)
    r = next(r for r in d.ruled_out if r.board_type == "zcu104")
    assert r.reason == "SingleStream p99 12.5 ms already exceeds the 10 ms bound" and r.source == "measured"


def test_unusable_runs_skipped_and_open_alert_warned(farm_env: Settings) -> None:
    """An INVALID run and a noisy-host run are skipped and counted; an open alert on the series is a
    warning; emulated runs beside measured ones are named, not used."""
    db = farm_env.db_url
    good = zcu104_server(db, day=0)
    zcu104_server(db, day=1, valid=False)
    zcu104_server(db, day=2, flags=["noisy-host: load 3.2"])
    add_run(
        db, target="zcu104", scenario="Server", source="emulated", metrics={}, probes=[probe(900, 2.0, 0.5)]
    )
    add_alert(db, target="zcu104", run_id=good)
    z = next(c for c in run(db).candidates if c.board_type == "zcu104")
    assert z.run_ids == [good]
    text = " | ".join(z.warnings)
    assert "1 LoadGen INVALID" in text and "1 flagged noisy-host" in text
    assert "open regression alert" in text and "emulated runs exist too" in text
    with_flagged = workload("mobilenet_v2", precisions=["int8"], p99_ms=10, qps=2000, boards=["zcu104"],
                            include_flagged=True)  # fmt: skip
    assert len(run(db, with_flagged).candidates[0].run_ids) == 2


def test_emulated_only_and_server_estimate(farm_env: Settings) -> None:
    """Emulated SingleStream + Offline runs and no Server run: the M/D/1 estimate on the Offline
    throughput (1 ms a query, bound 10 ms), labelled emulated and estimate."""
    db = farm_env.db_url
    add_run(db, target="zcu104", scenario="SingleStream", source="emulated",
            metrics={"latency_ms_p99": 4.0, "throughput_ips": 250.0})  # fmt: skip
    add_run(db, target="zcu104", scenario="Offline", source="emulated", metrics={"throughput_ips": 1000.0})
    z = run(db).candidates
    z = next(c for c in z if c.board_type == "zcu104")
    assert z.source == "emulated" and z.label == "zcu104 int8 (emulated)"
    assert z.capacity_basis.startswith("Server estimate (M/D/1")
    assert (
        z.capacity_qps == pytest.approx(queue_capacity(1000.0, 10), rel=1e-6) and 500 < z.capacity_qps < 1000
    )


def test_verdict_json_shape_mix_and_sensitivity(farm_env: Settings) -> None:
    db = farm_env.db_url
    for day in (0, 1, 2):
        zcu104_server(db, day=day)
    d = run(db, mix=True)
    doc = json.loads(json.dumps(d.to_json()))
    assert set(doc) >= {"assumptions", "candidates", "ruled_out", "verdict"}
    need = {"board_type", "source", "capacity_qps", "capacity_qps_low", "capacity_qps_high", "boards_needed",
            "capex_usd", "energy_usd_per_year", "tco_usd_per_year", "usd_per_million_inferences",
            "inferences_per_joule", "run_ids", "placeholders_used", "warnings", "newest_run_age_days"}  # fmt: skip
    assert all(need <= set(c) for c in doc["candidates"])
    assert doc["verdict"]["status"] in ("clear", "too close")
    assert doc["verdict"]["p_first_cheaper"] is not None
    assert [c["rank"] for c in doc["candidates"]][0] == 1
    s = sensitivity(d, "electricity", [0.0, 0.15, 5.0])
    assert [r["value"] for r in s.rows] == [0.0, 0.15, 5.0]
    for b in s.break_even:
        assert 0.0 <= b["at"] <= 5.0 and b["from"] != b["to"]
    with pytest.raises(ProcureError, match="unknown parameter"):
        sensitivity(d, "moon", None)


def test_too_close_to_call(farm_env: Settings) -> None:
    """Two board types with the same capacity bracket and near prices: the data cannot separate them."""
    db = farm_env.db_url
    catalog = load_catalog()
    costs = from_catalog(catalog)
    from dataclasses import replace

    costs.boards["ultra96-v2"] = replace(costs.boards["zcu104"], board_type="ultra96-v2", list_usd=3510)
    for target in ("zcu104", "ultra96-v2"):
        add_run(db, target=target, scenario="Server", metrics={"power_w": 20.0},
                probes=[probe(400, 3.0, 0.4), probe(800, 30.0, 0.9)])  # fmt: skip
    w = workload("mobilenet_v2", precisions=["int8"], p99_ms=10, qps=2000, boards=["zcu104", "ultra96-v2"])
    with session_scope(db) as s:
        d = decide(s, w, costs, catalog=catalog, predictor=fake_predictor, now=NOW, draws=400)
    assert d.verdict.status == "too close" and "cannot separate" in d.verdict.text
    assert [c.rank for c in d.candidates] == [1, 1]


def test_unknown_board_type_and_nothing_meets(farm_env: Settings) -> None:
    db = farm_env.db_url
    with pytest.raises(ProcureError) as err:
        run(db, workload("mobilenet_v2", p99_ms=10, qps=2000, boards=["zcu105"]))
    assert err.value.field == "--boards" and "zcu105" in str(err.value)
    d = run(db, workload("mobilenet_v2", p99_ms=0.01, qps=2000, boards=["zcu104", "cpu", "vck190"]))
    assert d.candidates == [] and d.verdict.status == "none"
    reasons = {r.board_type: r.reason for r in d.ruled_out}
    assert "exceeds the 0.01 ms bound" in reasons["vck190"]
    assert "no performance model" in reasons["cpu"]  # priced (a placeholder) now: no runs, no model
