"""Latency statistics for SUT-side samples.

Percentile method
-----------------
The default, ``"loadgen"``, is the rule MLPerf LoadGen uses for its own reports
(``pr.sample_latencies[sample_count * lp.percentile]`` in its results.cc; also checked against
LoadGen 6.0.17 with hand-timed queries): sort the samples and take the element at 0-based index
``int(n * fraction)``, computed in double precision like LoadGen's C++, clamped to ``n - 1``. It is a
nearest-rank style rule and always returns an observed sample, never an interpolated one. For the
fractions the agent reports (0.5, 0.9, 0.95, 0.99, 0.999) it is mathematically the element numpy's
``method="higher"`` picks, but numpy's floating-point index can land one higher on exact boundaries
(e.g. n=1001, 0.999), and the two differ for other fractions (e.g. 0.97). Any numpy method name
("linear", "higher", ...) may be passed instead.
"""

from __future__ import annotations

import math

import numpy as np

#: (output key, fraction) for the percentiles the agent reports; fractions are literal, as in LoadGen.
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999))

#: Every key :func:`summarize` returns, in output order.
SUMMARY_KEYS = ("min", "max", "mean") + tuple(key for key, _ in PERCENTILES)


def _sorted(samples):
    arr = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if arr.size == 0:
        raise ValueError("no samples")
    return arr


def _numpy_percentile(arr, q, method):
    try:
        return float(np.percentile(arr, q, method=method))
    except TypeError:  # numpy < 1.22 (old board images) calls it "interpolation"
        return float(np.percentile(arr, q, interpolation=method))


def percentile(samples, fraction, method="loadgen"):
    """The ``fraction`` (0..1) percentile of ``samples`` by ``method`` (see module docstring)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be in [0, 1], got %r" % (fraction,))
    arr = _sorted(samples)
    if method == "loadgen":
        return float(arr[min(arr.size - 1, int(math.floor(arr.size * fraction)))])
    return _numpy_percentile(arr, fraction * 100.0, method)


def summarize(samples, method="loadgen"):
    """``{"min", "max", "mean", "p50", "p90", "p95", "p99", "p99.9"}`` of ``samples`` (same unit)."""
    arr = _sorted(samples)
    out = {"min": float(arr[0]), "max": float(arr[-1]), "mean": float(arr.mean())}
    for key, fraction in PERCENTILES:
        if method == "loadgen":
            out[key] = float(arr[min(arr.size - 1, int(math.floor(arr.size * fraction)))])
        else:
            out[key] = _numpy_percentile(arr, fraction * 100.0, method)
    return out


def subsample(samples, cap):
    """At most ``cap`` samples, evenly strided over the whole run (keeps the time profile, unlike a prefix)."""
    n = len(samples)
    if n <= cap:
        return list(samples)
    idx = np.linspace(0, n - 1, cap).round().astype(np.int64)
    return [samples[i] for i in idx]
