"""The Compare page on hand-built selections: which wins, ratios with intervals and verdicts, flags, and
the mixed-selection label (farm.queries.compare underneath)."""

from __future__ import annotations

from tests.dashboard.test_dashboard_pages import run_page, texts, winners
from tests.farm.queries.stored import figures, runs, sweep

FAST = [2.0, 2.1, 1.9, 2.05, 1.95]
SLOW = [10.0, 10.4, 9.7, 10.1, 9.9]


def test_which_wins_ratios_verdicts_and_flags(empty_db: str) -> None:
    sid = sweep(empty_db, "nightly")
    runs(empty_db, sid, "zcu104", [figures(p, 1000 / p, 10.0) for p in FAST], agreement=0.98)
    runs(empty_db, sid, "cpu", [figures(p, 1000 / p, 60.0) for p in SLOW], precision="fp32",
         flags=["noisy-host: load 3.1"])  # fmt: skip
    at = run_page("compare")
    wins = winners(at)
    assert wins["Throughput"] == "zcu104 int8" and wins["p50 latency"] == "zcu104 int8"
    assert "5.00x over cpu fp32" in texts(at.caption)
    per_target = at.dataframe[0].value.set_index("target")
    assert per_target.loc["cpu", "flags"] == "noisy-host: load 3.1"
    assert per_target.loc["zcu104", "accuracy"] == 0.98 and per_target.loc["cpu", "precision"] == "fp32"
    assert (
        per_target.loc["zcu104", "latency_ms_p50 low"] < 2.0 < per_target.loc["zcu104", "latency_ms_p50 high"]
    )
    assert "Flagged for a second look: cpu fp32: noisy-host: load 3.1" in texts(at.warning)
    ratios = at.dataframe[2].value.set_index("ratio")
    assert ratios.loc["speedup_p50", "verdict"] == "faster" and ratios.loc["speedup_p50", "low"] > 1
    assert "baseline cpu fp32 flagged noisy-host (5 of 5 runs)" in ratios.loc["speedup_p50", "warnings"]
    assert len(at.get("vega_lite_chart")) == 2  # figures with intervals, ratios with intervals


def test_a_mixed_selection_is_labelled_on_the_page(empty_db: str) -> None:
    fpga = sweep(empty_db, "fpga-only")
    runs(empty_db, fpga, "zcu104", [figures(2.0, 500)])
    runs(empty_db, sweep(empty_db, "cpu-only", hours=1), "cpu", [figures(10.0, 100)])
    at = run_page("compare")
    assert "Mixed selection" in texts(at.warning)
    ratios = at.dataframe[2].value
    assert all(f"different sweeps: {fpga[:8]}" in w for w in ratios["warnings"])
    assert all(v == "not distinguishable" for v in ratios["verdict"]), "one run each, no samples: no interval"
