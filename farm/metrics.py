"""The metric catalog: every figure the farm stores or shows, with its unit and which way is better.

One table, so the CLI, the dashboard, the read side and stability agree on what a name means, how to
label it and whether a change is an improvement (alerts and procurement read it the same way). A name is
the one the store writes (``metrics.name``); the unit is the one it stores with it (``metrics.unit``).

The table's order is the order the read side lists metrics in (results, Compare, Trends, the terminal
table): a view's list is the catalog filtered by view, so those outputs keep their column order.

The headline metric of a scenario is the farm-agent contract's (``farm.workers.agent.protocol``), never a
second table here: :func:`headline` only passes the sweep's MultiStream percentile on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from farm.workers.agent.protocol import DEFAULT_MULTISTREAM_PERCENTILE, headline_metric

Better = Literal["lower", "higher", "neither"]
Kind = Literal[
    "latency",
    "throughput",
    "power",
    "energy",
    "efficiency",
    "temperature",
    "clock",
    "accuracy",
    "fidelity",
    "count",
    "time",
    "drift",
    "flag",
]
#: Where a metric comes from: a run's stored metrics, or the compiled artifact (compile-time fidelity).
Origin = Literal["run", "artifact"]

#: Views, each an ordered list of the catalog: `farm results` and its JSON/CSV, the dashboard's Compare
#: and Trends, and the terminal results table.
RESULTS, COMPARE, TRENDS, TABLE = "results", "compare", "trends", "table"
VIEWS = (RESULTS, COMPARE, TRENDS, TABLE)


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # as stored with the value
    better: Better
    kind: Kind
    label: str  # a short human name: "p99 latency"
    short: str = ""  # a terse column header for the terminal table ("p99 ms"); the label when empty
    unit_text: str = ""  # the unit in words for an axis ("inferences/s"); the unit when empty
    headline: bool = False  # some scenario's headline (protocol.headline_metric) can be this metric
    derived: bool = False  # the read side computes it where a run did not store it
    origin: Origin = "run"
    views: frozenset[str] = frozenset()
    # Regression alerts (docs/alerts.md): a watched metric's change must be at least this large to alert,
    # however significant; relative for rates and times, absolute for temperatures and accuracies.
    min_change_pct: float = 0.0
    min_change_abs: float = 0.0

    @property
    def watched(self) -> bool:
        """Alerts watch it: it has a better direction and a minimum change."""
        return self.better != "neither" and (self.min_change_pct > 0 or self.min_change_abs > 0)

    @property
    def unit_label(self) -> str:
        """The unit as a reader wants it on an axis ("inferences/s", "°C")."""
        return self.unit_text or self.unit

    @property
    def title(self) -> str:
        """Label with unit, for an axis or a panel: "Throughput (inferences/s)"."""
        return f"{self.label} ({self.unit_label})"

    @property
    def header(self) -> str:
        return self.short or self.label

    @property
    def better_text(self) -> str:
        return "no better direction" if self.better == "neither" else f"{self.better} is better"


def _v(*views: str) -> frozenset[str]:
    return frozenset(views)


# View sets: R results, C Compare, T Trends, X the terminal table.
_R, _RCT, _RCTX, _CT, _T = (
    _v(RESULTS),
    _v(RESULTS, COMPARE, TRENDS),
    _v(RESULTS, COMPARE, TRENDS, TABLE),
    _v(COMPARE, TRENDS),
    _v(TRENDS),
)

#: The latency percentiles the farm stores (``latency_ms_<p>``), as protocol.percentile_key writes them.
PERCENTILES = ("p50", "p90", "p95", "p99", "p99_9")

#: The smallest latency change that alerts, per percentile (%). The median of a quiet board moves by well
#: under 1 % run to run, so 2 % is a real change; tails move more (fewer samples behind each): 5 % at p99.
LATENCY_MIN_CHANGE_PCT = {"p50": 2.0, "p90": 3.0, "p95": 4.0, "p99": 5.0, "p99_9": 8.0, "mean": 2.0}


def _latency(suffix: str, views: frozenset[str], headline: bool) -> Metric:
    label = f"{suffix.replace('_', '.')} latency"
    return Metric(
        f"latency_ms_{suffix}",
        "ms",
        "lower",
        "latency",
        label,
        f"{suffix} ms",
        headline=headline,
        views=views,
        min_change_pct=LATENCY_MIN_CHANGE_PCT.get(suffix, 0.0),
    )


def _completion(suffix: str, views: frozenset[str] = frozenset()) -> Metric:
    # Offline: from the one query's issue to each sample's completion, not per inference (farm.services.run)
    label = f"Offline {suffix.replace('_', '.')} completion"
    return Metric(f"offline_completion_ms_{suffix}", "ms", "lower", "latency", label, views=views)


#: Accuracies are ratios: half a percentage point is the smallest change that alerts.
_POINT = {"min_change_abs": 0.005}

CATALOG: tuple[Metric, ...] = (
    # LoadGen's latencies: every percentile is some MultiStream sweep's headline (its configured one)
    *(_latency(p, _RCTX if p in ("p50", "p90", "p99") else _RCT, headline=True) for p in PERCENTILES),
    _latency("mean", _RCT, headline=False),
    # the spread a user feels: p99 - p50 of one run (farm.queries.compare derives it; never stored)
    Metric("latency_jitter_ms", "ms", "lower", "latency", "Jitter (p99 - p50)", "jitter ms", derived=True),
    Metric(
        "throughput_ips",
        "1/s",
        "higher",
        "throughput",
        "Throughput",
        "inf/s",
        "inferences/s",
        headline=True,
        views=_RCTX,
        min_change_pct=2.0,
    ),
    # Server: the highest QPS whose latency met the bound, and LoadGen's p99 at it
    Metric(
        "server_qps_max",
        "1/s",
        "higher",
        "throughput",
        "Server max QPS",
        unit_text="queries/s",
        headline=True,
        views=_R,
        min_change_pct=3.0,  # a bounded search: its steps are coarser than a throughput's noise
    ),
    Metric(
        "server_latency_ms_p99_at_max", "ms", "lower", "latency", "Server p99 latency at max QPS", views=_R
    ),
    # power, energy, thermal, clock (boards with sensors)
    Metric("power_w", "W", "lower", "power", "Average power", "W", views=_RCTX, min_change_pct=3.0),
    Metric(
        "energy_mj_per_inference",
        "mJ",
        "lower",
        "energy",
        "Energy per inference",
        "mJ/inf",
        derived=True,
        views=_RCTX,
        min_change_pct=3.0,
    ),
    Metric(
        "inferences_per_joule",
        "1/J",
        "higher",
        "efficiency",
        "Perf per watt",
        unit_text="inferences/J",
        derived=True,
        views=_CT,
    ),
    Metric(
        "temp_c_max",
        "C",
        "lower",
        "temperature",
        "Max temperature",
        unit_text="°C",
        views=_RCT,
        min_change_abs=5.0,  # degrees: the room moves a board by a few
    ),
    Metric("clock_mhz_min", "MHz", "higher", "clock", "Min clock", views=_CT),  # lower: it throttled
    # accuracy (docs/accuracy.md): on the run's own inputs (int8 vs fp32) and on the sweep's dataset
    Metric(
        "int8_fp32_top1_agreement",
        "ratio",
        "higher",
        "fidelity",
        "INT8/FP32 top-1 agreement",
        views=_R,
        **_POINT,
    ),
    Metric("int8_fp32_sqnr_db", "dB", "higher", "fidelity", "INT8/FP32 SQNR", views=_R),
    Metric("accuracy_top1", "ratio", "higher", "accuracy", "Top-1 accuracy", views=_R, **_POINT),
    Metric("accuracy_top5", "ratio", "higher", "accuracy", "Top-5 accuracy", views=_R, **_POINT),
    Metric("accuracy_samples", "count", "neither", "count", "Accuracy images", views=_R),
    Metric(
        "int8_fp32_dataset_top1_agreement",
        "ratio",
        "higher",
        "fidelity",
        "INT8/FP32 top-1 agreement (dataset)",
        views=_R,
        **_POINT,
    ),
    # what only a trend follows
    Metric("power_w_peak", "W", "lower", "power", "Peak power", views=_T),
    _completion("p50", _T),
    _completion("p99", _T),
    # stored, shown in a run's detail only
    _latency("min", frozenset(), headline=False),
    _latency("max", frozenset(), headline=False),
    *(_completion(s) for s in ("p90", "p95", "p99_9", "mean", "min", "max")),
    Metric("int8_fp32_samples", "count", "neither", "count", "INT8/FP32 samples compared"),
    # thermal soak (farm/services/soak.py)
    Metric("soak_time_to_steady_s", "s", "neither", "time", "Soak: time to thermal steady state"),
    Metric("soak_steady_temp_c", "C", "lower", "temperature", "Soak: steady temperature", unit_text="°C"),
    Metric("soak_throttled", "bool", "lower", "flag", "Soak: throttled"),
    Metric("soak_throttle_at_s", "s", "higher", "time", "Soak: throttling from"),  # later is better
    Metric("soak_latency_drift_pct", "%", "lower", "drift", "Soak: latency drift"),  # + means slower
    # the compiled artifact's fidelity, shown beside a run (farm.queries.runs.results)
    Metric(
        "int8_top1_agreement",
        "ratio",
        "higher",
        "fidelity",
        "Artifact INT8/FP32 top-1 agreement",
        "int8 top1 agr",
        origin="artifact",
        views=_v(TABLE),
    ),
    Metric("int8_sqnr_db", "dB", "higher", "fidelity", "Artifact INT8/FP32 SQNR", origin="artifact"),
)

_BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOG}


def get(name: str) -> Metric:
    """The catalog's entry; KeyError names the unknown metric."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the metric catalog (farm/metrics.py)") from None


def find(name: str) -> Metric | None:
    """The entry, or None for a name the catalog does not know (e.g. one an older farm stored)."""
    return _BY_NAME.get(name)


def watched() -> tuple[Metric, ...]:
    """The metrics regression alerts watch, in catalog order."""
    return tuple(m for m in CATALOG if m.watched)


def unit(name: str) -> str:
    return get(name).unit


def stored(name: str, value: float) -> tuple[str, float, str]:
    """``(name, value, unit)`` as a producer hands it to the store, the unit from the catalog: a name the
    catalog lacks fails here, not later on a page."""
    return name, float(value), get(name).unit


def better(name: str) -> Better:
    return get(name).better


def label(name: str) -> str:
    """The human name, or the name itself for one the catalog does not know (pages must not fail on it)."""
    found = find(name)
    return found.label if found else name


def title(name: str) -> str:
    found = find(name)
    return found.title if found else name


def names(
    *, kind: Kind | None = None, view: str | None = None, headline: bool | None = None
) -> tuple[str, ...]:
    """The catalog's names, in its order, filtered by kind, view and headline candidacy."""
    if view is not None and view not in VIEWS:
        raise ValueError(f"unknown view {view!r} (one of {', '.join(VIEWS)})")
    return tuple(
        m.name
        for m in CATALOG
        if (kind is None or m.kind == kind)
        and (view is None or view in m.views)
        and (headline is None or m.headline == headline)
    )


def is_improvement(name: str, before: float, after: float) -> bool:
    """True when going from ``before`` to ``after`` is better by the metric's direction (never for
    "neither")."""
    direction = better(name)
    if direction == "lower":
        return after < before
    if direction == "higher":
        return after > before
    return False


def is_regression(name: str, before: float, after: float) -> bool:
    """True when going from ``before`` to ``after`` is worse by the metric's direction (never for
    "neither")."""
    direction = better(name)
    return direction != "neither" and after != before and not is_improvement(name, before, after)


def worse_beyond_min_change(name: str, before: float, after: float) -> bool:
    """A regression by the metric's direction and at least its minimum change (every threshold it sets):
    what alerts, confirmation and automatic resolution all mean by "still a regression"."""
    m = get(name)
    if not is_regression(name, before, after):
        return False
    pct = abs(after - before) / abs(before) * 100 if before else float("inf")
    return (m.min_change_pct <= 0 or pct >= m.min_change_pct) and (
        m.min_change_abs <= 0 or abs(after - before) >= m.min_change_abs
    )


def headline(scenario: str, multistream_percentile: float = DEFAULT_MULTISTREAM_PERCENTILE) -> str:
    """The scenario's headline metric name (the contract's rule); MultiStream's is the latency at the
    sweep's ``loadgen.multi_stream_target_latency_percentile``. ValueError for an unknown scenario."""
    return headline_metric(scenario, multistream_percentile)
