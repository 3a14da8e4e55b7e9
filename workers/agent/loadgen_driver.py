"""Run MLPerf LoadGen performance tests against a loaded backend and read LoadGen's own results.

One LoadGen *sample* is one batch of ``batch_size`` inputs, so inferences/s = LoadGen samples/s *
batch_size. Inputs are synthetic: ``sample_count`` deterministic random batches from
``numpy.random.default_rng(seed)``, generated before the test (they also feed the warmup).

The four scenarios (docs/scenarios.md):

* SingleStream: LoadGen issues one query of one sample at a time; the SUT runs it synchronously inside
  ``issue_queries`` and completes it (LoadGen issues the next only then). Headline: p90 latency.
* MultiStream: one query of ``multi_stream_samples_per_query`` samples at a time; the SUT runs the
  samples back to back inside ``issue_queries`` and completes the query's samples together when the last
  is done (LoadGen's query latency is its last sample's). Headline: p99 per-query latency.
* Server: LoadGen issues single-sample queries at Poisson arrival times on its own issue thread. The SUT
  only puts them in a FIFO queue there; one worker thread runs them in arrival order and completes each
  when done, so LoadGen's latency is queueing + service, as on a single-queue device, and LoadGen's
  thread never waits on an inference (which would delay later arrivals and flatter the latency).
  Headline: the highest QPS whose p99 stays under the latency bound, found by :mod:`server_search`.
* Offline: LoadGen issues one query holding every sample; the SUT runs them one batch at a time, in
  order, and completes each sample as soon as it is done, so LoadGen's per-sample latencies are "query
  issue -> this sample done" (a ramp over the run, as LoadGen defines Offline latency). Headline:
  throughput.

Latency figures come from LoadGen's detail log (``mlperf_log_detail.txt``, ``:::MLLOG`` JSON lines),
falling back to the summary text; only figures LoadGen did not report are computed from the SUT-side
samples, and ``latency_source`` says which is which. The text of both logs goes into the report
(``loadgen_logs``, capped) so the farm can keep them with the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
import time

import images
import numpy as np
import server_search
import stats
from backends.base import InfraError, ModelError, resolve_shape

log = logging.getLogger("farm-agent")

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")

#: Seed stream of the pictures runs measure with (calibration uses the toolchain's seed, fidelity +1000).
RUN_SEED_OFFSET = 2000

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
    # MultiStream (LoadGen's names; percentiles in percent here, LoadGen takes a fraction)
    "multi_stream_samples_per_query": 8,
    "multi_stream_target_latency_percentile": 99.0,
    # Server: LoadGen's server_target_latency_ns in ms (LoadGen's own default is 100 ms), its percentile
    # in percent, server_target_qps = the search's first probe (None: from the warmup), probes at most.
    "server_target_qps": None,
    "server_target_latency_ms": 100.0,
    "server_target_latency_percentile": 99.0,
    "server_search_probes": 6,
}

#: The report carries LoadGen's logs up to these sizes (bytes of UTF-8); longer ones keep their head and
#: tail (the results are at the end) with a marker saying how much was cut.
LOG_CAPS = {"summary": 256 * 1024, "detail": 4 * 1024 * 1024}
LOG_TAIL_BYTES = 256 * 1024

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
    "MultiStream": None,  # LoadGen reports none: completed samples / SUT-side window
    "Server": "result_completed_samples_per_sec",
    "Offline": "result_samples_per_second",
}

SAMPLES_KIND = {
    "SingleStream": "per-query latency, SUT side: issue_queries entry -> just before QuerySamplesComplete",
    "MultiStream": "per-query latency, SUT side: issue_queries entry -> just before the query's completion",
    "Server": "per-sample service time, SUT side: worker starts the inference -> just before its completion",
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
    "completed samples per second": "result_completed_samples_per_sec",
    "scheduled samples per second": "result_scheduled_samples_per_sec",
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
    """``count`` deterministic input batches of ``shape``/``dtype``.

    Float image batches (N, C, H, W) are image-like pictures from :mod:`images` (the generator the INT8
    toolchains calibrate on), on their own seed stream (``RUN_SEED_OFFSET + seed``), so INT8 runs see the
    kind of input they were calibrated for but never the calibration pictures themselves. Other float
    inputs are standard normal, integer inputs uniform in [0, 128).

    At most ``max_bytes`` of distinct data is generated; beyond that, index ``i`` reuses batch
    ``i % distinct`` (same data every run for a given seed).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    distinct = max(1, min(int(count), int(max_bytes // max(1, nbytes))))
    rng = np.random.default_rng(seed)
    unique = []
    for index in range(distinct):
        if np.issubdtype(dtype, np.floating) and len(shape) == 4:
            batch = int(shape[0])
            arr = images.synthetic_inputs(shape[1:], batch, RUN_SEED_OFFSET + int(seed), start=index * batch)
            arr = arr.astype(dtype, copy=False)
        elif np.issubdtype(dtype, np.floating):
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


def _cap_text(text, cap, tail=LOG_TAIL_BYTES):
    """``(text, truncated, bytes)``: ``text`` whole when its UTF-8 fits ``cap``, else its head and its last
    ``tail`` bytes around a line saying how many bytes were cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return text, False, len(data)
    tail = min(tail, cap // 2)
    cut = len(data) - (cap - tail)
    marker = "\n[... farm-agent: %d bytes of this log cut here to keep it under %d bytes ...]\n" % (cut, cap)
    head = data[: cap - tail - len(marker)].decode("utf-8", "ignore")
    return head + marker + data[-tail:].decode("utf-8", "ignore"), True, len(data)


def read_log_texts(summary_path, detail_path, caps=None):
    """LoadGen's summary and detail logs as text for the report, each capped (:data:`LOG_CAPS`):
    ``{"summary": {"name", "text", "bytes", "truncated", "cap_bytes"}, "detail": {...}}``; a missing log
    is left out."""
    caps = dict(LOG_CAPS, **(caps or {}))
    out = {}
    for kind, path in (("summary", summary_path), ("detail", detail_path)):
        if not path or not os.path.isfile(path):
            continue
        try:
            with open(path, "r", errors="replace") as fh:
                raw = fh.read()
        except (OSError, IOError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        text, truncated, size = _cap_text(raw, caps[kind])
        out[kind] = {
            "name": os.path.basename(path),
            "text": text,
            "bytes": size,
            "truncated": truncated,
            "cap_bytes": caps[kind],
        }
    return out


# --------------------------------------------------------------------------- settings


def _num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_config(cfg):
    """The scenario settings LoadGen would reject, as an :class:`InfraError` naming the field (the farm
    refuses them at submit time already; this guards configs written by hand)."""
    spq = cfg.get("multi_stream_samples_per_query")
    if not isinstance(spq, int) or isinstance(spq, bool) or spq < 1:
        raise InfraError(
            "config loadgen.multi_stream_samples_per_query must be an integer >= 1, got %r" % (spq,)
        )
    probes = cfg.get("server_search_probes")
    if not isinstance(probes, int) or isinstance(probes, bool) or probes < 1:
        raise InfraError("config loadgen.server_search_probes must be an integer >= 1, got %r" % (probes,))
    for key in ("multi_stream_target_latency_percentile", "server_target_latency_percentile"):
        value = cfg.get(key)
        if not _num(value) or not 0 < value < 100:
            raise InfraError("config loadgen.%s must be a percentile in (0, 100), got %r" % (key, value))
    for key in ("server_target_latency_ms", "server_target_qps"):
        value = cfg.get(key)
        if value is not None and (not _num(value) or value <= 0):
            raise InfraError("config loadgen.%s must be a positive number or null, got %r" % (key, value))
    if cfg.get("server_target_latency_ms") is None:
        cfg["server_target_latency_ms"] = LOADGEN_DEFAULTS["server_target_latency_ms"]
    return cfg


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
        self._queue = None
        self._worker = None

    def load_samples(self, indices):
        self.loaded += len(indices)

    def unload_samples(self, indices):
        self.loaded -= len(indices)

    def flush_queries(self):
        pass

    @property
    def issue(self):
        return {
            "SingleStream": self.issue_stream,
            "MultiStream": self.issue_stream,
            "Server": self.issue_server,
            "Offline": self.issue_offline,
        }[self.scenario]

    def issue_stream(self, query_samples):
        """SingleStream and MultiStream: LoadGen has one query outstanding and issues the next only when
        this one completes, so the query runs here, its samples back to back, and completes as a whole."""
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

    issue_single_stream = issue_stream

    def issue_offline(self, query_samples):
        self.queries += 1
        if self.first_issue_ns is None:
            self.first_issue_ns = time.perf_counter_ns()
        self._run_samples(query_samples)

    def _run_samples(self, query_samples):
        """Offline and Server: each sample timed on its own and completed as soon as it is done."""
        clock = time.perf_counter_ns
        predict = self.backend.predict
        batches = self.batches
        complete = self.lg.QuerySamplesComplete
        response = self.lg.QuerySampleResponse
        latencies = self.latencies_ns
        errors = self.errors
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
            self.last_complete_ns = t1
            self.completed += 1

    # Server: LoadGen's issue thread only enqueues; one worker thread serves the FIFO queue.

    def start_server_worker(self):
        import queue

        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="farm-agent-server-sut")
        self._worker.daemon = True
        self._worker.start()

    def stop_server_worker(self):
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def issue_server(self, query_samples):
        if self.first_issue_ns is None:
            self.first_issue_ns = time.perf_counter_ns()
        self.queries += 1
        self._queue.put(list(query_samples))

    def _serve(self):
        get = self._queue.get
        while True:
            query_samples = get()
            if query_samples is None:
                return
            self._run_samples(query_samples)


def _window_s(sut_state):
    """Seconds from the SUT's first issue to its last completion (the SUT-side window), or None."""
    if sut_state.first_issue_ns is None or sut_state.last_complete_ns is None:
        return None
    return (sut_state.last_complete_ns - sut_state.first_issue_ns) / 1e9


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
    """LoadGen TestSettings plus a JSON-able record of what was requested. For Server,
    ``loadgen_cfg["server_target_qps"]`` is the QPS of this one test (the search sets it per probe)."""
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
    elif scenario == "MultiStream":
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
    elif scenario == "Server":
        qps = float(cfg["server_target_qps"] or 1.0)
        bound_ms = float(cfg["server_target_latency_ms"] or LOADGEN_DEFAULTS["server_target_latency_ms"])
        percentile = float(cfg["server_target_latency_percentile"])
        settings.server_target_qps = qps
        settings.server_target_latency_ns = int(round(bound_ms * 1e6))
        settings.server_target_latency_percentile = percentile / 100.0
        record["server_target_qps"] = round(qps, 6)
        record["server_target_latency_ns"] = int(round(bound_ms * 1e6))
        record["server_target_latency_percentile"] = percentile
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


def _log_settings(lg, log_dir):
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
    return log_dir, log_settings


def _one_test(lg, backend, batches, scenario, settings, settings_record, sample_count, log_dir):
    """One LoadGen test; returns ``(sut_state, values, summary_path, detail_path)``."""
    log_dir, log_settings = _log_settings(lg, log_dir)
    sut_state = _Sut(lg, backend, batches, scenario)
    sut = lg.ConstructSUT(sut_state.issue, sut_state.flush_queries)
    qsl = lg.ConstructQSL(
        int(sample_count), int(sample_count), sut_state.load_samples, sut_state.unload_samples
    )
    log.info("LoadGen %s test: %s, logs in %s", scenario, settings_record, log_dir)
    if scenario == "Server":
        sut_state.start_server_worker()
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    finally:
        sut_state.stop_server_worker()  # LoadGen returns once every query completed: the queue is empty
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    if sut_state.errors:
        exc = sut_state.errors[0]
        if isinstance(exc, Exception) and not isinstance(exc, (ModelError, InfraError)):
            raise ModelError("inference failed during the test: %s: %s" % (type(exc).__name__, exc)) from exc
        raise exc
    values, summary_path, detail_path = read_results(log_dir)
    return sut_state, values, summary_path, detail_path


def _latency_at_ms(values, percentile):
    """LoadGen's latency at ``percentile`` (percent) in ms, if it logged that percentile."""
    value = values.get("result_%.2f_percentile_latency_ns" % float(percentile))
    return _ns_to_ms(value) if _num(value) else None


def _server_search(lg, backend, batches, cfg, warmup_ns, sample_count, log_dir):
    """The bounded Server search (:mod:`server_search`); each probe one LoadGen Server test in its own
    ``server-probe-N`` log folder. Returns the chosen test's outcome, its settings record and the search
    record: the highest passing probe, or the lowest-QPS probe when none passed."""
    service_ns = sorted(warmup_ns)[len(warmup_ns) // 2] if warmup_ns else None
    first, first_source = server_search.start_qps(cfg.get("server_target_qps"), service_ns)
    bound_ms = float(cfg["server_target_latency_ms"])
    percentile = float(cfg["server_target_latency_percentile"])
    tests = {}

    def probe(qps):
        step = len(tests) + 1
        settings, record = build_settings(
            lg, "Server", dict(cfg, server_target_qps=qps), warmup_ns, sample_count
        )
        probe_dir = os.path.join(log_dir, "server-probe-%d" % step)
        outcome = _one_test(lg, backend, batches, "Server", settings, record, sample_count, probe_dir)
        sut_state, values = outcome[0], outcome[1]
        tests[step] = (outcome, record)
        at_ms = _latency_at_ms(values, percentile)
        met = values.get("result_perf_constraints_met")
        # LoadGen's own verdict on the latency constraint; our reading of its percentile if it gave none.
        passed = met if isinstance(met, bool) else (at_ms is not None and at_ms <= bound_ms)
        # And a queue that can be sustained: offered load = arrival rate x mean service time < 1. A short
        # probe above capacity may end before its backlog breaks the bound; it is refused here.
        scheduled = values.get("result_scheduled_samples_per_sec")
        scheduled = float(scheduled) if _num(scheduled) else qps
        lat = sut_state.latencies_ns
        offered = scheduled * (sum(lat) / float(len(lat)) / 1e9) if lat else None
        if offered is not None and offered >= 1.0:
            passed = False
        window = _window_s(sut_state)
        return {
            "passed": bool(passed),
            "latency_ms_at_percentile": at_ms,
            "latency_ms_p50": _latency_at_ms(values, 50),
            "latency_ms_p99": _latency_at_ms(values, 99),
            "scheduled_qps": values.get("result_scheduled_samples_per_sec"),
            "completed_qps": values.get("result_completed_samples_per_sec"),
            "queries": values.get("result_query_count", sut_state.queries),
            "overlatency_queries": values.get("result_overlatency_query_count"),
            "offered_load": round(offered, 4) if offered is not None else None,
            "latency_constraint_met": met if isinstance(met, bool) else None,
            "validity": values.get("result_validity"),
            "early_stopping_met": values.get("early_stopping_met"),
            "duration_s": round(window, 6) if window is not None else None,
        }

    best, probes = server_search.search(probe, first, int(cfg["server_search_probes"]))
    chosen = best if best is not None else min(probes, key=lambda p: p["qps"])
    outcome, record = tests[chosen["step"]]
    search = {
        "latency_bound_ms": bound_ms,
        "latency_percentile": percentile,
        "first_qps": round(first, 6),
        "first_qps_source": first_source,
        "service_ms_warmup_median": _ns_to_ms(service_ns) if service_ns else None,
        "max_probes": int(cfg["server_search_probes"]),
        "probes": probes,
        "found": best is not None,
        "qps_max": best["qps"] if best is not None else None,
        "latency_ms_p99_at_max": best["latency_ms_p99"] if best is not None else None,
        "latency_ms_at_percentile_at_max": best["latency_ms_at_percentile"] if best is not None else None,
        "chosen_step": chosen["step"],
        "note": None
        if best is not None
        else "no probed QPS kept p%g under %g ms (lowest probed %.4g/s); the run's figures are that probe's"
        % (percentile, bound_ms, chosen["qps"]),
    }
    return outcome, record, search


#: The settings record's key saying where a scenario's pace (expected latency or QPS) came from.
_PACE_SOURCE = {
    "SingleStream": "single_stream_expected_latency_source",
    "Offline": "offline_expected_qps_source",
    "MultiStream": None,  # always from the warmup when there was one
}


def _rerun_pace(scenario, record, values, warmup_ns, cfg):
    """The "fastest inference" (ns) to pace a second test with, or None when none is needed.

    LoadGen generates its queries up front from the expected pace. A pace guessed from the warmup that
    proved too slow (warmup inferences slowed by a noisy host) leaves too few queries, and the test ends
    before ``min_duration_ms``: INVALID. LoadGen's own advice is to raise the expected QPS and run again;
    this does that once, from what the first test measured, with margin. A pace the user configured is
    left alone (their INVALID result is theirs to see).
    """
    if scenario not in _PACE_SOURCE or values.get("result_min_duration_met") is not False or not warmup_ns:
        return None
    key = _PACE_SOURCE[scenario]
    if key is not None and record.get(key) != "warmup":
        return None
    fastest = float(min(warmup_ns))
    if scenario == "Offline":
        # build_settings asks for 1.5e9 / fastest samples/s: make that >= 1.5x the measured rate.
        rate = values.get("result_samples_per_second")
        measured = 1e9 / float(rate) if _num(rate) and rate > 0 else fastest
    else:
        # SingleStream and MultiStream expect 0.5 x fastest (x samples per query): make that <= half the
        # measured mean query latency.
        mean = values.get("result_mean_latency_ns")
        per_query = float(mean) if _num(mean) and mean > 0 else fastest
        spq = int(cfg["multi_stream_samples_per_query"]) if scenario == "MultiStream" else 1
        measured = per_query / spq
    return max(1.0, min(fastest / 2.0, measured))


def _first_test_record(values, sut_state):
    """What the too-short first test showed, for the run's settings record."""
    window = _window_s(sut_state)
    return {
        "why": "the first test ended before min_duration_ms (a pace guessed from a slow warmup): "
        "ran once more, paced from what it measured",
        "first_duration_s": round(window, 6) if window is not None else None,
        "first_query_count": values.get("result_query_count", sut_state.queries),
        "first_invalid_reason": values.get("result_invalid_reason"),
    }


def headline(scenario, result, cfg):
    """The scenario's headline figure: ``{"name", "value", "unit"}``."""
    latency = result.get("latency_ms") or {}
    if scenario == "SingleStream":
        return {"name": "latency_ms_p90", "value": latency.get("p90"), "unit": "ms"}
    if scenario == "MultiStream":
        pct = float(cfg["multi_stream_target_latency_percentile"])
        key = "p%g" % pct
        return {"name": "latency_ms_%s" % key.replace(".", "_"), "value": latency.get(key), "unit": "ms"}
    if scenario == "Server":
        return {
            "name": "server_qps_max",
            "value": (result.get("server_search") or {}).get("qps_max"),
            "unit": "1/s",
        }
    return {"name": "throughput_ips", "value": result.get("throughput_ips"), "unit": "1/s"}


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
    """Run one scenario's LoadGen measurement on a loaded ``backend``; returns the result fields. Server
    runs the bounded search (several LoadGen tests); the others one test.

    ``monitor`` (optional, e.g. the sensor sampler) is started just before LoadGen's first test and
    stopped right after its last; ``window_ns`` in the result is the measured window of the test the
    figures come from, on the SUT side (``time.perf_counter_ns`` of the first issue and the last
    completion), for the monitor's figures.

    Raises :class:`ModelError` if the backend fails on the model, :class:`InfraError` for the rest.
    """
    if scenario not in SCENARIOS:
        raise InfraError("unknown scenario %r; supported scenarios: %s" % (scenario, ", ".join(SCENARIOS)))
    lg = import_loadgen()
    cfg = dict(LOADGEN_DEFAULTS)
    cfg.update(loadgen_cfg or {})
    check_config(cfg)
    shape = resolve_shape(backend.input_shape, int(batch_size))
    batches = make_batches(shape, backend.input_dtype, sample_count, seed)
    prepare = getattr(backend, "prepare", None)
    if prepare is not None:
        prepare(batches)  # untimed: e.g. the emulated backend computes its outputs here
    warmup_ns = _warmup(backend, batches, warmup_queries)

    if log_dir is None:
        log_dir = tempfile.mkdtemp(prefix="farm-agent-loadgen-")
    log_dir = os.path.abspath(log_dir)
    search = None
    if monitor is not None:
        monitor.start()
    try:
        if scenario == "Server":
            outcome, settings_record, search = _server_search(
                lg, backend, batches, cfg, warmup_ns, sample_count, log_dir
            )
        else:
            settings, settings_record = build_settings(lg, scenario, cfg, warmup_ns, sample_count)
            outcome = _one_test(
                lg, backend, batches, scenario, settings, settings_record, sample_count, log_dir
            )
            rerun_ns = _rerun_pace(scenario, settings_record, outcome[1], warmup_ns, cfg)
            if rerun_ns is not None:
                first = _first_test_record(outcome[1], outcome[0])
                settings, settings_record = build_settings(lg, scenario, cfg, [rerun_ns], sample_count)
                outcome = _one_test(
                    lg, backend, batches, scenario, settings, settings_record, sample_count, log_dir
                )
                if _PACE_SOURCE[scenario] is not None:
                    settings_record[_PACE_SOURCE[scenario]] = "rerun"
                settings_record["rerun"] = first
    finally:
        if monitor is not None:
            monitor.stop()
    sut_state, values, summary_path, detail_path = outcome
    result = _result(
        scenario, int(batch_size), values, sut_state, warmup_ns, settings_record, summary_path, detail_path
    )
    if search is not None:
        result["server_search"] = search
    result["headline"] = headline(scenario, result, cfg)
    result["loadgen_logs"] = read_log_texts(summary_path, detail_path)
    return result


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

    duration_s = _window_s(sut_state)
    tp_key = THROUGHPUT_KEYS[scenario]
    samples_per_s = values.get(tp_key) if tp_key else None
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
