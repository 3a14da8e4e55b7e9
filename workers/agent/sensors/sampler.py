"""Sample the sensors on side threads during a LoadGen test and reduce the samples to the report's
``power`` / ``thermal`` / ``clock`` objects (docs/virtual-lab.md section 5).

Timestamps are ``time.perf_counter_ns()``, the clock the LoadGen driver stamps its first issue and last
completion with, so the figures cover LoadGen's measured window only (MLPerf power does the same with
LoadGen's begin and end marks): samples before the first query or after the last completion are dropped.

* One thread per reader, so a slow reader (xbutil runs a process) never delays a fast one (hwmon).
* A read that fails is retried on the next tick; :data:`FAILURES_BEFORE_GONE` failures in a row mean the
  sensor is gone: its thread stops and, if that happened before the window closed, its figures are null
  with the reason in ``note``. The run itself never fails because of a sensor.
* Fewer than :data:`MIN_SAMPLES` samples in the window: figures null, ``note`` says so.
* A reader with an energy counter (``energy_j``: RAPL, NVML) gives the window's energy as the counter's
  difference between the window's start and end, each found between the two readings either side of it
  (the sampler reads a counter once more when it stops, so a reading follows the window's end); ``avg_w``
  is that energy over the window. Other power readers: ``avg_w`` is the mean sample, the energy
  ``avg_w`` x the window. ``energy_source`` says which ("counter" or "mean power x window").
"""

from __future__ import annotations

import contextlib
import threading
import time

import protocol

from .base import UNITS, SensorGone

MIN_SAMPLES = protocol.SENSOR_MIN_SAMPLES
MAX_TRACE_POINTS = 2000
FAILURES_BEFORE_GONE = 3


class _Channel(object):
    """One reader, its thread and what it read: ``samples`` = [(t_ns, {quantity: value})]."""

    def __init__(self, reader):
        self.reader = reader
        self.samples = []
        self.gone = None  # (t_ns, message)
        self.read_errors = 0
        self.thread = None


class Sampler(object):
    def __init__(self, readers, unavailable=(), clock=time.perf_counter_ns):
        """``readers``: opened readers in config order. ``unavailable``: (kind, quantities, reason) for
        configured sensors that could not be opened, so the report can say why a figure is missing."""
        self.channels = [_Channel(r) for r in readers]
        self.unavailable = list(unavailable)
        self.clock = clock
        self._stop = threading.Event()
        self.started_ns = None
        self.stopped_ns = None

    # ------------------------------------------------------------------ threads

    def start(self):
        self.started_ns = self.clock()
        for ch in self.channels:
            ch.thread = threading.Thread(target=self._loop, args=(ch,), name="sensor-%s" % ch.reader.kind)
            ch.thread.daemon = True
            ch.thread.start()

    def stop(self):
        self._stop.set()
        for ch in self.channels:
            if ch.thread is not None:
                ch.thread.join(timeout=15.0)
        self.stopped_ns = self.clock()

    def close(self):
        for ch in self.channels:
            with contextlib.suppress(Exception):
                ch.reader.close()

    def _loop(self, ch):
        interval_ns = int(max(0.001, ch.reader.interval_s) * 1e9)
        failures = 0
        next_ns = self.clock()
        while not self._stop.is_set():
            failures = self._read(ch, failures)
            if ch.gone is not None:
                return
            next_ns += interval_ns
            now = self.clock()
            if next_ns < now:  # fell behind (slow read): do not burst to catch up
                next_ns = now
            self._stop.wait((next_ns - now) / 1e9)
        if ch.samples and "energy_j" in ch.samples[-1][1]:
            # A counter: one reading now that the test is over, after the measured window's end, so the
            # window's energy is the counter's difference across it (:func:`_counter_at`).
            self._read(ch, failures)

    def _read(self, ch, failures):
        """One reading into ``ch.samples``; returns the failures in a row (``ch.gone`` set at the limit)."""
        t0 = self.clock()
        try:
            values = ch.reader.read()
        except Exception as exc:  # SensorGone, or anything a reader did not foresee
            failures += 1
            ch.read_errors += 1
            if failures >= FAILURES_BEFORE_GONE:
                kind = "" if isinstance(exc, SensorGone) else "%s: " % type(exc).__name__
                ch.gone = (t0, "%s%s" % (kind, exc))
            return failures
        ch.samples.append(((t0 + self.clock()) // 2, values))
        return 0

    # ------------------------------------------------------------------ figures

    def _source(self, quantity):
        for ch in self.channels:
            if quantity in ch.reader.quantities:
                return ch
        return None

    def figures(self, window_ns):
        """``{"power": obj|None, "thermal": obj|None, "clock": obj|None}`` for the window
        ``(first_issue_ns, last_complete_ns)`` (None when the test produced no window)."""
        out = {}
        for quantity in ("power", "thermal", "clock"):
            ch = self._source(quantity)
            if ch is not None:
                out[quantity] = _figures(quantity, ch, window_ns)
                continue
            missing = [u for u in self.unavailable if quantity in u[1]]
            if missing:
                kind, _, reason = missing[0]
                obj = _empty(quantity, kind, window_ns)
                obj["note"] = "sensor unavailable: %s" % reason
                out[quantity] = obj
            else:
                out[quantity] = None
        return out


# --------------------------------------------------------------------------- reduction


FIGURES = {
    "power": ("avg_w", "peak_w", "energy_j"),
    "thermal": ("max_c", "mean_c"),
    "clock": ("min_mhz", "max_mhz"),
}


def _r(value, digits=6):
    return None if value is None else round(float(value), digits)


def _window_s(window_ns):
    if not window_ns or window_ns[0] is None or window_ns[1] is None:
        return None
    return (window_ns[1] - window_ns[0]) / 1e9


def _empty(quantity, sensor, window_ns):
    obj = {
        "sensor": sensor,
        "unit": UNITS[quantity],
        "rate_hz": None,
        "resolution": None,
        "samples": 0,
        "window_s": _r(_window_s(window_ns)),
        "trace": {"t_s": [], "values": []},
        "note": None,
    }
    for key in FIGURES[quantity]:
        obj[key] = None
    return obj


def _cap(points, cap=MAX_TRACE_POINTS):
    n = len(points)
    if n <= cap:
        return points
    step = (n - 1) / float(cap - 1)
    return [points[int(round(i * step))] for i in range(cap)]


def _counter_at(points, t):
    """The cumulative counter at ``t`` (ns) from its readings ``points`` ([(t_ns, joules)] in time order):
    linear between the reading at or before ``t`` and the one at or after it; None when either is missing."""
    before = [p for p in points if p[0] <= t]
    after = [p for p in points if p[0] >= t]
    if not before or not after:
        return None
    (t0, e0), (t1, e1) = before[-1], after[0]
    return e0 if t1 == t0 else e0 + (e1 - e0) * (t - t0) / float(t1 - t0)


def _window_figures(reader, quantity, inside):
    """The reader's own fields for ``quantity`` (:meth:`Sensor.window_figures`); a reader's bug costs
    only those fields."""
    try:
        extra = reader.window_figures(quantity, inside)
    except Exception:
        return {}
    return extra if isinstance(extra, dict) else {}


def _figures(quantity, ch, window_ns):
    reader = ch.reader
    obj = _empty(quantity, reader.describe(), window_ns)
    obj["resolution"] = reader.resolution(quantity)
    obj["interval_ms"] = _r(reader.interval_s * 1000.0, 3)
    obj["read_errors"] = ch.read_errors
    info = reader.info()
    if info:
        obj["info"] = info
    window_s = _window_s(window_ns)
    if window_s is None:
        obj["note"] = "no measured window (the LoadGen test did not run to the end)"
        return obj
    w0, w1 = window_ns
    counter = quantity == "power" and any("energy_j" in v for _, v in ch.samples)
    inside = [(t, v) for t, v in ch.samples if w0 <= t <= w1]
    points = [(t, v[quantity]) for t, v in inside if v.get(quantity) is not None]
    obj["samples"] = len(inside if counter else points)
    obj["trace"] = {
        "t_s": [_r((t - w0) / 1e9) for t, _ in _cap(points)],
        "values": [_r(v) for _, v in _cap(points)],
    }
    n = obj["samples"]
    if n >= 2:
        span = (inside[-1][0] - inside[0][0]) if counter else (points[-1][0] - points[0][0])
        obj["rate_hz"] = _r((n - 1) / (span / 1e9), 3) if span > 0 else None
    for key, value in _window_figures(reader, quantity, inside).items():
        obj.setdefault(key, value)
    if ch.gone is not None and ch.gone[0] <= w1:
        obj["note"] = (
            "sensor stopped answering %.3f s into the %.3f s measured window (%s); figures left out"
            % (
                max(0.0, (ch.gone[0] - w0) / 1e9),
                window_s,
                ch.gone[1],
            )
        )
        return obj
    if n < MIN_SAMPLES:
        obj["note"] = (
            "only %d sample(s) in the %.3f s measured window, at least %d needed (sampling every %.0f ms); "
            "figures left out: run longer or sample faster"
            % (n, window_s, MIN_SAMPLES, reader.interval_s * 1000)
        )
        return obj
    values = [v for _, v in points]
    if quantity == "power":
        energy = None
        if counter:
            readings = [(t, v["energy_j"]) for t, v in ch.samples if v.get("energy_j") is not None]
            e0, e1 = _counter_at(readings, w0), _counter_at(readings, w1)
            if e0 is not None and e1 is not None and window_s > 0:
                energy = e1 - e0
                avg = energy / window_s
            else:  # no reading on one side of the window: the counter's mean power inside it
                inner = [(t, e) for t, e in readings if w0 <= t <= w1] or [(0, 0.0)]
                (t_first, e_first), (t_last, e_last) = inner[0], inner[-1]
                avg = (e_last - e_first) / ((t_last - t_first) / 1e9) if t_last > t_first else None
            obj["energy_source"] = "counter"
        else:
            avg = sum(values) / len(values)
            obj["energy_source"] = "mean power x window"
        if energy is None and avg is not None:
            energy = avg * window_s
        obj["avg_w"] = _r(avg)
        obj["peak_w"] = _r(max(values)) if values else None
        obj["energy_j"] = _r(energy)
    elif quantity == "thermal":
        obj["max_c"] = _r(max(values), 3)
        obj["mean_c"] = _r(sum(values) / len(values), 3)
    else:
        obj["min_mhz"] = _r(min(values), 3)
        obj["max_mhz"] = _r(max(values), 3)
    return obj
