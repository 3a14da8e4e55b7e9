"""Turn a config into one result document: validate, verify the artifact, load the backend, open the
sensors, run LoadGen with the sensors sampled on side threads, reduce the samples over LoadGen's measured
window, describe the environment. Never raises: every failure becomes ``status: "error"`` with
``error.kind`` "model" (exit 2) or "infra" (exit 1)."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import traceback

import accuracy
import backends
import environment
import loadgen_driver
import noise
import sensors
from backends.base import AgentError, InfraError, verified_file
from sensors.sampler import Sampler

log = logging.getLogger("farm-agent")

AGENT_VERSION = environment.AGENT_VERSION

EXIT_OK = 0
EXIT_INFRA = 1
EXIT_MODEL = 2
EXIT_CODES = {"model": EXIT_MODEL, "infra": EXIT_INFRA}

REQUIRED = ("artifact", "backend", "scenario")
DEFAULTS = {
    "artifact_sha256": None,
    "batch_size": 1,
    "loadgen": dict(loadgen_driver.LOADGEN_DEFAULTS),
    "threads": None,
    "warmup_queries": 10,
    "sample_count": 64,
    "seed": 0,
    "log_dir": None,
    "sensors": [],
    "emulation": None,
    "gpu": None,
    "noise_check": None,  # seconds of pre-run host noise check (noise.py); null or 0: none
    "ambient_path": None,  # a file holding the ambient temperature (C, or millidegrees as hwmon writes)
    "reference": None,  # {path, sha256}: FP32 reference outputs for INT8 agreement (accuracy.py)
    "dataset": None,  # {path, sha256}: a labelled dataset pack for top-1/top-5 (accuracy.py)
}

EMULATION_KEYS = ("root", "time_scale")


def utc_now():
    """ISO 8601 UTC with an explicit ``+00:00`` offset (parsed by ``datetime.fromisoformat`` on 3.7+)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def utc_iso(epoch_seconds):
    """A time.time() value in the same format as :func:`utc_now`."""
    return datetime.datetime.fromtimestamp(epoch_seconds, datetime.timezone.utc).isoformat(
        timespec="milliseconds"
    )


# --------------------------------------------------------------------------- config


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if not _is_int(value) or value < minimum:
        raise InfraError(
            "config %s must be an integer >= %d%s, got %r"
            % (name, minimum, " or null" if allow_none else "", value)
        )


def _check_positive_number(name, value):
    if value is not None and (not _is_number(value) or value <= 0):
        raise InfraError("config %s must be a positive number or null, got %r" % (name, value))


def load_config_text(text):
    """Parse config JSON text; a syntax error is an infra error."""
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise InfraError("config is not valid JSON: %s" % exc) from exc
    if not isinstance(config, dict):
        raise InfraError("config must be a JSON object, got %s" % type(config).__name__)
    return config


def normalize_config(raw):
    """Defaults filled in and every field type-checked. Unknown keys are ignored with a warning."""
    if not isinstance(raw, dict):
        raise InfraError("config must be a JSON object")
    missing = [key for key in REQUIRED if raw.get(key) in (None, "")]
    if missing:
        raise InfraError("config is missing required field(s): %s" % ", ".join(missing))
    unknown = sorted(set(raw) - set(REQUIRED) - set(DEFAULTS))
    if unknown:
        log.warning("ignoring unknown config field(s): %s", ", ".join(unknown))
    config = dict(DEFAULTS)
    config.update(dict((k, v) for k, v in raw.items() if k in REQUIRED or k in DEFAULTS))

    loadgen_raw = raw.get("loadgen") or {}
    if not isinstance(loadgen_raw, dict):
        raise InfraError("config loadgen must be an object")
    lg_unknown = sorted(set(loadgen_raw) - set(loadgen_driver.LOADGEN_DEFAULTS))
    if lg_unknown:
        log.warning("ignoring unknown loadgen field(s): %s", ", ".join(lg_unknown))
    lg_cfg = dict(loadgen_driver.LOADGEN_DEFAULTS)
    lg_cfg.update(dict((k, v) for k, v in loadgen_raw.items() if k in loadgen_driver.LOADGEN_DEFAULTS))
    for key in ("min_duration_ms", "min_query_count", "max_query_count"):
        if lg_cfg[key] is None:
            lg_cfg[key] = loadgen_driver.LOADGEN_DEFAULTS[key]
    _check_int("loadgen.min_duration_ms", lg_cfg["min_duration_ms"], 0)
    _check_int("loadgen.min_query_count", lg_cfg["min_query_count"], 1)
    _check_int("loadgen.max_query_count", lg_cfg["max_query_count"], 0)
    _check_positive_number("loadgen.target_latency_ms", lg_cfg["target_latency_ms"])
    _check_positive_number("loadgen.offline_expected_qps", lg_cfg["offline_expected_qps"])
    config["loadgen"] = loadgen_driver.check_config(lg_cfg)  # MultiStream / Server settings

    for key in ("artifact", "backend", "scenario"):
        if not isinstance(config[key], str):
            raise InfraError("config %s must be a string, got %r" % (key, config[key]))
    if config["scenario"] not in loadgen_driver.SCENARIOS:
        raise InfraError(
            "unknown scenario %r; supported scenarios: %s"
            % (config["scenario"], ", ".join(loadgen_driver.SCENARIOS))
        )
    if config["backend"] not in backends.BACKENDS:
        raise InfraError(
            "unknown backend %r; available backends: %s"
            % (config["backend"], ", ".join(backends.available()))
        )
    _check_int("batch_size", config["batch_size"], 1)
    _check_int("threads", config["threads"], 1, allow_none=True)
    _check_int("warmup_queries", config["warmup_queries"], 0)
    _check_int("sample_count", config["sample_count"], 1)
    _check_int("seed", config["seed"], 0)
    if config["artifact_sha256"] is not None and not isinstance(config["artifact_sha256"], str):
        raise InfraError("config artifact_sha256 must be a hex string or null")
    if config["log_dir"] is not None and not isinstance(config["log_dir"], str):
        raise InfraError("config log_dir must be a string or null")
    if config["sensors"] is None:
        config["sensors"] = []
    if not isinstance(config["sensors"], list):
        raise InfraError("config sensors must be a list")
    for i, entry in enumerate(config["sensors"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise InfraError("config sensors[%d] must be an object with a string kind, got %r" % (i, entry))
        interval = entry.get("interval_ms")
        if interval is not None and (not _is_number(interval) or interval <= 0):
            raise InfraError(
                "config sensors[%d].interval_ms must be a positive number, got %r" % (i, interval)
            )
    config["emulation"] = _emulation(config["emulation"])
    if config["gpu"] is not None and not isinstance(config["gpu"], dict):
        raise InfraError("config gpu must be an object or null")
    accuracy.normalize(config)
    return config


def _emulation(raw):
    """``{"root": absolute path, "time_scale": 0 < x <= 1}`` or None."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InfraError("config emulation must be an object {root, time_scale} or null, got %r" % (raw,))
    unknown = sorted(set(raw) - set(EMULATION_KEYS))
    if unknown:
        log.warning("ignoring unknown emulation field(s): %s", ", ".join(unknown))
    root = raw.get("root")
    if not isinstance(root, str) or not os.path.isabs(root):
        raise InfraError("config emulation.root must be an absolute path, got %r" % (root,))
    time_scale = raw.get("time_scale", 1.0)
    if time_scale is None:
        time_scale = 1.0
    if not _is_number(time_scale) or not 0 < time_scale <= 1:
        raise InfraError("config emulation.time_scale must be a number in (0, 1], got %r" % (time_scale,))
    return {"root": root, "time_scale": float(time_scale)}


# --------------------------------------------------------------------------- artifact


def check_artifact(path, expected_sha256=None):
    return verified_file(path, expected_sha256, "artifact")


# --------------------------------------------------------------------------- run


#: Output keys, in order. The contract keys come first; the rest are provenance/diagnostics.
OUTPUT_KEYS = (
    "agent_version",
    "status",
    "error",
    "scenario",
    "backend",
    "batch_size",
    "latency_ms",
    "latency_source",
    "throughput_ips",
    "throughput_source",
    "query_count",
    "sample_count",
    "duration_s",
    "result_valid",
    "headline",
    "server_search",
    "samples_ms",
    "samples_total",
    "samples_kind",
    "sut_latency_ms",
    "warmup",
    "loadgen",
    "loadgen_logs",
    "power",
    "thermal",
    "clock",
    "emulation",
    "accuracy",
    "noise",
    "environment",
    "config",
    "started_at",
    "finished_at",
)


def _document(raw):
    doc = dict((key, None) for key in OUTPUT_KEYS)
    doc.update({"agent_version": AGENT_VERSION, "status": "error", "samples_ms": [], "started_at": utc_now()})
    if isinstance(raw, dict):
        for key in ("scenario", "backend"):
            doc[key] = raw.get(key) if isinstance(raw.get(key), str) else None
        batch_size = raw.get("batch_size", DEFAULTS["batch_size"])
        doc["batch_size"] = batch_size if _is_int(batch_size) else None
    return doc


# --------------------------------------------------------------------------- sensors


def open_sensors(config):
    """A :class:`Sampler` over the configured sensors (plus the emulated clock on an emulated board), or
    None when there is nothing to read. A sensor that cannot be opened is reported, never fatal."""
    entries = list(config["sensors"])
    emulation = config.get("emulation")
    if emulation and not any(e.get("kind") == "emu_clock" for e in entries):
        clock = {"kind": "emu_clock", "root": emulation["root"]}
        intervals = [e["interval_ms"] for e in entries if e.get("interval_ms")]
        if intervals:  # as fast as the fastest configured sensor
            clock["interval_ms"] = min(intervals)
        entries.append(clock)
    if not entries:
        return None
    readers, unavailable = [], []
    for entry in entries:
        try:
            readers.append(sensors.create(entry))
        except sensors.SensorError as exc:
            kind = entry.get("kind")
            log.warning("sensor %s unavailable: %s", kind, exc)
            unavailable.append((kind, sensors.PROVIDES.get(kind, ()), str(exc)))
    return Sampler(readers, unavailable)


def sensor_figures(sampler, result, batch_size):
    """The report's power / thermal / clock objects over LoadGen's measured window."""
    figures = sampler.figures((result or {}).get("window_ns"))
    power = figures.get("power")
    if power is not None and result:
        power["inferences"] = int(result.get("sample_count") or 0) * int(batch_size)
    return figures


def run(raw_config):
    """Run one benchmark from a config dict (or a pre-raised :class:`AgentError`).

    Returns ``(document, exit_code)``; never raises for agent-level failures.
    """
    doc = _document(raw_config)
    backend = None
    sampler = None
    config = None
    try:
        if isinstance(raw_config, AgentError):
            raise raw_config
        config = normalize_config(raw_config)
        doc["config"] = config
        artifact = check_artifact(config["artifact"], config["artifact_sha256"])
        if _is_number(config["noise_check"]) and config["noise_check"] > 0:  # before the model loads
            doc["noise"] = noise.check_safely(window_s=float(config["noise_check"]))
        loadgen_driver.import_loadgen()
        backend = backends.create(config["backend"])
        backend.configure(config)
        log.info("loading %s with %s", artifact, backend.name)
        backend.load(artifact, config["threads"])
        sampler = open_sensors(config)
        capture = accuracy.Capture(backend) if config["reference"] else None
        result = loadgen_driver.run_test(
            capture or backend,
            config["scenario"],
            batch_size=config["batch_size"],
            log_dir=config["log_dir"],
            loadgen_cfg=config["loadgen"],
            sample_count=config["sample_count"],
            seed=config["seed"],
            warmup_queries=config["warmup_queries"],
            monitor=sampler,
        )
        doc.update((k, v) for k, v in result.items() if k in doc)
        if sampler is not None:
            doc.update(sensor_figures(sampler, result, config["batch_size"]))
        doc["accuracy"] = accuracy.measure(backend, capture, config, loadgen_driver.import_loadgen())
        doc["status"] = "ok"
        code = EXIT_OK
    except AgentError as exc:
        log.error("%s error: %s", exc.kind, exc)
        if exc.__cause__ is not None:
            log.debug("cause", exc_info=exc)
        doc["error"] = {"kind": exc.kind, "message": str(exc)}
        code = EXIT_CODES[exc.kind]
    except Exception as exc:  # a bug or an unforeseen runtime failure: infra, traceback to stderr
        log.error("unexpected failure:\n%s", traceback.format_exc())
        doc["error"] = {"kind": "infra", "message": "unexpected %s: %s" % (type(exc).__name__, exc)}
        code = EXIT_INFRA
    if sampler is not None:
        with contextlib.suppress(Exception):
            sampler.close()
    if backend is not None:
        with contextlib.suppress(Exception):
            doc["emulation"] = backend.emulation()
    lg_version = (doc.get("loadgen") or {}).get("version")
    doc["environment"] = environment.collect(backend, None, (config or {}).get("emulation"))
    if config and config.get("ambient_path"):
        doc["environment"]["ambient_c"] = environment.ambient_from(config["ambient_path"])
    if lg_version and not doc["environment"].get("loadgen_version"):
        doc["environment"]["loadgen_version"] = lg_version
    if backend is not None:
        with contextlib.suppress(Exception):
            backend.close()
    doc["finished_at"] = utc_now()
    return loadgen_driver.finite_or_none(doc), code
