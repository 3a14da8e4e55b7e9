"""NVIDIA GPUs through NVML (``pynvml``, package nvidia-ml-py): board power
(``nvmlDeviceGetPowerUsage``, milliwatts), GPU die temperature (``nvmlDeviceGetTemperature`` with
``NVML_TEMPERATURE_GPU``, degrees C) and the SM clock (``nvmlDeviceGetClockInfo`` with ``NVML_CLOCK_SM``,
MHz). NVML refreshes power about every 20-100 ms depending on the GPU; faster sampling repeats values."""

from __future__ import annotations

import contextlib

from .base import Sensor, SensorError, SensorGone


class Nvml(Sensor):
    kind = "nvml"
    quantities = ("power", "thermal", "clock")

    def __init__(self, entry):
        super(Nvml, self).__init__(entry)
        try:
            import pynvml
        except ImportError as exc:
            raise SensorError("pynvml (pip: nvidia-ml-py) is not installed: %s" % exc) from exc
        self.nvml = pynvml
        self.index = int(entry.get("index") or 0)
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise SensorError("nvmlInit failed: %s" % exc) from exc
        try:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            name = pynvml.nvmlDeviceGetName(self.handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise SensorError("NVML device %d: %s" % (self.index, exc)) from exc
        self._open = True
        try:
            self.read()
        except SensorGone as exc:
            self.close()
            raise SensorError(str(exc)) from exc

    def read(self):
        nv = self.nvml
        try:
            return {
                "power": nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0,
                "thermal": float(nv.nvmlDeviceGetTemperature(self.handle, nv.NVML_TEMPERATURE_GPU)),
                "clock": float(nv.nvmlDeviceGetClockInfo(self.handle, nv.NVML_CLOCK_SM)),
            }
        except nv.NVMLError as exc:
            raise SensorGone("NVML device %d: %s" % (self.index, exc)) from exc

    def describe(self):
        return "nvml %d (%s)" % (self.index, self.name)

    def resolution(self, quantity):
        return {"power": 0.001, "thermal": 1.0, "clock": 1.0}.get(quantity)

    def info(self):
        return {"index": self.index, "name": self.name}

    def close(self):
        if getattr(self, "_open", False):
            self._open = False
            with contextlib.suppress(self.nvml.NVMLError):
                self.nvml.nvmlShutdown()
