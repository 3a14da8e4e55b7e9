"""TI INA219 / INA226 / INA260 power monitors through the Linux hwmon driver ``ina2xx`` (INA260 via
``ina238``-style drivers exposes the same attributes).

Files (hwmon ABI units): ``power1_input`` (microwatts), ``curr1_input`` (milliamperes), ``in1_input`` (bus
voltage, millivolts), ``update_interval`` (milliseconds between conversions). Power is ``power1_input``;
when a driver does not expose it, bus voltage x current.
"""

from __future__ import annotations

import contextlib
import os

from .base import Sensor, SensorError, SensorGone, find_hwmon, read_int

CHIPS = ("ina219", "ina226", "ina260")


class HwmonIna2xx(Sensor):
    kind = "hwmon_ina2xx"
    quantities = ("power",)

    def __init__(self, entry):
        super(HwmonIna2xx, self).__init__(entry)
        self.chip = entry.get("chip") or "ina226"
        if self.chip not in CHIPS:
            raise SensorError("hwmon_ina2xx chip must be one of %s, got %r" % (", ".join(CHIPS), self.chip))
        self.path = find_hwmon(entry.get("root") or "/", self.chip)
        self.has_power = os.path.exists(os.path.join(self.path, "power1_input"))
        if not self.has_power and not (
            os.path.exists(os.path.join(self.path, "in1_input"))
            and os.path.exists(os.path.join(self.path, "curr1_input"))
        ):
            raise SensorError("%s has neither power1_input nor in1_input + curr1_input" % self.path)
        self.update_interval_ms = None
        with contextlib.suppress(SensorGone):
            self.update_interval_ms = read_int(os.path.join(self.path, "update_interval"))
        self.read()  # fail now, not mid-run, if the files cannot be read

    def read(self):
        if self.has_power:
            return {"power": read_int(os.path.join(self.path, "power1_input")) / 1e6}
        millivolts = read_int(os.path.join(self.path, "in1_input"))
        milliamps = read_int(os.path.join(self.path, "curr1_input"))
        return {"power": millivolts * milliamps / 1e6}

    def describe(self):
        return "hwmon_ina2xx %s (%s)" % (self.chip, os.path.basename(self.path))

    def resolution(self, quantity):
        # power1_input is in microwatts; in1_input x curr1_input is in mV x mA = microwatts too.
        return 1e-6

    def info(self):
        return {
            "path": self.path,
            "update_interval_ms": self.update_interval_ms,
            "source": "power1_input" if self.has_power else "in1_input x curr1_input",
        }
