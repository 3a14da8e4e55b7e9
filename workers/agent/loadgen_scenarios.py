"""The one scenario table: what each LoadGen scenario needs (its TestSettings, how the SUT serves its
queries, how a too-short test is paced again) and what it reports (LoadGen's throughput key, what the
SUT-side samples measure, the headline). The driver, the SUT and the result read it; nothing else branches
on a scenario's name (docs/scenarios.md).

Every figure here is in LoadGen's units: a *sample* is one batch, latencies in ns.
"""

from __future__ import annotations

import collections
import os

import protocol
from backends.base import InfraError

#: What one scenario needs and reports (one row of :data:`SCENARIOS`).
Scenario = collections.namedtuple(
    "Scenario",
    [
        "name",
        "issue",  # the SUT method LoadGen's issue_queries calls (loadgen_sut.Sut)
        "queued",  # queries wait in a FIFO served by one worker thread (not run on LoadGen's thread)
        "settings",  # (settings, record, cfg, fastest_ns) -> None: the scenario's own TestSettings
        "pace_source",  # the settings record's key saying where the pace came from (None: the warmup)
        "measured_pace",  # (values, fastest_ns, cfg) -> ns: the pace a too-short first test showed; None: no rerun
        "search",  # the headline comes from the bounded Server search (server_search.py)
        "throughput_key",  # LoadGen's throughput (samples/s) in its results; None: from the SUT-side window
        "samples_kind",  # what the SUT-side samples in the report measure
        "headline",  # (result, cfg) -> the headline's value
        "headline_unit",
    ],
)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- each scenario's settings


def _single_stream(settings, record, cfg, fastest_ns):
    if cfg["target_latency_ms"] is not None:
        expected_ns, source = int(float(cfg["target_latency_ms"]) * 1e6), "config"
    elif fastest_ns:
        # Underestimating is safe (LoadGen just pre-generates more queries); overestimating can leave too
        # few queries to fill min_duration.
        expected_ns, source = max(1000, int(fastest_ns * 0.5)), "warmup"
    else:
        expected_ns, source = None, "loadgen default"
    if expected_ns:
        settings.single_stream_expected_latency_ns = expected_ns
    record["single_stream_expected_latency_ns"] = expected_ns
    record["single_stream_expected_latency_source"] = source


def _multi_stream(settings, record, cfg, fastest_ns):
    spq = int(cfg["multi_stream_samples_per_query"])
    percentile = float(cfg["multi_stream_target_latency_percentile"])
    settings.multi_stream_samples_per_query = spq
    settings.multi_stream_target_latency_percentile = percentile / 100.0
    # As for SingleStream: half the fastest warmup inference x samples per query (an underestimate).
    expected_ns = max(1000, int(fastest_ns * 0.5 * spq)) if fastest_ns else None
    if expected_ns:
        settings.multi_stream_expected_latency_ns = expected_ns
    record["multi_stream_samples_per_query"] = spq
    record["multi_stream_target_latency_percentile"] = percentile
    record["multi_stream_expected_latency_ns"] = expected_ns


def _server(settings, record, cfg, fastest_ns):
    """One Server test at ``cfg["server_target_qps"]`` (the search sets it per probe)."""
    qps = float(cfg["server_target_qps"] or 1.0)
    bound_ms = float(cfg["server_target_latency_ms"] or protocol.LOADGEN_DEFAULTS["server_target_latency_ms"])
    percentile = float(cfg["server_target_latency_percentile"])
    settings.server_target_qps = qps
    settings.server_target_latency_ns = int(round(bound_ms * 1e6))
    settings.server_target_latency_percentile = percentile / 100.0
    record["server_target_qps"] = round(qps, 6)
    record["server_target_latency_ns"] = int(round(bound_ms * 1e6))
    record["server_target_latency_percentile"] = percentile


def _offline(settings, record, cfg, fastest_ns):
    if cfg["offline_expected_qps"] is not None:
        qps, source = float(cfg["offline_expected_qps"]), "config"
    else:
        # Overestimating is safe (the one query just runs longer than min_duration); underestimating makes
        # the run too short and INVALID. The fastest warmup inference is usually faster than the steady
        # state already; 1.5x covers a warmup slowed by noise.
        qps, source = 1.5e9 / max(1.0, fastest_ns or 1e6), "warmup"
    settings.offline_expected_qps = qps
    record["offline_expected_qps"] = round(qps, 3)
    record["offline_expected_qps_source"] = source


# --------------------------------------------------------------------------- a too-short test's pace


def _query_pace(values, fastest_ns, cfg, samples_per_query=1):
    """SingleStream and MultiStream expect 0.5 x fastest (x samples per query): the measured mean query
    latency per sample, so the rerun's expectation is at most half of it."""
    mean = values.get("result_mean_latency_ns")
    per_query = float(mean) if _number(mean) and mean > 0 else fastest_ns
    return per_query / samples_per_query


def _multi_stream_pace(values, fastest_ns, cfg):
    return _query_pace(values, fastest_ns, cfg, int(cfg["multi_stream_samples_per_query"]))


def _offline_pace(values, fastest_ns, cfg):
    """Offline asks for 1.5e9 / fastest samples/s: the measured time per sample, so that is >= 1.5x the
    measured rate."""
    rate = values.get("result_samples_per_second")
    return 1e9 / float(rate) if _number(rate) and rate > 0 else fastest_ns


# --------------------------------------------------------------------------- the table


def _latency_at(key):
    return lambda result, cfg: (result.get("latency_ms") or {}).get(key)


def _multi_stream_headline(result, cfg):
    key = "p%g" % float(cfg["multi_stream_target_latency_percentile"])
    return (result.get("latency_ms") or {}).get(key)


SCENARIOS = collections.OrderedDict(
    (s.name, s)
    for s in (
        Scenario(
            name="SingleStream",
            issue="issue_stream",
            queued=False,
            settings=_single_stream,
            pace_source="single_stream_expected_latency_source",
            measured_pace=_query_pace,
            search=False,
            throughput_key="result_qps_with_loadgen_overhead",
            samples_kind="per-query latency, SUT side: issue_queries entry -> just before QuerySamplesComplete",
            headline=_latency_at("p90"),
            headline_unit="ms",
        ),
        Scenario(
            name="MultiStream",
            issue="issue_stream",
            queued=False,
            settings=_multi_stream,
            pace_source=None,  # always from the warmup when there was one
            measured_pace=_multi_stream_pace,
            search=False,
            throughput_key=None,  # LoadGen reports none: completed samples / SUT-side window
            samples_kind="per-query latency, SUT side: issue_queries entry -> just before the query's completion",
            headline=_multi_stream_headline,
            headline_unit="ms",
        ),
        Scenario(
            name="Server",
            issue="issue_server",
            queued=True,
            settings=_server,
            pace_source=None,
            measured_pace=None,  # the search paces its probes itself
            search=True,
            throughput_key="result_completed_samples_per_sec",
            samples_kind="per-sample service time, SUT side: worker starts the inference -> just before its completion",
            headline=lambda result, cfg: (result.get("server_search") or {}).get("qps_max"),
            headline_unit="1/s",
        ),
        Scenario(
            name="Offline",
            issue="issue_offline",
            queued=False,
            settings=_offline,
            pace_source="offline_expected_qps_source",
            measured_pace=_offline_pace,
            search=False,
            throughput_key="result_samples_per_second",
            samples_kind="per-sample service time, SUT side: start of this batch's inference -> just before its completion",
            headline=lambda result, cfg: result.get("throughput_ips"),
            headline_unit="1/s",
        ),
    )
)
assert tuple(SCENARIOS) == protocol.SCENARIOS


def scenario(name):
    """The table's row for ``name``; :class:`InfraError` listing the supported ones for any other."""
    if name not in SCENARIOS:
        raise InfraError("unknown scenario %r; supported scenarios: %s" % (name, ", ".join(SCENARIOS)))
    return SCENARIOS[name]


def headline(name, result, cfg):
    """The scenario's headline figure, ``{"name", "value", "unit"}``; the name is the contract's
    (protocol.headline_metric: MultiStream's follows the configured percentile)."""
    row = SCENARIOS[name]
    metric = protocol.headline_metric(name, float(cfg["multi_stream_target_latency_percentile"]))
    return {"name": metric, "value": row.headline(result, cfg), "unit": row.headline_unit}


# --------------------------------------------------------------------------- settings


def build_settings(lg, name, loadgen_cfg, warmup_ns, sample_count):
    """LoadGen TestSettings plus a JSON-able record of what was requested. For Server,
    ``loadgen_cfg["server_target_qps"]`` is the QPS of this one test (the search sets it per probe)."""
    cfg = dict(protocol.LOADGEN_DEFAULTS)
    cfg.update(loadgen_cfg or {})
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, name)
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(cfg["min_duration_ms"])
    settings.min_query_count = int(cfg["min_query_count"])
    record = {
        "scenario": name,
        "mode": "PerformanceOnly",
        "min_duration_ms": int(cfg["min_duration_ms"]),
        "min_query_count": int(cfg["min_query_count"]),
        "max_query_count": int(cfg["max_query_count"] or 0),
        "performance_sample_count": int(sample_count),
    }
    if cfg["max_query_count"]:
        settings.max_query_count = int(cfg["max_query_count"])
    fastest_ns = float(min(warmup_ns)) if warmup_ns else None
    scenario(name).settings(settings, record, cfg, fastest_ns)
    return settings, record


def log_settings(lg, log_dir):
    """``(absolute log_dir, LogSettings)``: LoadGen's logs go to ``log_dir`` only (never to stdout)."""
    log_dir = os.path.abspath(log_dir)
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as exc:
        raise InfraError("cannot create log_dir %s: %s" % (log_dir, exc)) from exc
    settings = lg.LogSettings()
    settings.log_output.outdir = log_dir
    settings.log_output.copy_summary_to_stdout = False
    settings.log_output.copy_detail_to_stdout = False
    settings.enable_trace = False
    return log_dir, settings
