"""farm.queries.compare on hand-built stored runs: verdicts from seeded bootstrap intervals, warnings over
flagged and INVALID baselines, the one-sweep selection rule, and comparisons across precisions."""

from __future__ import annotations

import pytest

from farm.db.session import session_scope
from farm.queries.compare import CompareError, Comparison, compare_targets, verdict
from tests.farm.queries.stored import figures, runs, sweep

FAST = [2.0, 2.1, 1.9, 2.05, 1.95]
SLOW = [10.0, 10.4, 9.7, 10.1, 9.9]


def _compare(db_url: str, **kw) -> Comparison:
    with session_scope(db_url) as s:
        return compare_targets(s, "resnet18", **kw)


def _ratio(result: Comparison, metric: str, fpga: str = "zcu104", baseline: str = "cpu"):
    return next(r for r in result.ratios if (r.fpga, r.baseline, r.metric) == (fpga, baseline, metric))


def test_a_clear_speedup_is_faster_with_an_interval_above_one(farm_env) -> None:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(p, 1000 / p, 10.0) for p in FAST])
    runs(url, sid, "cpu", [figures(p, 1000 / p, 60.0) for p in SLOW], precision="fp32")
    result = _compare(url)
    speedup = _ratio(result, "speedup_p50")
    assert speedup.ratio == pytest.approx(10.0 / 2.0)
    assert 1.0 < speedup.low <= speedup.ratio <= speedup.high
    assert speedup.verdict == "faster"
    assert _ratio(result, "perf_per_watt").verdict == "better"
    assert _ratio(result, "energy_per_inference").low > 1.0
    zcu = next(t for t in result.targets if t.target == "zcu104")
    assert zcu.interval_from == "repeats" and zcu.family == "fpga" and zcu.source == "measured"
    p50 = zcu.metrics["latency_ms_p50"]
    assert p50.low <= p50.median == 2.0 <= p50.high
    assert zcu.metrics["latency_jitter_ms"].median == pytest.approx(0.6)
    assert _compare(url).to_json() == result.to_json(), "seeded: the same database gives the same answer"
    winner = {w["metric"]: w for w in result.winners}["throughput_ips"]
    assert winner["winner"] == "zcu104 int8" and winner["verdict"] == "wins"


def test_overlapping_distributions_are_not_distinguishable(farm_env) -> None:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(p, 1000 / p) for p in (9.0, 11.0, 10.0, 12.0, 8.0)])
    runs(url, sid, "cpu", [figures(p, 1000 / p) for p in (10.0, 9.0, 11.0, 8.0, 12.0)])
    speedup = _ratio(_compare(url), "speedup_p50")
    assert speedup.low < 1.0 < speedup.high
    assert speedup.verdict == "not distinguishable"


def test_a_flagged_and_invalid_baseline_is_said_on_its_ratios(farm_env) -> None:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(p, 1000 / p, 10.0) for p in FAST])
    runs(
        url,
        sid,
        "cpu",
        [figures(p, 1000 / p, 60.0) for p in SLOW],
        flags=["noisy-host: load 3.1"],
        valid=False,
    )
    result = _compare(url)
    cpu = next(t for t in result.targets if t.target == "cpu")
    assert cpu.flags == ["noisy-host: load 3.1"] and cpu.valid is False
    for r in result.ratios:
        assert "baseline cpu int8 flagged noisy-host (5 of 5 runs)" in r.warnings
        assert "baseline cpu int8 LoadGen INVALID (5 of 5 runs)" in r.warnings
    assert result.to_json()["ratios"][0]["warnings"], "the JSON carries the warnings too"


def test_the_default_is_the_newest_sweep_that_ran_every_target(farm_env) -> None:
    url = farm_env.db_url
    whole = sweep(url, "whole", hours=0)
    runs(url, whole, "zcu104", [figures(2.0, 500)])
    runs(url, whole, "cpu", [figures(10.0, 100)])
    newer = sweep(url, "fpga-only", hours=5)  # newer, but without the CPU baseline
    runs(url, newer, "zcu104", [figures(3.0, 330)])
    result = _compare(url)
    assert not result.selection["mixed"]
    assert [w["sweep_id"] for w in result.selection["sweeps"]] == [whole]
    assert {t.sweep_id for t in result.targets} == {whole}
    pinned = _compare(url, sweep_id=newer[:8])  # a unique prefix pins it
    assert [t.target for t in pinned.targets] == ["zcu104"]
    assert pinned.targets[0].metrics["latency_ms_p50"].median == 3.0


def test_a_selection_that_must_mix_sweeps_is_labelled(farm_env) -> None:
    url = farm_env.db_url
    fpga = sweep(url, "fpga", hours=0)
    runs(url, fpga, "zcu104", [figures(2.0, 500)])
    cpu = sweep(url, "cpu", hours=1)
    runs(url, cpu, "cpu", [figures(10.0, 100)])
    result = _compare(url)
    assert result.selection["mixed"] and result.selection["sweep_rule"] == "mixed selection"
    assert {t.target: t.sweep_id for t in result.targets} == {"zcu104": fpga, "cpu": cpu}
    assert f"different sweeps: {fpga[:8]} vs {cpu[:8]}" in _ratio(result, "throughput").warnings


def test_across_precisions_each_side_at_its_best_with_accuracy(farm_env) -> None:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(p, 1000 / p, 10.0) for p in FAST], agreement=0.98)
    runs(url, sid, "cpu", [figures(p, 1000 / p, 60.0) for p in SLOW], precision="fp32")
    runs(url, sid, "cpu", [figures(p * 0.5, 2000 / p, 60.0) for p in SLOW], precision="int8",
         agreement=0.97)  # fmt: skip
    runs(
        url,
        sid,
        "gpu",
        [figures(p / 2, 2000 / p, 200.0, accuracy_top1=0.761) for p in SLOW],
        precision="fp32",
    )
    result = _compare(url)
    by = {t.target: t for t in result.targets}
    assert {k: t.precision for k, t in by.items()} == {"zcu104": "int8", "cpu": "fp32", "gpu": "fp32"}
    assert by["zcu104"].accuracy == {"metric": "int8_top1_agreement", "label": "Artifact INT8/FP32 top-1 agreement",
                                     "value": 0.98}  # fmt: skip
    assert by["gpu"].accuracy["metric"] == "accuracy_top1" and by["gpu"].accuracy["value"] == 0.761
    assert by["cpu"].accuracy["label"] == "the FP32 reference"
    assert "across precisions: int8 vs fp32 (compare their accuracy)" in _ratio(result, "throughput").warnings
    assert [t.family for t in result.targets] == ["fpga", "gpu", "cpu"]
    assert {(r.baseline, r.metric) for r in result.ratios} >= {("gpu", "speedup_p50"), ("cpu", "speedup_p50")}
    given = _compare(url, precisions=("int8",))
    assert {t.target: t.precision for t in given.targets} == {"zcu104": "int8", "cpu": "int8"}
    assert given.selection["precision_rule"] == "as given"


def test_one_repeat_takes_its_interval_from_its_latency_samples(farm_env) -> None:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(2.0, 500, 10.0)], samples=[2.0 + 0.001 * (i % 50) for i in range(500)],
         source="emulated")  # fmt: skip
    runs(url, sid, "cpu", [figures(10.0, 100, 60.0)], samples=[10.0 + 0.01 * (i % 50) for i in range(500)])
    result = _compare(url)
    zcu = next(t for t in result.targets if t.target == "zcu104")
    assert zcu.interval_from == "latency samples (one run)"
    tp = zcu.metrics["throughput_ips"]
    assert tp.low < tp.median < tp.high
    assert zcu.metrics["power_w"].low is None, "power has no samples: a point"
    speedup = _ratio(result, "speedup_p50")
    assert speedup.verdict == "faster"
    assert "FPGA zcu104 int8 (emulated) is emulated: modelled, not measured" in speedup.warnings


def test_confirmation_reruns_are_not_a_selection(farm_env) -> None:
    url = farm_env.db_url
    sid = sweep(url, "nightly")
    runs(url, sid, "zcu104", [figures(2.0, 500)])
    runs(url, sid, "cpu", [figures(10.0, 100)])
    confirm = sweep(url, "confirm", hours=3, purpose="confirmation")
    runs(url, confirm, "zcu104", [figures(2.5, 400)])
    assert not _compare(url).selection["mixed"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sweep_id": "not-a-sweep"}, "unknown sweep 'not-a-sweep'"),
        (
            {"scenario": "Offline"},
            "no runs with scenario 'Offline' for this selection (with runs: SingleStream)",
        ),
        ({"precisions": ("fp16",)}, "no runs with precision 'fp16'"),
    ],
)
def test_what_the_database_cannot_answer_is_one_clear_error(farm_env, kw, message) -> None:
    url = farm_env.db_url
    runs(url, sweep(url, "nightly"), "cpu", [figures(10.0, 100)])
    with pytest.raises(CompareError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        _compare(url, **kw)
    with session_scope(url) as s, pytest.raises(CompareError, match="no runs of model 'vgg'.*resnet18"):
        compare_targets(s, "vgg")


def test_verdict_words() -> None:
    assert verdict(1.2, 3.0) == "faster"
    assert verdict(0.2, 0.9, ("better", "worse")) == "worse"
    assert verdict(0.9, 1.1) == verdict(None, None) == "not distinguishable"
