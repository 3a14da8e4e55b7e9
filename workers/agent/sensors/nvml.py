"""NVIDIA GPUs through NVML (``pynvml``, package nvidia-ml-py).

Each reading takes, in one go:

* ``energy_j``: the GPU's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since
  the driver loaded; Volta and newer), as joules since the reader opened. The sampler takes the measured
  window's energy from it (the counter's difference across the window, sensors/sampler.py), so the energy
  is integrated by the GPU, not sampled. A GPU without it (``NVMLError_NotSupported``) falls back to mean
  sampled power x window, and the reader's ``info()["unsupported"]`` says why.
* ``power``: board power (``nvmlDeviceGetPowerUsage``, mW). On Ampere and newer GPUs other than GA100
  (A100) NVML returns power averaged over about 1 s, older ones an instantaneous value: the trace and
  ``peak_w`` are what NVML says, the energy comes from the counter where there is one.
* ``thermal``: the GPU die temperature (``nvmlDeviceGetTemperature``, ``NVML_TEMPERATURE_GPU``, C).
* ``clock``: the SM clock; ``mem_clock``: the memory clock (``nvmlDeviceGetClockInfo`` with
  ``NVML_CLOCK_SM`` / ``NVML_CLOCK_MEM``, MHz).
* ``throttle``: the clock event reasons bitmask (``nvmlDeviceGetCurrentClocksEventReasons``, named
  ``...ThrottleReasons`` before driver 535 / nvidia-ml-py 12.535); :meth:`Nvml.window_figures` turns it
  into the names seen in the window (protocol.GPU_CLOCK_EVENT_REASONS), which the farm flags.

Power, temperature and the SM clock are required (a GPU without them is a :class:`SensorError`); the
counter, memory clock, event reasons, serial, UUID and power limit are optional: a GPU, driver or pynvml
without one records None and the reason (``info()["unsupported"]``). NVML refreshes power about every
20-100 ms depending on the GPU; faster sampling repeats values.
"""

from __future__ import annotations

import contextlib

import protocol

from .base import Sensor, SensorError, SensorGone

#: What nvmlInit's failures usually mean on a board, by NVML error name (pynvml's NVML_ERROR_*).
_INIT_HINTS = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": "libnvidia-ml.so.1 was not found: no NVIDIA driver on this host",
    "NVML_ERROR_DRIVER_NOT_LOADED": "the NVIDIA kernel driver is not loaded (nvidia-smi says the same)",
    "NVML_ERROR_NO_PERMISSION": "the agent's user may not open /dev/nvidia*",
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": "NVML and the kernel driver differ (driver upgraded: reboot)",
}


def _text(value):
    """pynvml's strings: str (nvidia-ml-py >= 11.515) or bytes (older)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_version(value):
    """``nvmlSystemGetCudaDriverVersion``'s integer (1000 x major + 10 x minor) as "12.4"."""
    value = int(value)
    return "%d.%d" % (value // 1000, (value % 1000) // 10)


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
        #: optional facts this GPU / driver / pynvml does not give: what -> why
        self.unsupported = {}
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise SensorError("nvmlInit failed: %s%s" % (exc, self._hint(exc))) from exc
        self._open = True
        try:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.name = _text(pynvml.nvmlDeviceGetName(self.handle))
        except pynvml.NVMLError as exc:
            count = self._optional(None, "nvmlDeviceGetCount")
            self.close()
            there = " (this host has %d GPU(s))" % count if count is not None else ""
            raise SensorError("NVML device %d: %s%s" % (self.index, exc, there)) from exc
        self.provenance = self._provenance()
        self._energy_fn, self._energy0 = self._counter()
        self._mem_clock = (
            self._optional("mem_clock", "nvmlDeviceGetClockInfo", pynvml.NVML_CLOCK_MEM) is not None
        )
        self._reasons_fn, self.reasons_api = self._reasons()
        try:
            self.read()
        except SensorGone as exc:
            self.close()
            raise SensorError(str(exc)) from exc

    # ------------------------------------------------------------------ opening

    def _hint(self, exc):
        for name, hint in _INIT_HINTS.items():
            if getattr(exc, "value", None) == getattr(self.nvml, name, object()):
                return " (%s)" % hint
        return ""

    def _optional(self, what, function, *args):
        """``pynvml.<function>(handle, *args)`` (no handle for ``nvmlSystem*`` / ``nvmlDeviceGetCount``), or
        None with the reason in :attr:`unsupported` under ``what`` (when given)."""
        fn = getattr(self.nvml, function, None)
        try:
            if fn is None:
                raise AttributeError("not in this pynvml")
            if function.startswith("nvmlSystem") or function == "nvmlDeviceGetCount":
                return fn(*args)
            return fn(self.handle, *args)
        except (self.nvml.NVMLError, AttributeError) as exc:
            if what:
                self.unsupported[what] = "%s: %s" % (function, exc)
            return None

    def _provenance(self):
        limit_mw = self._optional("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit")
        if limit_mw is None:
            limit_mw = self._optional("power_limit_w", "nvmlDeviceGetPowerManagementLimit")
            if limit_mw is not None:
                del self.unsupported["power_limit_w"]
        driver = self._optional("driver_version", "nvmlSystemGetDriverVersion")
        cuda = self._optional("cuda_driver_version", "nvmlSystemGetCudaDriverVersion")
        uuid = self._optional("uuid", "nvmlDeviceGetUUID")
        serial = self._optional("serial", "nvmlDeviceGetSerial")
        return {
            "uuid": _text(uuid) if uuid is not None else None,
            "serial": _text(serial) if serial is not None else None,
            "driver_version": _text(driver) if driver is not None else None,
            "cuda_driver_version": cuda_version(cuda) if cuda is not None else None,
            "power_limit_w": limit_mw / 1000.0 if limit_mw is not None else None,
        }

    def _counter(self):
        """The total-energy counter's function and its value now (mJ), or (None, None) without one."""
        start = self._optional("energy_counter", "nvmlDeviceGetTotalEnergyConsumption")
        if start is None:
            self.unsupported["energy_counter"] += " (energy from sampled power)"
            return None, None
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption, int(start)

    def _reasons(self):
        """The clock event reasons function (the newer name first) and its name, or (None, None)."""
        tried = []
        for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            if self._optional("throttle_reasons", name) is not None:
                self.unsupported.pop("throttle_reasons", None)
                return getattr(self.nvml, name), name
            tried.append(self.unsupported.pop("throttle_reasons"))
        self.unsupported["throttle_reasons"] = "; ".join(tried)
        return None, None

    # ------------------------------------------------------------------ reading

    def read(self):
        nv = self.nvml
        handle = self.handle
        try:
            out = {}
            if self._energy_fn is not None:
                out["energy_j"] = (int(self._energy_fn(handle)) - self._energy0) / 1000.0
            out["power"] = nv.nvmlDeviceGetPowerUsage(handle) / 1000.0
            out["thermal"] = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
            out["clock"] = float(nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_SM))
            if self._mem_clock:
                out["mem_clock"] = float(nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_MEM))
            if self._reasons_fn is not None:
                out["throttle"] = int(self._reasons_fn(handle))
        except nv.NVMLError as exc:
            raise SensorGone("NVML device %d: %s" % (self.index, exc)) from exc
        return out

    def window_figures(self, quantity, samples):
        """On the clock object: the memory clock's range and the clock event reasons seen in the window
        (``throttle_reasons``, in bit order; ``throttle_samples``: how many samples had each)."""
        if quantity != "clock":
            return {}
        mem = [v["mem_clock"] for _, v in samples if v.get("mem_clock") is not None]
        out = {"mem_min_mhz": min(mem) if mem else None, "mem_max_mhz": max(mem) if mem else None}
        if self._reasons_fn is None:
            out["throttle_reasons"] = out["throttle_samples"] = None
            return out
        counts = {}
        known = 0
        for bit, _, _ in protocol.GPU_CLOCK_EVENT_REASONS:
            known |= bit
        for _, values in samples:
            mask = values.get("throttle")
            if mask is None:
                continue
            names = [name for bit, name, _ in protocol.GPU_CLOCK_EVENT_REASONS if mask & bit]
            names += ["0x%x" % (1 << i) for i in range(64) if mask & ~known & (1 << i)]
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        order = [name for _, name, _ in protocol.GPU_CLOCK_EVENT_REASONS]
        out["throttle_reasons"] = sorted(counts, key=lambda n: (order.index(n) if n in order else 99, n))
        out["throttle_samples"] = counts
        return out

    # ------------------------------------------------------------------ the rest

    def describe(self):
        return "nvml %d (%s)" % (self.index, self.name)

    def resolution(self, quantity):
        return {"power": 0.001, "thermal": 1.0, "clock": 1.0}.get(quantity)

    def info(self):
        out = {"index": self.index, "name": self.name}
        out.update(self.provenance)
        out["energy"] = "counter" if self._energy_fn is not None else "sampled"
        out["throttle_reasons_api"] = self.reasons_api
        if self.unsupported:
            out["unsupported"] = dict(self.unsupported)
        return out

    def close(self):
        if getattr(self, "_open", False):
            self._open = False
            with contextlib.suppress(self.nvml.NVMLError):
                self.nvml.nvmlShutdown()
