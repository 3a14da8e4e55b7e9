"""Run one MLPerf LoadGen performance test against a loaded backend and read LoadGen's own results.

One LoadGen *sample* is one batch of ``batch_size`` inputs, so inferences/s = LoadGen samples/s *
batch_size. Inputs are synthetic: ``sample_count`` deterministic random batches from
``numpy.random.default_rng(seed)``, generated before the test (they also feed the warmup).

SingleStream: LoadGen issues one query of one sample at a time; the SUT runs it synchronously inside
``issue_queries`` and completes it. Offline: LoadGen issues one query holding every sample; the SUT
runs them one batch at a time, in order, and completes each sample as soon as it is done, so LoadGen's
per-sample latencies are "query issue -> this sample done" (a ramp over the run, as LoadGen defines
Offline latency).

Latency figures come from LoadGen's detail log (``mlperf_log_detail.txt``, ``:::MLLOG`` JSON lines),
falling back to the summary text; only figures LoadGen did not report are computed from the SUT-side
samples, and ``latency_source`` says which is which.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import time

import numpy as np
import stats
from backends.base import InfraError, ModelError, resolve_shape

log = logging.getLogger("farm-agent")

SCENARIOS = ("SingleStream", "Offline")

#: Most raw SUT-side samples kept in the output.
SAMPLES_CAP = 10000

#: Most bytes of distinct synthetic input kept in memory; past this, batches are reused cyclically.
MAX_INPUT_BYTES = 256 * 1024 * 1024

LOADGEN_DEFAULTS = {
    "min_duration_ms": 2000,
    "min_query_count": 64,
    "max_query_count": 0,
    "target_latency_ms": None,
    "offline_expected_qps": None,
}

# Output latency key -> LoadGen detail-log key.
LATENCY_KEYS = (
    ("min", "result_min_latency_ns"),
    ("max", "result_max_latency_ns"),
    ("mean", "result_mean_latency_ns"),
    ("p50", "result_50.00_percentile_latency_ns"),
    ("p90", "result_90.00_percentile_latency_ns"),
    ("p95", "result_95.00_percentile_latency_ns"),
    ("p99", "result_99.00_percentile_latency_ns"),
    ("p99.9", "result_99.90_percentile_latency_ns"),
)

# LoadGen's per-scenario throughput key, in samples (batches) per second.
THROUGHPUT_KEYS = {
    "SingleStream": "result_qps_with_loadgen_overhead",
    "Offline": "result_samples_per_second",
}

SAMPLES_KIND = {
    "SingleStream": "per-query latency, SUT side: issue_queries entry -> just before QuerySamplesComplete",
    "Offline": "per-sample service time, SUT side: start of this batch's inference -> just before its completion",
}

# Summary-text labels (fallback when the detail log is missing or unreadable).
_SUMMARY_LABELS = {
    "min latency (ns)": "result_min_latency_ns",
    "max latency (ns)": "result_max_latency_ns",
    "mean latency (ns)": "result_mean_latency_ns",
    "result is": "result_validity",
    "samples per second": "result_samples_per_second",
    "qps w/ loadgen overhead": "result_qps_with_loadgen_overhead",
    "qps w/o loadgen overhead": "result_qps_without_loadgen_overhead",
}
_SUMMARY_PCT = re.compile(r"^(\d+(?:\.\d+)?)\s+percentile latency \(ns\)$")


def import_loadgen():
    try:
        import mlperf_loadgen
    except ImportError as exc:
        raise InfraError("mlperf_loadgen (pip: mlcommons-loadgen) is not installed: %s" % exc) from exc
    return mlperf_loadgen


# --------------------------------------------------------------------------- inputs


def make_batches(shape, dtype, count, seed=0, max_bytes=MAX_INPUT_BYTES):
    """``count`` deterministic random input batches of ``shape``/``dtype``.

    At most ``max_bytes`` of distinct data is generated; beyond that, index ``i`` reuses batch
    ``i % distinct`` (same data every run for a given seed).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    distinct = max(1, min(int(count), int(max_bytes // max(1, nbytes))))
    rng = np.random.default_rng(seed)
    unique = []
    for _ in range(distinct):
        if np.issubdtype(dtype, np.floating):
            arr = rng.standard_normal(size=shape, dtype=np.float32).astype(dtype, copy=False)
        elif dtype == np.bool_:
            arr = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            arr = rng.integers(0, 128, size=shape).astype(dtype)
        unique.append(np.ascontiguousarray(arr))
    return [unique[i % distinct] for i in range(int(count))]


# --------------------------------------------------------------------------- LoadGen logs


def _ns_to_ms(value):
    return round(float(value) / 1e6, 6)


def read_detail_log(path):
    """``{key: value}`` from LoadGen's ``:::MLLOG`` JSON lines (the last value of a key wins)."""
    values = {}
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            pos = line.find(":::MLLOG")
            if pos < 0:
                continue
            try:
                record = json.loads(line[pos + len(":::MLLOG") :])
            except ValueError:
                continue
            if isinstance(record, dict) and "key" in record:
                values[record["key"]] = record.get("value")
    return values


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text else value


def read_summary_log(path):
    """The result fields of ``mlperf_log_summary.txt``, under the detail log's key names."""
    values = {}
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            label, sep, value = line.partition(":")
            if not sep:
                continue
            label = " ".join(label.split()).lower()
            value = value.strip()
            match = _SUMMARY_PCT.match(label)
            if match:
                values["result_%.2f_percentile_latency_ns" % float(match.group(1))] = _number(value)
            elif label in _SUMMARY_LABELS and _SUMMARY_LABELS[label] not in values:
                values[_SUMMARY_LABELS[label]] = _number(value)
    return values


def read_results(log_dir):
    """LoadGen's results from ``log_dir``: the detail log's keys, gaps filled from the summary."""
    summary_path = os.path.join(log_dir, "mlperf_log_summary.txt")
    detail_path = os.path.join(log_dir, "mlperf_log_detail.txt")
    values = {}
    for path, reader in ((summary_path, read_summary_log), (detail_path, read_detail_log)):
        if os.path.isfile(path):
            try:
                values.update(reader(path))
            except (OSError, IOError) as exc:
                log.warning("cannot read %s: %s", path, exc)
    return values, summary_path, detail_path


# --------------------------------------------------------------------------- the SUT


class _Sut(object):
    """Holds the SUT callbacks and what they measured. Callbacks never raise into LoadGen (an exception
    crossing LoadGen's C++ frames crashes the process): the first error is kept, the remaining samples
    are completed at once, and :func:`run_test` raises it after the test."""

    def __init__(self, lg, backend, batches, scenario):
        self.lg = lg
        self.backend = backend
        self.batches = batches
        self.scenario = scenario
        self.latencies_ns = []
        self.errors = []
        self.queries = 0
        self.completed = 0
        self.first_issue_ns = None
        self.last_complete_ns = None
        self.loaded = 0

    def load_samples(self, indices):
        self.loaded += len(indices)

    def unload_samples(self, indices):
        self.loaded -= len(indices)

    def flush_queries(self):
        pass

    def issue_single_stream(self, query_samples):
        clock = time.perf_counter_ns
        t0 = clock()
        if self.first_issue_ns is None:
            self.first_issue_ns = t0
        if not self.errors:
            try:
                for qs in query_samples:
                    self.backend.predict(self.batches[qs.index])
            except BaseException as exc:
                self.errors.append(exc)
        t1 = clock()
        response = self.lg.QuerySampleResponse
        self.lg.QuerySamplesComplete([response(qs.id, 0, 0) for qs in query_samples])
        self.latencies_ns.append(t1 - t0)
        self.last_complete_ns = t1
        self.queries += 1
        self.completed += len(query_samples)

    def issue_offline(self, query_samples):
        clock = time.perf_counter_ns
        predict = self.backend.predict
        batches = self.batches
        complete = self.lg.QuerySamplesComplete
        response = self.lg.QuerySampleResponse
        latencies = self.latencies_ns
        errors = self.errors
        self.queries += 1
        if self.first_issue_ns is None:
            self.first_issue_ns = clock()
        t1 = None
        for qs in query_samples:
            t0 = clock()
            if not errors:
                try:
                    predict(batches[qs.index])
                except BaseException as exc:
                    errors.append(exc)
            t1 = clock()
            complete([response(qs.id, 0, 0)])
            latencies.append(t1 - t0)
        self.completed += len(query_samples)
        if t1 is not None:
            self.last_complete_ns = t1


# --------------------------------------------------------------------------- the test


def _warmup(backend, batches, count):
    """Untimed-by-LoadGen inferences before the test; at least one, so a model that cannot run fails here."""
    times = []
    for i in range(max(1, int(count))):
        t0 = time.perf_counter_ns()
        backend.predict(batches[i % len(batches)])
        times.append(time.perf_counter_ns() - t0)
    return times


def build_settings(lg, scenario, loadgen_cfg, warmup_ns, sample_count):
    """LoadGen TestSettings plus a JSON-able record of what was requested."""
    cfg = dict(LOADGEN_DEFAULTS)
    cfg.update(loadgen_cfg or {})
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(cfg["min_duration_ms"])
    settings.min_query_count = int(cfg["min_query_count"])
    record = {
        "scenario": scenario,
        "mode": "PerformanceOnly",
        "min_duration_ms": int(cfg["min_duration_ms"]),
        "min_query_count": int(cfg["min_query_count"]),
        "max_query_count": int(cfg["max_query_count"] or 0),
        "performance_sample_count": int(sample_count),
    }
    if cfg["max_query_count"]:
        settings.max_query_count = int(cfg["max_query_count"])
    fastest_ns = float(min(warmup_ns)) if warmup_ns else None
    if scenario == "SingleStream":
        if cfg["target_latency_ms"] is not None:
            expected_ns, source = int(float(cfg["target_latency_ms"]) * 1e6), "config"
        elif fastest_ns:
            # Underestimating is safe (LoadGen just pre-generates more queries); overestimating can
            # leave too few queries to fill min_duration.
            expected_ns, source = max(1000, int(fastest_ns * 0.5)), "warmup"
        else:
            expected_ns, source = None, "loadgen default"
        if expected_ns:
            settings.single_stream_expected_latency_ns = expected_ns
        record["single_stream_expected_latency_ns"] = expected_ns
        record["single_stream_expected_latency_source"] = source
    elif scenario == "Offline":
        if cfg["offline_expected_qps"] is not None:
            qps, source = float(cfg["offline_expected_qps"]), "config"
        else:
            # Overestimating is safe (the one query just runs longer than min_duration);
            # underestimating makes the run too short and INVALID. The fastest warmup inference is
            # usually faster than the steady state already; 1.5x covers a warmup slowed by noise.
            qps, source = 1.5e9 / max(1.0, fastest_ns or 1e6), "warmup"
        settings.offline_expected_qps = qps
        record["offline_expected_qps"] = round(qps, 3)
        record["offline_expected_qps_source"] = source
    return settings, record


def run_test(
    backend,
    scenario,
    batch_size=1,
    log_dir=None,
    loadgen_cfg=None,
    sample_count=64,
    seed=0,
    warmup_queries=10,
    monitor=None,
):
    """Run one LoadGen performance test on a loaded ``backend``; returns the result fields.

    ``monitor`` (optional, e.g. the sensor sampler) is started just before LoadGen's test and stopped
    right after it; ``window_ns`` in the result is LoadGen's measured window on the SUT side
    (``time.perf_counter_ns`` of the first issue and the last completion), for the monitor's figures.

    Raises :class:`ModelError` if the backend fails on the model, :class:`InfraError` for the rest.
    """
    if scenario not in SCENARIOS:
        raise InfraError("unknown scenario %r; supported scenarios: %s" % (scenario, ", ".join(SCENARIOS)))
    lg = import_loadgen()
    shape = resolve_shape(backend.input_shape, int(batch_size))
    batches = make_batches(shape, backend.input_dtype, sample_count, seed)
    prepare = getattr(backend, "prepare", None)
    if prepare is not None:
        prepare(batches)  # untimed: e.g. the emulated backend computes its outputs here
    warmup_ns = _warmup(backend, batches, warmup_queries)
    settings, settings_record = build_settings(lg, scenario, loadgen_cfg, warmup_ns, sample_count)

    if log_dir is None:
        log_dir = tempfile.mkdtemp(prefix="farm-agent-loadgen-")
    log_dir = os.path.abspath(log_dir)
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as exc:
        raise InfraError("cannot create log_dir %s: %s" % (log_dir, exc)) from exc
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = log_dir
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.log_output.copy_detail_to_stdout = False
    log_settings.enable_trace = False

    sut_state = _Sut(lg, backend, batches, scenario)
    issue = sut_state.issue_single_stream if scenario == "SingleStream" else sut_state.issue_offline
    sut = lg.ConstructSUT(issue, sut_state.flush_queries)
    qsl = lg.ConstructQSL(
        int(sample_count), int(sample_count), sut_state.load_samples, sut_state.unload_samples
    )
    log.info("LoadGen %s test: %s, logs in %s", scenario, settings_record, log_dir)
    if monitor is not None:
        monitor.start()
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    finally:
        if monitor is not None:
            monitor.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    if sut_state.errors:
        exc = sut_state.errors[0]
        if isinstance(exc, Exception) and not isinstance(exc, (ModelError, InfraError)):
            raise ModelError("inference failed during the test: %s: %s" % (type(exc).__name__, exc)) from exc
        raise exc

    values, summary_path, detail_path = read_results(log_dir)
    return _result(
        scenario, int(batch_size), values, sut_state, warmup_ns, settings_record, summary_path, detail_path
    )


def _result(scenario, batch_size, values, sut_state, warmup_ns, settings_record, summary_path, detail_path):
    if not any(key in values for _, key in LATENCY_KEYS):
        raise InfraError("LoadGen wrote no results (looked for %s and %s)" % (detail_path, summary_path))
    samples_ns = sut_state.latencies_ns
    sut_summary = stats.summarize(samples_ns) if samples_ns else None

    latency, source = {}, {}
    for out_key, lg_key in LATENCY_KEYS:
        value = values.get(lg_key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            latency[out_key], source[out_key] = _ns_to_ms(value), "loadgen"
        elif sut_summary is not None:
            latency[out_key], source[out_key] = _ns_to_ms(sut_summary[out_key]), "sut"
        else:
            latency[out_key], source[out_key] = None, None

    duration_s = None
    if sut_state.first_issue_ns is not None and sut_state.last_complete_ns is not None:
        duration_s = (sut_state.last_complete_ns - sut_state.first_issue_ns) / 1e9
    tp_key = THROUGHPUT_KEYS[scenario]
    samples_per_s = values.get(tp_key)
    if isinstance(samples_per_s, (int, float)) and not isinstance(samples_per_s, bool):
        throughput_source = "loadgen:%s" % tp_key
    elif duration_s:
        samples_per_s, throughput_source = sut_state.completed / duration_s, "sut"
    else:
        samples_per_s, throughput_source = None, None
    throughput = float(samples_per_s) * batch_size if samples_per_s is not None else None

    query_count = values.get("result_query_count")
    if not isinstance(query_count, int):
        query_count = sut_state.queries
    validity = values.get("result_validity")
    effective = dict((k[len("effective_") :], v) for k, v in values.items() if k.startswith("effective_"))
    return {
        "window_ns": [sut_state.first_issue_ns, sut_state.last_complete_ns],
        "latency_ms": latency,
        "latency_source": source,
        "throughput_ips": throughput,
        "throughput_source": throughput_source,
        "query_count": query_count,
        "sample_count": sut_state.completed,
        "duration_s": round(duration_s, 6) if duration_s is not None else None,
        "result_valid": validity == "VALID",
        "samples_ms": [_ns_to_ms(v) for v in stats.subsample(samples_ns, SAMPLES_CAP)],
        "samples_total": len(samples_ns),
        "samples_kind": SAMPLES_KIND[scenario],
        "sut_latency_ms": dict((k, _ns_to_ms(v)) for k, v in sut_summary.items()) if sut_summary else None,
        "warmup": {
            "queries": len(warmup_ns),
            "mean_ms": _ns_to_ms(sum(warmup_ns) / float(len(warmup_ns))) if warmup_ns else None,
            "min_ms": _ns_to_ms(min(warmup_ns)) if warmup_ns else None,
        },
        "loadgen": {
            "version": values.get("loadgen_version"),
            "settings": settings_record,
            "effective": effective,
            "validity": validity,
            "invalid_reason": values.get("result_invalid_reason"),
            "min_duration_met": values.get("result_min_duration_met"),
            "min_queries_met": values.get("result_min_queries_met"),
            "early_stopping_met": values.get("early_stopping_met"),
            "summary_path": summary_path,
            "detail_path": detail_path,
        },
    }


def finite_or_none(value):
    """JSON has no NaN/inf: map them to None (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return dict((k, finite_or_none(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value
