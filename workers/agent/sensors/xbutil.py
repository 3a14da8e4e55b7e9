"""Alveo cards through XRT's ``xbutil``: board power and temperatures.

Runs ``xbutil examine [-d BDF] -r electrical thermal -f JSON -o FILE --force`` and parses the JSON XRT
writes (XBUtilities::produce_reports; reports ReportElectrical and ReportThermal, schema "JSON" 2020.2)::

    {"schema_version": {"schema": "JSON", "creation_date": "..."},
     "devices": [{"interface_type": "pcie", "device_id": "0000:3b:00.1", "device_status": "...",
                  "electrical": {"power_rails": [{"id": "12v_pex", "description": "...",
                                                  "voltage": {"volts": "12.1", "is_present": "true"},
                                                  "current": {"amps": "1.2", "is_present": "true"}}, ...],
                                 "power_consumption_max_watts": "75",
                                 "power_consumption_watts": "18.234567",
                                 "power_consumption_warning": "false"},
                  "thermals": [{"location_id": "fpga0", "description": "FPGA", "temp_C": "45",
                                "is_present": "true"}, ...]}]}

Every value is a string (boost::property_tree's JSON writer). Power is ``power_consumption_watts``
(XRT's board power, microwatt precision); temperature is the FPGA die (``location_id`` "fpga0") when
present, else the hottest sensor present. One call takes XRT a while (it talks to the card's management
controller), so this reader asks every 0.25 s by default (back to back when a call takes longer): at
least the 5 samples a figure needs in the default 2 s LoadGen run when XRT answers within 0.4 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import protocol

from .base import Sensor, SensorError, SensorGone

TIMEOUT_S = 10.0


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _present(entry):
    return str(entry.get("is_present", "false")).lower() == "true"


def parse_report(doc, device=None):
    """``(power_w or None, temp_c or None, device_id)`` from xbutil's JSON report."""
    devices = doc.get("devices") if isinstance(doc, dict) else None
    if not devices:
        raise SensorGone("xbutil report has no devices")
    chosen = devices[0]
    if device:
        for dev in devices:
            if dev.get("device_id") == device:
                chosen = dev
                break
        else:
            raise SensorGone("xbutil report has no device %s" % device)
    electrical = chosen.get("electrical") or {}
    power = _float(electrical.get("power_consumption_watts"))
    temps = [t for t in chosen.get("thermals") or [] if isinstance(t, dict) and _present(t)]
    temp = None
    for t in temps:
        if t.get("location_id") == "fpga0":
            temp = _float(t.get("temp_C"))
    if temp is None:
        values = [v for v in (_float(t.get("temp_C")) for t in temps) if v is not None]
        temp = max(values) if values else None
    return power, temp, chosen.get("device_id")


class Xbutil(Sensor):
    kind = "xbutil"
    quantities = ("power", "thermal")
    default_interval_s = protocol.SENSOR_INTERVAL_S["xbutil"]

    def __init__(self, entry):
        super(Xbutil, self).__init__(entry)
        self.path = entry.get("path") or "/opt/xilinx/xrt/bin/xbutil"
        if not os.path.isfile(self.path) and shutil.which(self.path) is None:
            raise SensorError("xbutil not found at %s" % self.path)
        self.device = entry.get("device")
        self.device_id = None
        self._dir = tempfile.mkdtemp(prefix="farm-xbutil-")
        self._out = os.path.join(self._dir, "examine.json")
        try:
            first = self.read()
        except SensorGone as exc:
            raise SensorError(str(exc)) from exc
        if first.get("power") is None and first.get("thermal") is None:
            raise SensorError("xbutil reports neither power nor temperature for this card")

    def command(self):
        cmd = [self.path, "examine"]
        if self.device:
            cmd += ["-d", self.device]
        return cmd + ["-r", "electrical", "thermal", "-f", "JSON", "-o", self._out, "--force"]

    def read(self):
        try:
            proc = subprocess.run(
                self.command(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=TIMEOUT_S,
                universal_newlines=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SensorGone("xbutil: %s" % exc) from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
            raise SensorGone("xbutil exited %d: %s" % (proc.returncode, tail[0] if tail else ""))
        try:
            with open(self._out, "r") as fh:
                doc = json.load(fh)
        except (OSError, IOError, ValueError) as exc:
            raise SensorGone("xbutil wrote no readable JSON: %s" % exc) from exc
        power, temp, self.device_id = parse_report(doc, self.device)
        out = {}
        if power is not None:
            out["power"] = power
        if temp is not None:
            out["thermal"] = temp
        return out

    def describe(self):
        return "xbutil %s" % (self.device_id or self.device or "(only device)")

    def resolution(self, quantity):
        return 1e-6 if quantity == "power" else 1.0

    def info(self):
        return {"path": self.path, "device": self.device_id or self.device}

    def close(self):
        shutil.rmtree(self._dir, ignore_errors=True)
