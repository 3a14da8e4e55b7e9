"""Intel/AMD RAPL through the Linux powercap framework: the package energy counter
``/sys/class/powercap/intel-rapl:0/energy_uj`` (microjoules), which wraps to 0 after
``max_energy_range_uj``. Each read unwraps it into a running total (``energy_j``) and gives the average
power since the previous read. The counter is root-only on many kernels (since 5.10) and absent in most
VMs: the reader then says so and the run carries no power figures."""

from __future__ import annotations

import os
import time

from .base import Sensor, SensorError, SensorGone, read_int, read_text, under_root


class Rapl(Sensor):
    kind = "rapl"
    quantities = ("power",)

    def __init__(self, entry, clock=time.perf_counter):
        super(Rapl, self).__init__(entry)
        self.domain = entry.get("domain") or "intel-rapl:0"
        self.dir = under_root(entry.get("root") or "/", "/sys/class/powercap/%s" % self.domain)
        self.file = os.path.join(self.dir, "energy_uj")
        if not os.path.exists(self.file):
            raise SensorError("%s does not exist (no RAPL on this machine)" % self.file)
        try:
            self.max_range_uj = read_int(os.path.join(self.dir, "max_energy_range_uj"))
        except SensorGone as exc:
            raise SensorError(str(exc)) from exc
        try:
            self.name = read_text(os.path.join(self.dir, "name"))
        except (OSError, IOError):
            self.name = None
        self._clock = clock
        self._last_uj = None
        self._last_t = None
        self._total_uj = 0
        self.wraps = 0
        try:
            self.read()
        except SensorGone as exc:
            raise SensorError(str(exc)) from exc

    def read(self):
        now = self._clock()
        value = read_int(self.file)
        out = {}
        if self._last_uj is not None:
            delta = value - self._last_uj
            if delta < 0:  # wrapped at max_energy_range_uj
                delta += self.max_range_uj
                self.wraps += 1
            self._total_uj += delta
            dt = now - self._last_t
            if dt > 0:
                out["power"] = delta / 1e6 / dt
        self._last_uj, self._last_t = value, now
        out["energy_j"] = self._total_uj / 1e6
        return out

    def describe(self):
        return "rapl %s%s" % (self.domain, " (%s)" % self.name if self.name else "")

    def resolution(self, quantity):
        return 1e-6  # the counter's unit; the hardware's energy unit is coarser (about 15-61 uJ)

    def info(self):
        return {"path": self.file, "max_energy_range_uj": self.max_range_uj, "wraps": self.wraps}
