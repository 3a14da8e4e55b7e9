"""The emulated accelerator's clock: ``<root>/emu/clock_mhz`` (one float, MHz), written by the board
simulator (docs/virtual-lab.md section 3). The harness adds this reader on emulated boards."""

from __future__ import annotations

import os

from .base import Sensor, SensorError, read_float


class EmuClock(Sensor):
    kind = "emu_clock"
    quantities = ("clock",)

    def __init__(self, entry):
        super(EmuClock, self).__init__(entry)
        root = entry.get("root")
        if not root:
            raise SensorError("emu_clock needs the emulated board's root")
        self.file = os.path.join(root, "emu", "clock_mhz")
        if not os.path.exists(self.file):
            raise SensorError("%s does not exist (is the board simulator running?)" % self.file)
        self.read()

    def read(self):
        return {"clock": read_float(self.file)}

    def describe(self):
        return "emu_clock (%s)" % self.file

    def info(self):
        return {"path": self.file}
