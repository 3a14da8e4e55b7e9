"""Sensor readers (one module per kind) and the sampler that runs them during a LoadGen test.

Config entries come from the farm (farm/fleet/sensors.py, docs/virtual-lab.md section 4); each reader
module is imported only when an entry asks for it, so a board without, say, pynvml still runs.
"""

from __future__ import annotations

import importlib

from .base import QUANTITIES, UNITS, Sensor, SensorError, SensorGone

#: config kind -> "module:Class" (module relative to this package).
SENSORS = {
    "hwmon_ina2xx": "hwmon_ina2xx:HwmonIna2xx",
    "hwmon_ina3221": "hwmon_ina3221:HwmonIna3221",
    "hwmon_temp": "hwmon_temp:HwmonTemp",
    "thermal_zone": "thermal_zone:ThermalZone",
    "xbutil": "xbutil:Xbutil",
    "nvml": "nvml:Nvml",
    "rapl": "rapl:Rapl",
    "emu_clock": "emu_clock:EmuClock",
}

#: What each kind measures, known without importing or opening anything.
PROVIDES = {
    "hwmon_ina2xx": ("power",),
    "hwmon_ina3221": ("power",),
    "hwmon_temp": ("thermal",),
    "thermal_zone": ("thermal",),
    "xbutil": ("power", "thermal"),
    "nvml": ("power", "thermal", "clock"),
    "rapl": ("power",),
    "emu_clock": ("clock",),
}

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
