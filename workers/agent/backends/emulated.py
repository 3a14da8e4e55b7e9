"""The emulated accelerator of the virtual lab (docs/virtual-lab.md sections 2 and 3).

The artifact is an ``.onnx`` file (the INT8 QDQ model, or FP32 for a GPU) whose metadata key
``farm.emulation`` holds the timing profile the emulation toolchain computed for the target. This
backend:

* runs the model with ONNX Runtime on the CPU, so every output is the real output of the model;
* paces each ``predict`` in wall time to the profile: SingleStream (and any scenario but Offline) to the
  single-thread latency ``latency_ms``; Offline to the multi-thread throughput, ``batch_size / fps_mt``
  per batch. The clock-scaled part (``clock_scaled_ms``, or the same fraction of the Offline time) is
  stretched by nominal / current clock, the current clock read from ``<root>/emu/clock_mhz`` (written by
  the board simulator) at most every 50 ms. Everything is multiplied by the lab's ``time_scale``;
* writes the accelerator utilisation (``utilisation_st`` or ``utilisation_mt``) to ``<root>/emu/load``
  (tmp + rename) from the first inference on, and 0 at close, for the simulator's power model.

The CPU that runs the emulation may be much slower than the board it stands in for, so an output is
computed ONCE per distinct input batch and memoised: the LoadGen driver builds a fixed set of sample
batches and reuses those very objects, and hands them to :meth:`prepare` before the test, so the
outputs are computed there, untimed. A ``predict`` in the test then costs a dictionary look-up plus
the paced wait. A batch not seen before is computed on the spot; if that takes longer than the pace,
the inference is late and ``pace_overruns`` in the report counts it.
"""

from __future__ import annotations

import json
import logging
import os
import time

import protocol

from .base import ModelError
from .onnxruntime_cpu import OnnxRuntimeCpuBackend

log = logging.getLogger("farm-agent")

PROFILE_KEY = protocol.PROFILE_KEY
#: The current clock is re-read at most this often (seconds).
CLOCK_REFRESH_S = 0.05
#: The last part of a wait is spun rather than slept (sleep overshoots by 50-100 us on Linux).
SPIN_S = 0.0002


def parse_profile(text):
    """The ``farm.emulation`` JSON, checked. :class:`ModelError` for anything unusable."""
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise ModelError("the farm.emulation profile is not valid JSON: %s" % exc) from exc
    if not isinstance(profile, dict):
        raise ModelError("the farm.emulation profile must be a JSON object")
    for key in protocol.PROFILE_NUMBERS:
        value = profile.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ModelError(
                "the farm.emulation profile needs a non-negative number %s, got %r" % (key, value)
            )
    for key in ("latency_ms", "fps_mt", "clock_mhz", "batch_size"):
        if profile[key] <= 0:
            raise ModelError("the farm.emulation profile's %s must be positive" % key)
    if profile["clock_scaled_ms"] > profile["latency_ms"] * (1 + 1e-6):
        raise ModelError(
            "the farm.emulation profile's clock_scaled_ms (%s) exceeds latency_ms (%s)"
            % (profile["clock_scaled_ms"], profile["latency_ms"])
        )
    profile["clock_scaled_ms"] = min(profile["clock_scaled_ms"], profile["latency_ms"])  # rounding
    for key in protocol.PROFILE_UTILISATION:
        value = profile.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not -1e-3 <= value <= 1.001:
            raise ModelError("the farm.emulation profile's %s must be within 0..1, got %r" % (key, value))
        profile[key] = min(1.0, max(0.0, float(value)))
    return profile


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class EmulatedBackend(OnnxRuntimeCpuBackend):
    name = "emulated"
    runtime = "emulated"

    def __init__(self, now=time.perf_counter, sleep=time.sleep):
        super(EmulatedBackend, self).__init__()
        self._now = now
        self._sleep = sleep
        self.profile = None
        self.root = None
        self.time_scale = 1.0
        self.scenario = "SingleStream"
        self.batch_size = None
        self._memo = {}
        self._clock_mhz = None
        self._clock_read_at = None
        self._clock_note = None
        self._busy = False
        self._load_warned = False
        self.clock_reads = 0
        self.clock_min_mhz = None
        self.outputs_computed = 0
        self.predicts = 0
        self.pace_overruns = 0

    # ------------------------------------------------------------------ setup

    def configure(self, config):
        self.scenario = config.get("scenario") or "SingleStream"
        self.batch_size = config.get("batch_size")
        emulation = config.get("emulation") or {}
        self.root = emulation.get("root")
        self.time_scale = float(emulation.get("time_scale") or 1.0)

    def load(self, artifact_path, threads=None):
        super(EmulatedBackend, self).load(artifact_path, threads)
        try:
            metadata = self.session.get_modelmeta().custom_metadata_map or {}
        except Exception as exc:
            raise ModelError("cannot read the model's metadata: %s" % exc) from exc
        text = metadata.get(PROFILE_KEY)
        if not text:
            raise ModelError(
                "%s has no %r profile in its metadata: the emulated backend runs artifacts built by an "
                "emulation toolchain (e.g. dpu_emulator), which record the target's timing there"
                % (os.path.basename(artifact_path), PROFILE_KEY)
            )
        self.profile = parse_profile(text)
        if self.batch_size is not None and int(self.profile["batch_size"]) != int(self.batch_size):
            raise ModelError(
                "the farm.emulation profile is for batch %s but batch_size=%s was requested"
                % (self.profile["batch_size"], self.batch_size)
            )
        self._write_load(0.0)

    # ------------------------------------------------------------------ timing

    @property
    def offline(self):
        return self.scenario == "Offline"

    def current_clock_mhz(self):
        """The accelerator clock now: ``<root>/emu/clock_mhz``, re-read at most every 50 ms; the nominal
        clock when there is no root or the file is missing or unreadable."""
        nominal = float(self.profile["clock_mhz"])
        if self.root is None:
            return nominal
        now = self._now()
        if self._clock_read_at is None or now - self._clock_read_at >= CLOCK_REFRESH_S:
            self._clock_read_at = now
            self.clock_reads += 1
            path = os.path.join(self.root, "emu", "clock_mhz")
            try:
                with open(path, "r") as fh:
                    value = float(fh.read().strip())
                if value <= 0:
                    raise ValueError("clock %r is not positive" % value)
                self._clock_mhz = value
            except (OSError, IOError, ValueError) as exc:
                if self._clock_note is None:
                    self._clock_note = "cannot read %s (%s): nominal clock used" % (path, exc)
                    log.warning("emulated backend: %s", self._clock_note)
                self._clock_mhz = nominal
            if self.clock_min_mhz is None or self._clock_mhz < self.clock_min_mhz:
                self.clock_min_mhz = self._clock_mhz
        return self._clock_mhz

    def pace_s(self):
        """Wall seconds one batch takes now (scenario, clock and time_scale applied)."""
        p = self.profile
        latency = float(p["latency_ms"])
        scaled_fraction = float(p["clock_scaled_ms"]) / latency
        base_ms = 1000.0 * float(p["batch_size"]) / float(p["fps_mt"]) if self.offline else latency
        scaled_ms = base_ms * scaled_fraction
        stretch = float(p["clock_mhz"]) / self.current_clock_mhz()
        return ((base_ms - scaled_ms) + scaled_ms * stretch) * self.time_scale / 1000.0

    # ------------------------------------------------------------------ running

    def _output(self, batch):
        hit = self._memo.get(id(batch))
        if hit is not None and hit[0] is batch:
            return hit[1]
        output = super(EmulatedBackend, self).predict(batch)
        self._memo[id(batch)] = (batch, output)  # keeps the batch alive, so its id stays unique
        self.outputs_computed += 1
        return output

    def prepare(self, batches):
        for batch in batches:
            self._output(batch)

    def predict(self, batch):
        start = self._now()
        if not self._busy:
            self._busy = True
            key = "utilisation_mt" if self.offline else "utilisation_st"
            self._write_load(float(self.profile.get(key, 0.0)))
        output = self._output(batch)
        deadline = start + self.pace_s()
        remaining = deadline - self._now()
        if remaining <= 0:
            self.pace_overruns += 1
        else:
            if remaining > SPIN_S:
                self._sleep(remaining - SPIN_S)
            while self._now() < deadline:
                self._sleep(0)  # lets the sensor threads have the GIL while we spin to the deadline
        self.predicts += 1
        return output

    def _write_load(self, value):
        if self.root is None:
            return
        path = os.path.join(self.root, "emu", "load")
        try:
            write_atomic(path, "%.6f\n" % value)
        except (OSError, IOError) as exc:
            if not self._load_warned:
                self._load_warned = True
                log.warning("emulated backend: cannot write %s: %s", path, exc)

    # ------------------------------------------------------------------ reporting

    def emulation(self):
        p = self.profile or {}
        return {
            "model_version": p.get("model_version"),
            "device": p.get("device"),
            "kind": p.get("kind"),
            "time_scale": self.time_scale,
            "root": self.root,
            "paced_to": "multi-thread throughput (fps_mt)" if self.offline else "single-thread latency",
            "nominal_clock_mhz": p.get("clock_mhz"),
            "min_clock_mhz": self.clock_min_mhz,
            "clock_reads": self.clock_reads,
            "clock_note": self._clock_note,
            "profile": dict((k, p.get(k)) for k in protocol.PROFILE_REPORTED),
            "predicts": self.predicts,
            "outputs_computed": self.outputs_computed,
            "pace_overruns": self.pace_overruns,
        }

    def versions(self):
        out = super(EmulatedBackend, self).versions()
        out["runtime"] = self.runtime
        out["emulation_model"] = (self.profile or {}).get("model_version")
        out["emulated_device"] = (self.profile or {}).get("device")
        return out

    def close(self):
        if self.profile is not None:
            self._write_load(0.0)
        self._busy = False
        self._memo = {}
        super(EmulatedBackend, self).close()
