"""A temperature input of a hwmon device (e.g. ``zynqmp_ams``, ``versal_sysmon``): ``temp<N>_input`` in
millidegrees Celsius (hwmon ABI); N is the entry's ``input`` (default 1)."""

from __future__ import annotations

import os

from .base import Sensor, SensorError, find_hwmon, read_int, read_text


class HwmonTemp(Sensor):
    kind = "hwmon_temp"
    quantities = ("thermal",)

    def __init__(self, entry):
        super(HwmonTemp, self).__init__(entry)
        self.chip = entry.get("chip")
        if not self.chip:
            raise SensorError("hwmon_temp needs a chip name")
        self.input = int(entry.get("input") or 1)
        self.path = find_hwmon(entry.get("root") or "/", self.chip)
        self.file = os.path.join(self.path, "temp%d_input" % self.input)
        if not os.path.exists(self.file):
            raise SensorError("%s does not exist" % self.file)
        try:
            self.label = read_text(os.path.join(self.path, "temp%d_label" % self.input))
        except (OSError, IOError):
            self.label = None
        self.read()

    def read(self):
        return {"thermal": read_int(self.file) / 1000.0}

    def describe(self):
        label = " %s" % self.label if self.label else ""
        return "hwmon_temp %s temp%d%s (%s)" % (self.chip, self.input, label, os.path.basename(self.path))

    def resolution(self, quantity):
        return 0.001

    def info(self):
        return {"path": self.file}
