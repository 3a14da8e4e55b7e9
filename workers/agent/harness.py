"""Turn a config into one result document: validate, verify the artifact, load the backend, open the
sensors, run LoadGen with the sensors sampled on side threads, reduce the samples over LoadGen's measured
window, describe the environment. Never raises: every failure becomes ``status: "error"`` with
``error.kind`` "model" (exit 2) or "infra" (exit 1)."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import traceback

import accuracy
import backends
import environment
import loadgen_driver
import noise
import protocol
import sensors
from backends.base import AgentError, InfraError, verified_file
from sensors.sampler import Sampler

log = logging.getLogger("farm-agent")

AGENT_VERSION = environment.AGENT_VERSION

EXIT_OK = 0
EXIT_INFRA = 1
EXIT_MODEL = 2
EXIT_CODES = {"model": EXIT_MODEL, "infra": EXIT_INFRA}


def utc_now():
    """ISO 8601 UTC with an explicit ``+00:00`` offset (parsed by ``datetime.fromisoformat`` on 3.7+)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def utc_iso(epoch_seconds):
    """A time.time() value in the same format as :func:`utc_now`."""
    return datetime.datetime.fromtimestamp(epoch_seconds, datetime.timezone.utc).isoformat(
        timespec="milliseconds"
    )


# --------------------------------------------------------------------------- config


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
    """Defaults filled in and every field checked against the contract (protocol.CONFIG), every bad field
    named in one infra error. Unknown keys are ignored with a warning."""
    try:
        return protocol.normalize_config(raw, backends=backends.BACKENDS, warn=log.warning)
    except protocol.ContractError as exc:
        raise InfraError(str(exc)) from exc


# --------------------------------------------------------------------------- artifact


def check_artifact(path, expected_sha256=None):
    return verified_file(path, expected_sha256, "artifact")


# --------------------------------------------------------------------------- run


def _document(raw):
    doc = dict((key, None) for key in protocol.REPORT_KEYS)
    doc.update({"agent_version": AGENT_VERSION, "status": "error", "samples_ms": [], "started_at": utc_now()})
    if isinstance(raw, dict):
        for key in ("scenario", "backend"):
            doc[key] = raw.get(key) if isinstance(raw.get(key), str) else None
        batch_size = raw.get("batch_size", protocol.CONFIG["batch_size"].default)
        doc["batch_size"] = (
            batch_size if isinstance(batch_size, int) and not isinstance(batch_size, bool) else None
        )
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
        if config["noise_check"]:  # before the model loads
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
            time_scale=float((config.get("emulation") or {}).get("time_scale") or 1.0),
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
