"""A kernel thermal zone: ``/sys/class/thermal/thermal_zone<N>/temp`` in millidegrees Celsius, and its
``type`` (e.g. ``cpu-thermal``, ``GPU-therm``)."""

from __future__ import annotations

import os

from .base import Sensor, SensorError, read_int, read_text, under_root


class ThermalZone(Sensor):
    kind = "thermal_zone"
    quantities = ("thermal",)

    def __init__(self, entry):
        super(ThermalZone, self).__init__(entry)
        self.zone = int(entry.get("zone") or 0)
        self.dir = under_root(entry.get("root") or "/", "/sys/class/thermal/thermal_zone%d" % self.zone)
        self.file = os.path.join(self.dir, "temp")
        if not os.path.exists(self.file):
            raise SensorError("%s does not exist" % self.file)
        try:
            self.type = read_text(os.path.join(self.dir, "type"))
        except (OSError, IOError):
            self.type = None
        self.read()

    def read(self):
        return {"thermal": read_int(self.file) / 1000.0}

    def describe(self):
        return "thermal_zone%d%s" % (self.zone, " (%s)" % self.type if self.type else "")

    def resolution(self, quantity):
        return 0.001

    def info(self):
        return {"path": self.file, "type": self.type}
