"""stats.py: LoadGen's percentile rule, numpy agreement, summaries."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

AGENT_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "workers",
    "agent",
)


def _load(name):
    """Load one stdlib/numpy-only agent module under a private name (no sys.path change)."""
    spec = importlib.util.spec_from_file_location(
        f"_farm_agent_{name}", os.path.join(AGENT_DIR, name + ".py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stats = _load("stats")


# LoadGen 6.0.17 on N hand-timed SingleStream queries with latencies 2, 4, ..., 2N ms reported these
# percentiles (ms): its rule is sorted[floor(N * fraction)].
LOADGEN_OBSERVED = {
    10: {0.50: 12, 0.90: 20, 0.95: 20, 0.97: 20, 0.99: 20, 0.999: 20},
    23: {0.50: 24, 0.90: 42, 0.95: 44, 0.97: 46, 0.99: 46, 0.999: 46},
    67: {0.50: 68, 0.90: 122, 0.95: 128, 0.97: 130, 0.99: 134, 0.999: 134},
}


@pytest.mark.parametrize("n", sorted(LOADGEN_OBSERVED))
def test_loadgen_rule_matches_what_loadgen_reported(n):
    samples = [2.0 * (k + 1) for k in range(n)]
    shuffled = list(np.random.default_rng(n).permutation(samples))
    for fraction, expected in LOADGEN_OBSERVED[n].items():
        assert stats.percentile(shuffled, fraction) == expected, (n, fraction)


def test_reported_percentiles_follow_the_loadgen_index_rule():
    rng = np.random.default_rng(1)
    for n in list(range(1, 300)) + [999, 1000, 1001, 12345]:
        samples = rng.lognormal(size=n)
        ordered = sorted(samples)
        summary = stats.summarize(samples)
        for key, fraction in stats.PERCENTILES:
            assert summary[key] == ordered[int(n * fraction)], (n, key)  # LoadGen: sorted[n * p]
            if n < 300:  # same element as numpy "higher" (away from floating-point boundaries)
                assert summary[key] == np.percentile(samples, fraction * 100, method="higher"), (n, key)


def test_floating_point_boundary_follows_loadgen_not_numpy():
    # 1001 * 0.999 = 999.999 -> index 999 (LoadGen); numpy computes 1000 * 0.999 = 999.0000000000001 -> 1000.
    samples = np.arange(1001, dtype=float)
    assert stats.percentile(samples, 0.999) == 999.0
    assert np.percentile(samples, 99.9, method="higher") == 1000.0


def test_rule_differs_from_numpy_higher_for_p97():
    # floor(67 * 0.97) = 64 but numpy "higher" takes ceil(66 * 0.97) = 65: documented difference.
    samples = np.arange(67, dtype=float)
    assert stats.percentile(samples, 0.97) == 64.0
    assert np.percentile(samples, 97, method="higher") == 65.0


def test_numpy_methods_pass_through():
    samples = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(samples, 0.5, method="linear") == 2.5
    assert stats.percentile(samples, 0.5, method="higher") == 3.0
    assert stats.percentile(samples, 0.5) == 3.0  # loadgen: sorted[floor(4 * 0.5)] = sorted[2]
    summary = stats.summarize(samples, method="linear")
    assert summary["p90"] == pytest.approx(np.percentile(samples, 90))


def test_summarize_known_values():
    summary = stats.summarize([5, 1, 4, 2, 3])
    assert list(summary) == list(stats.SUMMARY_KEYS)
    assert summary["min"] == 1.0 and summary["max"] == 5.0 and summary["mean"] == 3.0
    assert summary["p50"] == 3.0  # sorted[floor(2.5)] = sorted[2]
    assert summary["p90"] == summary["p99.9"] == 5.0  # sorted[4]
    values = [summary[k] for k in ("min", "p50", "p90", "p95", "p99", "p99.9", "max")]
    assert values == sorted(values)


def test_single_sample_and_errors():
    assert stats.summarize([7]) == dict((k, 7.0) for k in stats.SUMMARY_KEYS)
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.percentile([1, 2], 1.5)


def test_subsample_keeps_ends_and_cap():
    samples = list(range(25000))
    sub = stats.subsample(samples, 10000)
    assert len(sub) == 10000
    assert sub[0] == 0 and sub[-1] == 24999
    assert sub == sorted(sub)  # strided in time order, not a prefix
    assert stats.subsample([3, 1, 2], 10) == [3, 1, 2]
