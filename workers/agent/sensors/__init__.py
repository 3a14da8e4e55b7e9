"""Sensor readers (one module per kind) and the sampler that runs them during a LoadGen test.

Config entries come from the farm (built by protocol.sensor_entry from the catalog's specs); each reader
module is imported only when an entry asks for it, so a board without, say, pynvml still runs.
"""

from __future__ import annotations

import importlib

import protocol

from .base import QUANTITIES, UNITS, Sensor, SensorError, SensorGone

#: config kind -> "module:Class" (module relative to this package), and what each kind measures (known
#: without importing or opening anything). Both come from the contract's one table (protocol.SENSOR_KINDS).
SENSORS = {s.kind: s.reader for s in protocol.SENSOR_KINDS}
PROVIDES = {s.kind: tuple(s.provides) for s in protocol.SENSOR_KINDS}

__all__ = ["PROVIDES", "QUANTITIES", "SENSORS", "UNITS", "Sensor", "SensorError", "SensorGone", "create"]


def available():
    return sorted(SENSORS)


def create(entry):
    """A reader for one config entry. :class:`SensorError` if it cannot be opened (with the reason)."""
    if not isinstance(entry, dict) or entry.get("kind") not in SENSORS:
        kind = entry.get("kind") if isinstance(entry, dict) else entry
        raise SensorError("unknown sensor kind %r; known kinds: %s" % (kind, ", ".join(available())))
    module_name, _, class_name = SENSORS[entry["kind"]].partition(":")
    try:
        module = importlib.import_module("." + module_name, __name__)
    except ImportError as exc:
        raise SensorError("sensor %r cannot be imported: %s" % (entry["kind"], exc)) from exc
    try:
        return getattr(module, class_name)(entry)
    except SensorError:
        raise
    except Exception as exc:  # a reader must never take the run down
        raise SensorError("%s: %s: %s" % (entry["kind"], type(exc).__name__, exc)) from exc
