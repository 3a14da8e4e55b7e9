"""An external power meter on the board's supply, for a board with no power monitor of its own (the
PYNQ-Z2 has no INA): the operator's logger (a USB meter's tool, a lab PSU's SCPI poller) keeps the latest
board-level reading in watts, one plain number, in ``/var/lib/farm/power_meter_w`` on the board (the
catalog spec ``meter``; under the emulation root in the virtual lab, where the board simulator writes
it). Like a hwmon file, the number is read as it stands: the logger owns its freshness."""

from __future__ import annotations

import os

from .base import Sensor, SensorError, SensorGone, read_text


class PowerMeter(Sensor):
    kind = "power_meter"
    quantities = ("power",)

    def __init__(self, entry):
        super(PowerMeter, self).__init__(entry)
        self.file = entry.get("path") or "/var/lib/farm/power_meter_w"
        if not os.path.exists(self.file):
            raise SensorError("%s does not exist (no external power meter logging on this board)" % self.file)
        try:
            self.read()
        except SensorGone as exc:
            raise SensorError(str(exc)) from exc

    def read(self):
        try:
            text = read_text(self.file)
        except (OSError, IOError) as exc:
            raise SensorGone("%s: %s" % (self.file, exc)) from exc
        try:
            watts = float(text)
        except (TypeError, ValueError):
            raise SensorGone("%s does not hold a number of watts: %r" % (self.file, text)) from None
        return {"power": watts}

    def describe(self):
        return "external power meter (%s)" % self.file

    def resolution(self, quantity):
        return 0.0001

    def info(self):
        return {"path": self.file}
