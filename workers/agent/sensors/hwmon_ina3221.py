"""TI INA3221 triple-channel monitor through the Linux hwmon driver ``ina3221`` (Jetson boards).

Files (hwmon ABI units): ``in[1-3]_input`` (bus voltage, millivolts), ``curr[1-3]_input``
(milliamperes), ``in[1-3]_label`` (rail names). Power = sum over the channels present of V x I.
A disabled channel has no ``curr`` file and is skipped.
"""

from __future__ import annotations

import os

from .base import Sensor, SensorError, find_hwmon, read_int, read_text


class HwmonIna3221(Sensor):
    kind = "hwmon_ina3221"
    quantities = ("power",)

    def __init__(self, entry):
        super(HwmonIna3221, self).__init__(entry)
        self.chip = entry.get("chip") or "ina3221"
        self.path = find_hwmon(entry.get("root") or "/", self.chip)
        self.channels = []
        self.labels = {}
        for n in (1, 2, 3):
            volts = os.path.join(self.path, "in%d_input" % n)
            amps = os.path.join(self.path, "curr%d_input" % n)
            if os.path.exists(volts) and os.path.exists(amps):
                self.channels.append(n)
                try:
                    self.labels[n] = read_text(os.path.join(self.path, "in%d_label" % n))
                except (OSError, IOError):
                    self.labels[n] = "in%d" % n
        if not self.channels:
            raise SensorError("%s has no channel with both in<n>_input and curr<n>_input" % self.path)
        self.read()

    def read(self):
        total_uw = 0
        for n in self.channels:
            millivolts = read_int(os.path.join(self.path, "in%d_input" % n))
            milliamps = read_int(os.path.join(self.path, "curr%d_input" % n))
            total_uw += millivolts * milliamps
        return {"power": total_uw / 1e6}

    def describe(self):
        rails = "+".join(self.labels[n] for n in self.channels)
        return "hwmon_ina3221 %s (%s: %s)" % (self.chip, os.path.basename(self.path), rails)

    def resolution(self, quantity):
        return 1e-6  # mV x mA

    def info(self):
        return {"path": self.path, "rails": [self.labels[n] for n in self.channels]}
