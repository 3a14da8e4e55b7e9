"""The interface every sensor reader implements, and small helpers for sysfs-style files.

A reader is built from one agent config entry (``{"kind": ..., ...}``, see docs/virtual-lab.md section 4)
and reads ONE device. :meth:`Sensor.read` returns a dict of quantities, each in the report's unit:

* ``"power"``: watts (board input power or the sum of the rails the device measures),
* ``"thermal"``: degrees Celsius,
* ``"clock"``: MHz,
* ``"energy_j"``: a cumulative energy counter in joules (RAPL, NVML's total-energy counter), already
  unwrapped: the sampler takes the energy over the measured window from it (sensors/sampler.py).

A reader may return more keys than its quantities (e.g. NVML's clock event reasons); only the reader
itself reduces those, in :meth:`Sensor.window_figures`.

A reader raises :class:`SensorError` when the device cannot be opened at all (at construction) and
:class:`SensorGone` when a read fails mid-run (file vanished, driver unbound, tool gone). Units of the
files read follow the Linux hwmon ABI (Documentation/hwmon/sysfs-interface): power in microwatts,
current in milliamperes, voltage in millivolts, temperature in millidegrees Celsius.
"""

from __future__ import annotations

import contextlib
import glob
import os

import protocol

QUANTITIES = ("power", "thermal", "clock")
UNITS = {"power": "W", "thermal": "C", "clock": "MHz"}


class SensorError(Exception):
    """The sensor cannot be used at all (missing device, bad config)."""


class SensorGone(SensorError):
    """A read failed after the sensor had worked: it vanished or stopped answering."""


class Sensor(object):
    """Abstract reader. Subclasses set :attr:`kind` and :attr:`quantities`, and implement :meth:`read`."""

    #: Config ``kind``, e.g. ``"hwmon_ina2xx"``.
    kind = ""
    #: Quantities :meth:`read` returns (a subset of QUANTITIES, plus ``energy_j`` for counters).
    quantities = ()
    #: Default sampling interval in seconds (a config entry's ``interval_ms`` overrides it): the contract's.
    default_interval_s = protocol.SENSOR_DEFAULT_INTERVAL_S

    def __init__(self, entry):
        self.entry = dict(entry)
        interval_ms = entry.get("interval_ms")
        self.interval_s = float(interval_ms) / 1000.0 if interval_ms else self.default_interval_s

    def read(self):
        """``{quantity: value}`` now. Raise :class:`SensorGone` if the device stopped answering."""
        raise NotImplementedError

    def describe(self):
        """What was read, for the report's ``sensor`` field (e.g. ``"hwmon_ina2xx ina226 (hwmon2)"``)."""
        return self.kind

    def resolution(self, quantity):
        """The smallest step the source can report for ``quantity``, in the report's unit (or None)."""
        return None

    def info(self):
        """Extra facts for the report (update interval, rail labels, ...)."""
        return {}

    def window_figures(self, quantity, samples):
        """Extra fields for the report's ``quantity`` object from this reader's samples inside the measured
        window (``[(t_ns, values)]`` in time order, possibly empty), e.g. the GPU's clock event reasons."""
        return {}

    def close(self):
        """Release what the reader holds (optional)."""


# --------------------------------------------------------------------------- helpers


def under_root(root, path):
    """``path`` (absolute, as on a real board) inside ``root`` ("/" on a real board)."""
    root = root or "/"
    return os.path.join(root, path.lstrip("/"))


def read_text(path):
    with open(path, "r") as fh:
        return fh.read().strip()


def read_int(path):
    """An integer sysfs attribute. Any failure (missing file, EIO, garbage) is :class:`SensorGone`."""
    try:
        return int(read_text(path))
    except (OSError, IOError, ValueError) as exc:
        raise SensorGone("%s: %s" % (path, exc)) from exc


def read_float(path):
    try:
        return float(read_text(path))
    except (OSError, IOError, ValueError) as exc:
        raise SensorGone("%s: %s" % (path, exc)) from exc


def find_hwmon(root, chip):
    """The hwmon directory under ``root`` whose ``name`` is ``chip`` (first in numeric order)."""
    base = under_root(root, "/sys/class/hwmon")
    candidates = glob.glob(os.path.join(base, "hwmon*"))

    def number(path):
        tail = os.path.basename(path)[len("hwmon") :]
        return int(tail) if tail.isdigit() else 1 << 30

    for path in sorted(candidates, key=number):
        try:
            name = read_text(os.path.join(path, "name"))
        except (OSError, IOError):
            continue
        if name == chip:
            return path
    names = []
    for path in sorted(candidates, key=number):
        with contextlib.suppress(OSError, IOError):
            names.append(read_text(os.path.join(path, "name")))
    raise SensorError(
        "no hwmon device named %r under %s (found: %s)" % (chip, base, ", ".join(names) or "none")
    )
