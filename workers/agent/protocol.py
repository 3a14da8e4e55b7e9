"""The farm-agent contract: what the farm sends a board agent and what the agent reports back.

Both ends import this one file: the agent by bare name (``import protocol``, Python 3.8, standard library
only), the farm as ``farm.workers.agent.protocol`` (the only module of ``workers/`` that ``farm/`` imports).
A change here is a change of the contract: bump :data:`VERSION`.

Declared here, each once: the agent config (every key, its default, what it may hold: :data:`CONFIG`,
:data:`LOADGEN`, :data:`EMULATION`, :data:`PACK`, :data:`SENSOR`), the report (every key the farm reads:
:data:`REPORT`), the scenarios and their headline metric, and the emulation profile an emulated artifact
carries (:data:`PROFILE_KEYS`). Both ends validate what they receive the same way: every bad field is
collected and named (:class:`ContractError`), never a first-problem-only message or a KeyError.

How a declaration is checked (:class:`ContractError`, the field checks, the walk over a declared tree) is
protocol_checks.py, beside this file and shipped with it. This file imports it as a sibling both ways: as
part of the package on the farm, by bare name on the board.
"""

import collections
import os
import posixpath
import re

if __package__:  # the farm: farm.workers.agent.protocol
    from . import protocol_checks as checks
else:  # the board: by bare name, the agent's folder first on sys.path (farm_agent.py)
    import protocol_checks as checks

ContractError = checks.ContractError
Field = checks.Field
REQUIRED = checks.REQUIRED

# The checks the declarations below are written with, under short names so each declaration stays one line.
_table, _integer, _positive, _percentile, _string, _one_of = (
    checks.fields_table, checks.integer, checks.positive, checks.percentile, checks.string, checks.one_of,
)  # fmt: skip
_ABSOLUTE_PATH, _TIME_SCALE, _NON_EMPTY = checks.ABSOLUTE_PATH, checks.TIME_SCALE, checks.NON_EMPTY
_OBJECT, _SECONDS, _INTERVAL = checks.OBJECT, checks.SECONDS, checks.INTERVAL


#: The contract's version; a report names the version it was written under.
VERSION = 1

#: The agent's directory: what the farm ships to a board (it lives beside this file).
AGENT_DIR = os.path.dirname(os.path.abspath(__file__))

#: The script the farm runs on a board.
AGENT_SCRIPT = os.path.join(AGENT_DIR, "farm_agent.py")

#: LoadGen's scenarios, in the order the farm lists them.
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")

#: MultiStream's headline percentile when the sweep does not set one (LoadGen's own default).
DEFAULT_MULTISTREAM_PERCENTILE = 99.0

#: The latency figures a report carries under ``latency_ms`` (ms), in order.
LATENCY_KEYS = ("min", "max", "mean", "p50", "p90", "p95", "p99", "p99.9")


def percentile_key(percentile):
    """``99.0`` -> ``"p99"``, ``99.9`` -> ``"p99_9"``: the suffix of a stored latency metric."""
    return ("p%g" % float(percentile)).replace(".", "_")


def headline_metric(scenario, multistream_percentile=DEFAULT_MULTISTREAM_PERCENTILE):
    """The one headline metric of a scenario (its stored name): SingleStream's p90 latency, MultiStream's
    latency at the configured percentile (MLPerf's rule), Server's QPS at the bound, Offline's throughput."""
    if scenario == "SingleStream":
        return "latency_ms_p90"
    if scenario == "MultiStream":
        return "latency_ms_" + percentile_key(multistream_percentile)
    if scenario == "Server":
        return "server_qps_max"
    if scenario == "Offline":
        return "throughput_ips"
    raise ValueError("unknown scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))


# --------------------------------------------------------------------------- the agent config

#: ``config.loadgen``: MLPerf LoadGen's settings under its TestSettings names (percentiles in percent, LoadGen
#: takes a fraction; latencies in ms, LoadGen's ``*_ns`` / 1e6). Null means the default where said.
LOADGEN = _table(
    Field("min_duration_ms", 2000, _integer(0), "each LoadGen test runs at least this long", True),
    Field("min_query_count", 64, _integer(1), "and issues at least this many queries", True),
    Field("max_query_count", 0, _integer(0), "most queries per test; 0: no cap", True),
    Field("target_latency_ms", None, _positive(), "SingleStream's expected latency; null: from the warmup"),
    Field("offline_expected_qps", None, _positive(), "Offline's expected QPS; null: from the warmup"),
    Field("multi_stream_samples_per_query", 8, _integer(1), "MultiStream's samples per query"),
    Field("multi_stream_target_latency_percentile", 99.0, _percentile(), "MultiStream's headline percentile"),
    Field("server_target_qps", None, _positive(), "the Server search's first probe; null: from the warmup"),
    Field("server_target_latency_ms", 100.0, _positive(), "Server's latency bound (LoadGen's default)", True),
    Field("server_target_latency_percentile", 99.0, _percentile(), "the percentile the bound applies to"),
    Field("server_search_probes", 6, _integer(1), "most probes (LoadGen tests) of the Server search"),
)

#: ``config.emulation`` on an emulated board: its root (sensor files, emu/clock_mhz, emu/load,
#: emu/board.json, and emu/clock_set_mhz / emu/ambient_c when `farm lab set` changed them) and its time
#: scale (< 1: faster than real time, for tests).
EMULATION = _table(
    Field("root", REQUIRED, _ABSOLUTE_PATH, "where the board simulator keeps the board's files"),
    Field("time_scale", 1.0, _TIME_SCALE, "wall seconds per emulated second", True),
)

#: ``config.reference`` / ``config.dataset``: a file the farm shipped (docs/accuracy.md).
PACK = _table(
    Field("path", REQUIRED, _NON_EMPTY, "the pack's path on the board"),
    Field("sha256", None, _string(True, "a hex string"), "checked before the pack is read"),
)

#: Every sensor reader, one line each: its config ``kind``, the reader ("module:Class" in
#: workers/agent/sensors/), what it measures (known without importing the reader, so a board without, say,
#: pynvml can still say what it lacks), and how a catalog spec (inventory/board-types.yaml ``sensors:``)
#: becomes its config entry. ``spec`` is a regular expression over the whole catalog spec; its named
#: groups become entry keys (``ints`` converts them, with a default when the group is absent); ``root``
#: adds the board's root (``/`` on a real board, the emulation root in the virtual lab); ``path`` adds a
#: fixed file under that root. ``syntax`` is how the spec reads in messages. A reader with no ``spec``
#: is not a catalog sensor (the virtual lab adds it itself).
#: Adding a sensor: its reader module, one line here, and its spec in the catalog.
SensorKind = collections.namedtuple("SensorKind", "kind reader provides spec syntax root path ints")
SENSOR_KINDS = (
    SensorKind("hwmon_ina2xx", "hwmon_ina2xx:HwmonIna2xx", ("power",),
               r"hwmon:(?P<chip>ina219|ina226|ina260)", "hwmon:ina219|ina226|ina260", True, None, {}),
    SensorKind("hwmon_ina3221", "hwmon_ina3221:HwmonIna3221", ("power",),
               r"hwmon:(?P<chip>ina3221)", "hwmon:ina3221", True, None, {}),
    SensorKind("hwmon_temp", "hwmon_temp:HwmonTemp", ("thermal",),
               r"hwmon-temp:(?P<chip>[a-z0-9_]{1,32})", "hwmon-temp:<chip>", True, None, {}),
    SensorKind("thermal_zone", "thermal_zone:ThermalZone", ("thermal",),
               r"thermal_zone(?::(?P<zone>[0-9]{1,4}))?", "thermal_zone[:N]", True, None, {"zone": 0}),
    SensorKind("xbutil", "xbutil:Xbutil", ("power", "thermal"),
               r"xbutil(?::(?P<device>[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]))?", "xbutil[:BDF]",
               False, "/opt/xilinx/xrt/bin/xbutil", {}),
    SensorKind("nvml", "nvml:Nvml", ("power", "thermal", "clock"),
               r"nvml(?::(?P<index>[0-9]{1,3}))?", "nvml[:index]", False, None, {"index": 0}),
    SensorKind("rapl", "rapl:Rapl", ("power",), r"rapl", "rapl", True, None, {}),
    SensorKind("power_meter", "power_meter:PowerMeter", ("power",), r"meter", "meter", False,
               "/var/lib/farm/power_meter_w", {}),
    SensorKind("emu_clock", "emu_clock:EmuClock", ("clock",), None, None, True, None, {}),
)  # fmt: skip


#: The fewest samples a sensor figure needs inside LoadGen's measured window; with fewer the figure is
#: left out with a note (sensors/sampler.py). The farm warns at submit about runs too short for it.
SENSOR_MIN_SAMPLES = 5
#: A reader's sampling interval (s) when its config entry gives no ``interval_ms``: 20 ms, except where
#: one read is slow (xbutil asks XRT, which talks to the card's management controller: 4 Hz).
SENSOR_DEFAULT_INTERVAL_S = 0.02
SENSOR_INTERVAL_S = {"xbutil": 0.25}

#: An NVIDIA GPU's clock event reasons ("throttle reasons"): the bits of NVML's
#: ``nvmlDeviceGetCurrentClocksEventReasons`` (``...ThrottleReasons`` before driver 535), as
#: ``(bit, name, throttling)``. The NVML reader reports the names set in any sample of the measured window
#: (``clock.throttle_reasons``, with ``clock.throttle_samples``: how many samples had each); the farm flags
#: a run ``throttled: gpu ...`` for the throttling ones. Idle, application clocks, sync boost (the clock of
#: a sync-boost group of GPUs) and the display clock are not power or thermal throttling; board limit and
#: reliability (newer drivers) are recorded, not flagged.
GPU_CLOCK_EVENT_REASONS = (
    (0x1, "gpu_idle", False),
    (0x2, "applications_clocks_setting", False),
    (0x4, "sw_power_cap", True),
    (0x8, "hw_slowdown", True),
    (0x10, "sync_boost", False),
    (0x20, "sw_thermal_slowdown", True),
    (0x40, "hw_thermal_slowdown", True),
    (0x80, "hw_power_brake_slowdown", True),
    (0x100, "display_clock_setting", False),
    (0x200, "board_limit", False),
    (0x400, "reliability", False),
)
GPU_THROTTLING = tuple(name for _, name, throttling in GPU_CLOCK_EVENT_REASONS if throttling)


def sensor_kind(spec):
    """The :data:`SENSOR_KINDS` line whose ``spec`` matches catalog spec ``spec``, or None."""
    for sensor in SENSOR_KINDS:
        if sensor.spec and re.fullmatch(sensor.spec, spec):
            return sensor
    return None


def sensor_min_window_s(kind, interval_ms=None):
    """The shortest measured window (s) in which reader ``kind`` takes :data:`SENSOR_MIN_SAMPLES` samples
    at its interval (``interval_ms`` when configured, else its default)."""
    interval_s = (
        float(interval_ms) / 1000.0 if interval_ms else SENSOR_INTERVAL_S.get(kind, SENSOR_DEFAULT_INTERVAL_S)
    )
    return SENSOR_MIN_SAMPLES * interval_s


def sensor_entry(spec, root="/"):
    """The agent config entry for catalog sensor ``spec`` on a board whose files live under ``root``;
    ValueError (naming the known specs) for a spec no reader understands."""
    for sensor in SENSOR_KINDS:
        match = re.fullmatch(sensor.spec, spec) if sensor.spec else None
        if match is None:
            continue
        entry = {"kind": sensor.kind}
        if sensor.root:
            entry["root"] = root
        if sensor.path:
            entry["path"] = posixpath.join(root, sensor.path.lstrip("/"))
        for key, value in match.groupdict().items():
            if key in sensor.ints:
                value = sensor.ints[key] if value is None else int(value)
            entry[key] = value
        return entry
    known = ", ".join(s.syntax for s in SENSOR_KINDS if s.syntax)
    raise ValueError("unknown sensor spec %r; known: %s" % (spec, known))


#: One entry of ``config.sensors``: ``kind`` (a string) names the reader (:data:`SENSOR_KINDS`),
#: ``interval_ms`` (a positive number or null) its sampling period; the other keys are the reader's own,
#: as :func:`sensor_entry` builds them.
SENSOR_KEYS = ("kind", "interval_ms", "root", "chip", "zone", "path", "device", "index")


def _sensors(value, name, problems, warn):
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append((name, "%s must be a list, got %r" % (name, value)))
        return value
    for i, entry in enumerate(value):
        where = "%s[%d]" % (name, i)
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            problems.append((where, "%s must be an object with a string kind, got %r" % (where, entry)))
        else:
            _INTERVAL(entry.get("interval_ms"), where + ".interval_ms", problems, warn)
    return value


def _pack(name):
    return checks.nullable_section_check(PACK, name + ".", "an object {path, sha256}")


def _loadgen(value, name, problems, warn):
    """Null or an empty value: every LoadGen default."""
    return checks.section_check(LOADGEN, name + ".", "an object")(value or {}, name, problems, warn)


#: The agent config, top level. ``backend`` is checked against the agent's backend registry at the agent.
CONFIG = _table(
    Field("artifact", REQUIRED, _string(), "the artifact's path on the board"),
    Field("backend", REQUIRED, _one_of(None, "available backends"), "the runtime (workers/agent/backends)"),
    Field("scenario", REQUIRED, _one_of(SCENARIOS, "supported scenarios"), "the LoadGen scenario"),
    Field("artifact_sha256", None, _string(True, "a hex string"), "checked before the artifact loads"),
    Field("batch_size", 1, _integer(1), "inputs per LoadGen sample"),
    Field("loadgen", {}, _loadgen, "LoadGen's settings (LOADGEN)"),
    Field("threads", None, _integer(1, nullable=True), "the runtime's intra-op threads; null: its default"),
    Field("warmup_queries", 10, _integer(0), "untimed inferences before the test"),
    Field("sample_count", 64, _integer(1), "distinct input batches (LoadGen's sample count)"),
    Field("seed", 0, _integer(0), "seed of the synthetic inputs"),
    Field("log_dir", None, _string(True), "where LoadGen writes its logs; null: a temporary folder"),
    Field("sensors", [], _sensors, "sensor readers sampled during the test (SENSOR)", True),
    Field(
        "emulation",
        None,
        checks.nullable_section_check(EMULATION, "emulation.", "an object {root, time_scale}"),
        "EMULATION",
    ),
    Field(
        "gpu",
        None,
        _OBJECT,
        "GPU backends' options: onnxruntime_gpu {providers, fp16, device_id}; torch_cuda {device, device_id, dtype, cudnn_benchmark, tf32, warmup}",
    ),
    Field("noise_check", None, _SECONDS, "seconds of pre-run host noise check (noise.py); null or 0: none"),
    Field("ambient_path", None, _string(True), "a file holding the ambient temperature (C, or millidegrees)"),
    Field("reference", None, _pack("reference"), "FP32 reference outputs for INT8 agreement (PACK)"),
    Field("dataset", None, _pack("dataset"), "a labelled dataset pack for top-1/top-5 (PACK)"),
)

#: The LoadGen settings' defaults (what an empty ``loadgen`` object means).
LOADGEN_DEFAULTS = dict((f.name, f.default) for f in LOADGEN.values())


def normalize_config(raw, backends=None, warn=None):
    """The agent config with every default filled in and every field checked; :class:`ContractError`
    naming every bad field. ``backends``: the backend names the agent has (None: not checked, as on the
    farm, which does not know the board's registry). ``warn(message)`` hears about ignored unknown keys."""
    if not isinstance(raw, dict):
        raise ContractError("config", [("config", "must be a JSON object, got %s" % type(raw).__name__)])
    problems = []
    table = CONFIG
    if backends is not None:
        table = dict(
            CONFIG, backend=CONFIG["backend"]._replace(check=_one_of(sorted(backends), "available backends"))
        )
    config = checks.normalize(table, raw, "", problems, warn)
    if problems:
        raise ContractError("config", problems)
    return config


def normalize_loadgen(raw, warn=None):
    """``config.loadgen`` alone, filled in and checked (:class:`ContractError` naming every bad field)."""
    problems = []
    config = _loadgen(raw, "loadgen", problems, warn)
    if problems:
        raise ContractError("config", problems)
    return config


#: The loadgen settings given in board time (ms, or per second) that the agent of an emulated board at
#: ``time_scale`` < 1 gives LoadGen in wall time: latencies x scale, rates / scale. Durations
#: (min_duration_ms) stay in wall time: a scaled lab is for speed.
BOARD_TIME_LATENCIES = ("target_latency_ms", "server_target_latency_ms")
BOARD_TIME_RATES = ("offline_expected_qps", "server_target_qps")


def wall_time_loadgen(config, scale):
    """A normalised ``loadgen`` config with its board-time settings in wall time at ``scale`` (so a Server
    bound of 10 ms on a board at time scale 0.1 is 1 ms of wall time, and the board-time p99 the farm
    stores, wall / scale, is under 10 ms whenever LoadGen's is under 1 ms)."""
    out = dict(config)
    if not scale or scale == 1.0:
        return out
    for key in BOARD_TIME_LATENCIES:
        if out.get(key) is not None:
            out[key] = float(out[key]) * scale
    for key in BOARD_TIME_RATES:
        if out.get(key) is not None:
            out[key] = float(out[key]) / scale
    return out


def make_config(**fields):
    """A config as the farm builds it, from declared keys only (an undeclared one, at the top level or in
    ``loadgen`` / ``emulation``, is a programming error: ValueError). Not filled in: the agent does that."""
    wrong = sorted(set(fields) - set(CONFIG))
    for name, table in (("loadgen", LOADGEN), ("emulation", EMULATION)):
        if isinstance(fields.get(name), dict):
            wrong += ["%s.%s" % (name, key) for key in sorted(set(fields[name]) - set(table))]
    if wrong:
        raise ValueError("not in the agent config contract (protocol.CONFIG): %s" % ", ".join(wrong))
    return dict(fields)


# --------------------------------------------------------------------------- the emulation profile

#: The ONNX metadata key an emulated artifact keeps its timing profile under.
PROFILE_KEY = "farm.emulation"

#: The profile's keys, as an emulation toolchain writes them (workers/toolchains/emulation.py); the
#: emulated backend paces to ``latency_ms`` / ``fps_mt`` and ``clock_scaled_ms`` over ``clock_mhz``.
PROFILE_KEYS = (
    "model_version", "kind", "device", "cores", "clock_mhz", "batch_size", "latency_ms", "clock_scaled_ms",
    "fps_mt", "utilisation_st", "utilisation_mt", "subgraphs", "cpu_ops", "warnings",
)  # fmt: skip

#: The profile's numbers the emulated backend cannot run without (each >= 0; all but clock_scaled_ms > 0).
PROFILE_NUMBERS = ("latency_ms", "clock_scaled_ms", "fps_mt", "clock_mhz", "batch_size")

#: The profile's accelerator utilisations (0..1) the board's power model reads: single- and multi-thread.
PROFILE_UTILISATION = ("utilisation_st", "utilisation_mt")

#: What the report's ``emulation.profile`` echoes of the profile.
PROFILE_REPORTED = (
    "cores", "batch_size", "latency_ms", "clock_scaled_ms", "fps_mt", "utilisation_st", "utilisation_mt",
    "subgraphs", "cpu_ops", "warnings",
)  # fmt: skip


# --------------------------------------------------------------------------- the report

#: The report's top-level keys, in the order the agent writes them. The farm reads the ones :data:`REPORT`
#: declares; the rest are provenance and diagnostics it stores whole.
REPORT_KEYS = (
    "agent_version", "status", "error", "scenario", "backend", "batch_size", "latency_ms", "latency_source",
    "throughput_ips", "throughput_source", "query_count", "sample_count", "duration_s", "result_valid",
    "headline", "server_search", "samples_ms", "samples_total", "samples_kind", "sut_latency_ms", "warmup",
    "loadgen", "loadgen_logs", "power", "thermal", "clock", "emulation", "accuracy", "noise", "environment",
    "config", "started_at", "finished_at",
)  # fmt: skip

_SENSOR_OBJECT = {"sensor": "str", "unit": "str", "rate_hz": "number", "resolution": "number", "note": "str"}
_SENSOR_OBJECT.update(samples="int", window_s="number", trace={"t_s": "numbers", "values": "list"})
_ENVIRONMENT = dict.fromkeys(
    ("runtime", "runtime_version", "loadgen_version", "hostname", "kernel", "cpu_model", "board_serial"),
    "str",
)
_ENVIRONMENT.update(cpu_isa="list", dpu_fingerprint="str", accelerator_clock_mhz="number", ambient_c="number")
_LOG = {"name": "str", "text": "str"}


#: Every report field the farm reads: path (a tuple of keys) -> its kind. Every field may be absent or null
#: (the agent fills what it measured) except those in :data:`REPORT_REQUIRED`; a tuple kind lists the
#: allowed values. Kinds: str, number, int, bool, object, list, numbers (a list of numbers). Objects the
#: farm stores whole (``loadgen``, ``noise``, ``headline``, ...) are declared as objects only.
REPORT = checks.declare(
    {
        "status": ("ok", "error"),
        "error": {"kind": ("model", "infra"), "message": "str"},
        "scenario": "str",
        "latency_ms": dict.fromkeys(LATENCY_KEYS, "number"),
        "latency_source": {},
        "throughput_ips": "number",
        "sample_count": "int",
        "duration_s": "number",
        "result_valid": "bool",
        "headline": {},
        "server_search": {"qps_max": "number", "latency_ms_p99_at_max": "number"},
        "samples_ms": "numbers",
        "loadgen": {},
        "loadgen_logs": {"summary": _LOG, "detail": _LOG},
        "power": dict(
            _SENSOR_OBJECT,
            avg_w="number",
            peak_w="number",
            energy_j="number",
            energy_source="str",
            inferences="int",
        ),
        "thermal": dict(_SENSOR_OBJECT, max_c="number", mean_c="number"),
        "clock": dict(
            _SENSOR_OBJECT, min_mhz="number", max_mhz="number", throttle_reasons="list", throttle_samples={}
        ),
        "emulation": {"time_scale": "number", "model_version": "str"},
        "accuracy": {
            "int8_fp32": {"top1_agreement": "number", "samples": "int", "sqnr_db": "number"},
            "dataset": {
                "top1": "number",
                "top5": "number",
                "samples": "int",
                "int8_fp32_top1_agreement": "number",
            },
        },
        "noise": {},
        "environment": _ENVIRONMENT,
        "started_at": "str",
        "finished_at": "str",
        # Added after the run: by farm_agent.py / serve mode (when the job's process or line arrived) and
        # by the farm (the bytes it shipped for the run).
        "process_started_at": "str",
        "farm_bytes_uploaded": "int",
    }
)

REPORT_REQUIRED = (("status",),)

#: The contract's version, as every report says it (``agent_version``, environment.AGENT_VERSION): a farm
#: imports reports of its own version only (farm/services/imports.py).
CONTRACT_VERSION = "1"


def validate_report(report):
    """Every problem of a report, as ``(field, message)`` (empty when it keeps the contract). A field under
    a parent that is not an object is not looked at: the parent's problem says it."""
    return checks.validate_tree("report", report, REPORT, REPORT_REQUIRED)


def check_report(report):
    """The report itself when it keeps the contract, else :class:`ContractError` naming every bad field."""
    problems = validate_report(report)
    if problems:
        raise ContractError("report", problems)
    return report


def read(report, *path):
    """The report's field at ``path`` (``read(r, "power", "avg_w")``), None when it (or a parent) is absent
    or null. Only declared fields (:data:`REPORT`) may be read: the farm reads nothing the contract does
    not name (an undeclared path is a programming error, a :class:`LookupError`)."""
    if path not in REPORT:
        raise LookupError(
            "report field %s is not in the farm-agent contract (protocol.REPORT)" % checks.dotted(path)
        )
    return checks.lookup(report, path)


def section(report, *path):
    """An object field of the report (:func:`read`), ``{}`` when absent or null."""
    value = read(report, *path)
    return value if isinstance(value, dict) else {}


def time_scale(report):
    """Wall seconds per emulated second of the run (1.0 for a measured one): an emulated board may run
    faster than real time, and its pace and figures are then in wall time x this (docs/virtual-lab.md)."""
    value = read(report, "emulation", "time_scale")
    return float(value) if checks.is_number(value) and 0 < value <= 1 else 1.0
