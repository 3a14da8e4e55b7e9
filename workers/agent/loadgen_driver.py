"""Run MLPerf LoadGen performance tests against a loaded backend: the inputs, the warmup, one test or the
Server search, the rerun of a test a slow warmup left too short, and the result.

One LoadGen *sample* is one batch of ``batch_size`` inputs, so inferences/s = LoadGen samples/s *
batch_size. Inputs are synthetic: ``sample_count`` deterministic random batches from
``numpy.random.default_rng(seed)``, generated before the test (they also feed the warmup).

What differs between the four scenarios (their settings, how the SUT serves them, what they report) is in
one table, :mod:`loadgen_scenarios`; the SUT is :mod:`loadgen_sut`, and LoadGen's logs are read by
:mod:`loadgen_logs` (docs/scenarios.md).

Latency figures come from LoadGen's detail log (``mlperf_log_detail.txt``, ``:::MLLOG`` JSON lines),
falling back to the summary text; only figures LoadGen did not report are computed from the SUT-side
samples, and ``latency_source`` says which is which. The text of both logs goes into the report
(``loadgen_logs``, capped) so the farm can keep them with the run.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time

import loadgen_logs
import loadgen_scenarios
import loadgen_sut
import protocol
import server_search
import stats
from backends.base import InfraError, ModelError, resolve_shape
from images import make_batches
from loadgen_logs import latency_at_ms, ns_to_ms
from loadgen_sut import window_s

log = logging.getLogger("farm-agent")

#: Most raw SUT-side samples kept in the output.
SAMPLES_CAP = 10000


def import_loadgen():
    try:
        import mlperf_loadgen
    except ImportError as exc:
        raise InfraError("mlperf_loadgen (pip: mlcommons-loadgen) is not installed: %s" % exc) from exc
    return mlperf_loadgen


# --------------------------------------------------------------------------- inputs


def _warmup(backend, batches, count):
    """Untimed-by-LoadGen inferences before the test; at least one, so a model that cannot run fails here."""
    times = []
    for i in range(max(1, int(count))):
        t0 = time.perf_counter_ns()
        backend.predict(batches[i % len(batches)])
        times.append(time.perf_counter_ns() - t0)
    return times


def _one_test(lg, backend, batches, scenario, settings, settings_record, sample_count, log_dir):
    """One LoadGen test; returns ``(sut_state, values, summary_path, detail_path)``. The SUT's errors are
    raised here, after the test (never into LoadGen)."""
    log_dir, log_settings = loadgen_scenarios.log_settings(lg, log_dir)
    sut_state = loadgen_sut.Sut(lg, backend, batches, scenario)
    sut = lg.ConstructSUT(sut_state.issue, sut_state.flush_queries)
    qsl = lg.ConstructQSL(
        int(sample_count), int(sample_count), sut_state.load_samples, sut_state.unload_samples
    )
    log.info("LoadGen %s test: %s, logs in %s", scenario, settings_record, log_dir)
    sut_state.start()
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    finally:
        sut_state.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    if sut_state.errors:
        exc = sut_state.errors[0]
        if isinstance(exc, Exception) and not isinstance(exc, (ModelError, InfraError)):
            raise ModelError("inference failed during the test: %s: %s" % (type(exc).__name__, exc)) from exc
        raise exc
    values, summary_path, detail_path = loadgen_logs.read_results(log_dir)
    return sut_state, values, summary_path, detail_path


def _server_search(lg, backend, batches, cfg, warmup_ns, sample_count, log_dir, scale=1.0):
    """The bounded Server search (:mod:`server_search`); each probe one LoadGen Server test in its own
    ``server-probe-N`` log folder. Returns the chosen test's outcome, its settings record and the search
    record: the highest passing probe, or the lowest-QPS probe when none passed.

    ``cfg`` is in wall time (the bound already x ``scale``); the probes' figures are in wall time too, as
    every figure of the report, and the record's ``latency_bound_ms`` and note in board time."""
    service_ns = sorted(warmup_ns)[len(warmup_ns) // 2] if warmup_ns else None
    first, first_source = server_search.start_qps(cfg.get("server_target_qps"), service_ns)
    bound_ms = float(cfg["server_target_latency_ms"])
    percentile = float(cfg["server_target_latency_percentile"])
    first, capped = server_search.capped_start(first, min(warmup_ns) if warmup_ns else None, bound_ms)
    if capped:
        first_source = "%s; %s" % (first_source, capped)
    tests = {}

    def probe(qps):
        step = len(tests) + 1
        settings, record = loadgen_scenarios.build_settings(
            lg, "Server", dict(cfg, server_target_qps=qps), warmup_ns, sample_count
        )
        probe_dir = os.path.join(log_dir, "server-probe-%d" % step)
        outcome = _one_test(lg, backend, batches, "Server", settings, record, sample_count, probe_dir)
        sut_state, values = outcome[0], outcome[1]
        tests[step] = (outcome, record)
        at_ms = latency_at_ms(values, percentile)
        met = values.get("result_perf_constraints_met")
        # LoadGen's own verdict on the latency constraint; our reading of its percentile if it gave none.
        passed = met if isinstance(met, bool) else (at_ms is not None and at_ms <= bound_ms)
        # And a queue that can be sustained: offered load = arrival rate x mean service time < 1. A short
        # probe above capacity may end before its backlog breaks the bound; it is refused here.
        scheduled = values.get("result_scheduled_samples_per_sec")
        scheduled = (
            float(scheduled)
            if isinstance(scheduled, (int, float)) and not isinstance(scheduled, bool)
            else qps
        )
        lat = sut_state.latencies_ns
        offered = scheduled * (sum(lat) / float(len(lat)) / 1e9) if lat else None
        if offered is not None and offered >= 1.0:
            passed = False
        window = window_s(sut_state)
        service_at_ms = ns_to_ms(stats.percentile(lat, percentile / 100.0)) if lat else None
        return {
            "passed": bool(passed),
            # The service time alone breaks the bound: no lower load can pass (server_search.py, step 5).
            "unreachable": bool(not passed and service_at_ms is not None and service_at_ms > bound_ms),
            "service_ms_at_percentile": service_at_ms,
            "service_ms_p50": ns_to_ms(stats.percentile(lat, 0.5)) if lat else None,
            "latency_ms_at_percentile": at_ms,
            "latency_ms_p50": latency_at_ms(values, 50),
            "latency_ms_p99": latency_at_ms(values, 99),
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
    unreachable = best is None and any(p["unreachable"] for p in probes)
    outcome, record = tests[chosen["step"]]
    search = {
        "latency_bound_ms": bound_ms / scale,
        "latency_bound_ms_wall": bound_ms,
        "time_scale": scale,
        "latency_percentile": percentile,
        "first_qps": round(first, 6),
        "first_qps_source": first_source,
        "service_ms_warmup_median": ns_to_ms(service_ns) if service_ns else None,
        "max_probes": int(cfg["server_search_probes"]),
        "probes": probes,
        "found": best is not None,
        "qps_max": best["qps"] if best is not None else None,
        "latency_ms_p99_at_max": best["latency_ms_p99"] if best is not None else None,
        "latency_ms_at_percentile_at_max": best["latency_ms_at_percentile"] if best is not None else None,
        "chosen_step": chosen["step"],
        "unreachable": unreachable,
        "note": _search_note(best, chosen, unreachable, percentile, bound_ms, scale),
    }
    return outcome, record, search


def _search_note(best, chosen, unreachable, percentile, bound_ms, scale=1.0):
    """Why the search found no QPS (None when it found one), in words for ``farm show``: in board time
    (the wall-time figures / ``scale``)."""
    if best is not None:
        return None
    bound_ms = bound_ms / scale
    chosen = dict(chosen)
    for key in ("service_ms_p50", "service_ms_at_percentile"):
        if chosen.get(key) is not None:
            chosen[key] = chosen[key] / scale
    chosen["qps"] = chosen["qps"] * scale
    if unreachable:
        return (
            "no load meets the %g ms bound: one query takes %.4g ms (p%g of the service time %.4g ms at "
            "%.4g/s, before any queueing); the run's figures are that probe's"
            % (
                bound_ms,
                chosen["service_ms_p50"],
                percentile,
                chosen["service_ms_at_percentile"],
                chosen["qps"],
            )
        )
    return "no probed QPS kept p%g under %g ms (lowest probed %.4g/s); the run's figures are that probe's" % (
        percentile,
        bound_ms,
        chosen["qps"],
    )


def _rerun_pace(row, record, values, warmup_ns, cfg):
    """The "fastest inference" (ns) to pace a second test with, or None when none is needed.

    LoadGen generates its queries up front from the expected pace. A pace guessed from the warmup that
    proved too slow (warmup inferences slowed by a noisy host) leaves too few queries, and the test ends
    before ``min_duration_ms``: INVALID. LoadGen's own advice is to raise the expected QPS and run again;
    this does that once, from what the first test measured, with margin. A pace the user configured is
    left alone (their INVALID result is theirs to see).
    """
    if row.measured_pace is None or values.get("result_min_duration_met") is not False or not warmup_ns:
        return None
    if row.pace_source is not None and record.get(row.pace_source) != "warmup":
        return None
    fastest = float(min(warmup_ns))
    return max(1.0, min(fastest / 2.0, row.measured_pace(values, fastest, cfg)))


def _first_test_record(values, sut_state):
    """What the too-short first test showed, for the run's settings record."""
    window = window_s(sut_state)
    return {
        "why": "the first test ended before min_duration_ms (a pace guessed from a slow warmup): "
        "ran once more, paced from what it measured",
        "first_duration_s": round(window, 6) if window is not None else None,
        "first_query_count": values.get("result_query_count", sut_state.queries),
        "first_invalid_reason": values.get("result_invalid_reason"),
    }


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
    time_scale=1.0,
):
    """Run one scenario's LoadGen measurement on a loaded ``backend``; returns the result fields. Server
    runs the bounded search (several LoadGen tests); the others one test.

    ``monitor`` (optional, e.g. the sensor sampler) is started just before LoadGen's first test and
    stopped right after its last; ``window_ns`` in the result is the measured window of the test the
    figures come from, on the SUT side (``time.perf_counter_ns`` of the first issue and the last
    completion), for the monitor's figures.

    ``time_scale`` (an emulated board's, < 1: faster than real time) turns the board-time settings into
    wall time for LoadGen (:func:`protocol.wall_time_loadgen`); every figure returned stays in wall time
    (the farm divides), except the Server search's bound and note, which say the board-time bound.

    Raises :class:`ModelError` if the backend fails on the model, :class:`InfraError` for the rest.
    """
    row = loadgen_scenarios.scenario(scenario)
    lg = import_loadgen()
    try:
        board_cfg = protocol.normalize_loadgen(dict(loadgen_cfg or {}), warn=log.warning)
    except protocol.ContractError as exc:
        raise InfraError(str(exc)) from exc
    scale = float(time_scale) if time_scale and 0 < time_scale <= 1 else 1.0
    cfg = protocol.wall_time_loadgen(board_cfg, scale)
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
        if row.search:
            outcome, settings_record, search = _server_search(
                lg, backend, batches, cfg, warmup_ns, sample_count, log_dir, scale
            )
        else:
            settings, settings_record = loadgen_scenarios.build_settings(
                lg, scenario, cfg, warmup_ns, sample_count
            )
            outcome = _one_test(
                lg, backend, batches, scenario, settings, settings_record, sample_count, log_dir
            )
            rerun_ns = _rerun_pace(row, settings_record, outcome[1], warmup_ns, cfg)
            if rerun_ns is not None:
                first = _first_test_record(outcome[1], outcome[0])
                settings, settings_record = loadgen_scenarios.build_settings(
                    lg, scenario, cfg, [rerun_ns], sample_count
                )
                outcome = _one_test(
                    lg, backend, batches, scenario, settings, settings_record, sample_count, log_dir
                )
                if row.pace_source is not None:
                    settings_record[row.pace_source] = "rerun"
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
    result["headline"] = loadgen_scenarios.headline(scenario, result, board_cfg)
    result["loadgen_logs"] = loadgen_logs.read_log_texts(summary_path, detail_path)
    return result


def _result(scenario, batch_size, values, sut_state, warmup_ns, settings_record, summary_path, detail_path):
    """The result fields from LoadGen's values (its figures first) and the SUT's own measurements."""
    if not any(key in values for _, key in loadgen_logs.LATENCY_KEYS):
        raise InfraError("LoadGen wrote no results (looked for %s and %s)" % (detail_path, summary_path))
    samples_ns = sut_state.latencies_ns
    sut_summary = stats.summarize(samples_ns) if samples_ns else None

    latency, source = {}, {}
    for out_key, lg_key in loadgen_logs.LATENCY_KEYS:
        value = values.get(lg_key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            latency[out_key], source[out_key] = ns_to_ms(value), "loadgen"
        elif sut_summary is not None:
            latency[out_key], source[out_key] = ns_to_ms(sut_summary[out_key]), "sut"
        else:
            latency[out_key], source[out_key] = None, None

    duration_s = window_s(sut_state)
    row = loadgen_scenarios.SCENARIOS[scenario]
    tp_key = row.throughput_key
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
        "samples_ms": [ns_to_ms(v) for v in stats.subsample(samples_ns, SAMPLES_CAP)],
        "samples_total": len(samples_ns),
        "samples_kind": row.samples_kind,
        "sut_latency_ms": dict((k, ns_to_ms(v)) for k, v in sut_summary.items()) if sut_summary else None,
        "warmup": {
            "queries": len(warmup_ns),
            "mean_ms": ns_to_ms(sum(warmup_ns) / float(len(warmup_ns))) if warmup_ns else None,
            "min_ms": ns_to_ms(min(warmup_ns)) if warmup_ns else None,
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
