"""FAKE ``pynvml`` (package nvidia-ml-py), for tests only: no GPU and no NVML exist here.

It follows nvidia-ml-py 13.x (pynvml.py) exactly as far as the agent's NVML reader uses it: the same
function names, arguments, return types and units, the same constants (``NVML_CLOCK_SM = 1``,
``NVML_CLOCK_MEM = 2``, ``NVML_TEMPERATURE_GPU = 0``, the clock event / throttle reason bits) and the same
errors: ``NVMLError(code)`` turns itself into the code's subclass (``NVMLError_NotSupported``, ...), the
subclasses are generated from the ``NVML_ERROR_*`` names as pynvml does (``NVML_ERROR_GPU_IS_LOST`` ->
``NVMLError_GpuIsLost``), ``str()`` is NVML's message ("Not Supported").

The devices' readings come from :data:`FAKE` (``fake_reset()`` restores the defaults):

* ``FAKE["now_s"]``: the time in seconds since the "driver loaded"; None follows the real clock from
  ``fake_reset()``. A test drives it to read at chosen instants.
* a device's power is scripted: ``power_steps`` [(from_s, watts)], piecewise constant, repeated every
  ``power_period_s`` when that is set; ``nvmlDeviceGetTotalEnergyConsumption`` returns its exact integral
  (mJ, truncated, as a counter does), so an energy over a window is known in closed form.
* ``temp_c``, ``sm_mhz``, ``mem_mhz``, ``reasons`` (the event reasons bitmask), ``power_limit_mw``,
  ``uuid``, ``serial``: what the device reports now.
* ``not_supported``: function names this device answers with ``NVMLError_NotSupported`` (e.g. the energy
  counter before Volta, the serial on a GeForce); ``FAKE["missing"]``: function names the NVML library
  lacks (an older driver: ``NVMLError_FunctionNotFound``); ``FAKE["init_error"]``: an ``NVML_ERROR_*``
  code nvmlInit fails with; ``FAKE["lost"]``: every device call raises ``NVMLError_GpuIsLost``.
"""

from __future__ import annotations

import string
import sys
import time

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3

nvmlClocksEventReasonGpuIdle = 0x0000000000000001
nvmlClocksEventReasonApplicationsClocksSetting = 0x0000000000000002
nvmlClocksEventReasonSwPowerCap = 0x0000000000000004
nvmlClocksEventReasonHwSlowdown = 0x0000000000000008
nvmlClocksEventReasonSyncBoost = 0x0000000000000010
nvmlClocksEventReasonSwThermalSlowdown = 0x0000000000000020
nvmlClocksEventReasonHwThermalSlowdown = 0x0000000000000040
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x0000000000000080
nvmlClocksEventReasonDisplayClockSetting = 0x0000000000000100
nvmlClocksEventReasonNone = 0x0000000000000000

nvmlClocksThrottleReasonGpuIdle = 0x0000000000000001
nvmlClocksThrottleReasonApplicationsClocksSetting = 0x0000000000000002
nvmlClocksThrottleReasonSwPowerCap = 0x0000000000000004
nvmlClocksThrottleReasonHwSlowdown = 0x0000000000000008
nvmlClocksThrottleReasonSyncBoost = 0x0000000000000010
nvmlClocksThrottleReasonSwThermalSlowdown = 0x0000000000000020
nvmlClocksThrottleReasonHwThermalSlowdown = 0x0000000000000040
nvmlClocksThrottleReasonHwPowerBrakeSlowdown = 0x0000000000000080
nvmlClocksThrottleReasonDisplayClockSetting = 0x0000000000000100
nvmlClocksThrottleReasonBoardLimit = 0x0000000000000200
nvmlClocksThrottleReasonReliability = 0x0000000000000400
nvmlClocksThrottleReasonNone = 0x0000000000000000


class NVMLError(Exception):
    _valClassMapping: dict = {}  # noqa: RUF012 - pynvml's own name and layout
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __new__(typ, value):
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self):
        return NVMLError._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other):
        return self.value == other.value


def _extract_errors_as_classes():
    """As pynvml's ``_extractNVMLErrorsAsClasses``: NVML_ERROR_NOT_SUPPORTED -> NVMLError_NotSupported."""
    this = sys.modules[__name__]
    for err_name in [x for x in dir(this) if x.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(err_name.replace("NVML_ERROR_", ""), "_").replace("_", "")
        err_val = getattr(this, err_name)

        def gen_new(val):
            def new(typ, *args):
                return NVMLError.__new__(typ, val)

            return new

        cls = type(class_name, (NVMLError,), {"__new__": gen_new(err_val)})
        cls.__module__ = __name__
        setattr(this, class_name, cls)
        NVMLError._valClassMapping[err_val] = cls


_extract_errors_as_classes()


# --------------------------------------------------------------------------- the fake devices


def fake_device(**overrides):
    """An NVIDIA A2 (Ampere, 60 W) at 35.125 W, 48 C, SM 1770 MHz, memory 6251 MHz, nothing limiting."""
    device = {
        "name": "NVIDIA A2",
        "uuid": "GPU-6f1f3e58-fake-4a4e-9d6c-0123456789ab",
        "serial": "1320000000001",
        "power_steps": [(0.0, 35.125)],
        "power_period_s": None,
        "power_limit_mw": 60000,
        "temp_c": 48,
        "sm_mhz": 1770,
        "mem_mhz": 6251,
        "reasons": 0,
        "not_supported": set(),
    }
    device.update(overrides)
    return device


def fake_reset():
    FAKE.clear()
    FAKE.update(
        {
            "devices": [fake_device()],
            "driver": "550.54.15",
            "cuda_driver": 12040,
            "init_error": None,
            "missing": set(),
            "lost": False,
            "init_count": 0,
            "now_s": None,
            "loaded_at": time.perf_counter(),
        }
    )


FAKE: dict = {}
fake_reset()


def fake_now():
    return FAKE["now_s"] if FAKE["now_s"] is not None else time.perf_counter() - FAKE["loaded_at"]


def _steps_energy(steps, t):
    """Joules of piecewise-constant ``steps`` from 0 to ``t``."""
    joules = 0.0
    for i, (start, watts) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else float("inf")
        if t <= start:
            break
        joules += watts * (min(t, end) - start)
    return joules


def fake_power_w(device, t):
    period = device["power_period_s"]
    if period:
        t = t % period
    return [w for start, w in device["power_steps"] if start <= t][-1]


def fake_energy_j(device, t):
    """The exact energy the scripted power gives from the driver's load to ``t`` (s)."""
    period = device["power_period_s"]
    if not period:
        return _steps_energy(device["power_steps"], t)
    whole, rest = divmod(t, period)
    return whole * _steps_energy(device["power_steps"], period) + _steps_energy(device["power_steps"], rest)


class _Handle:
    def __init__(self, index):
        self.index = index


def _ready(function):
    if FAKE["init_count"] <= 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    if function in FAKE["missing"]:
        raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)


def _device(handle, function):
    _ready(function)
    if FAKE["lost"]:
        raise NVMLError(NVML_ERROR_GPU_IS_LOST)
    device = FAKE["devices"][handle.index]
    if function in device["not_supported"]:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return device


# --------------------------------------------------------------------------- the API


def nvmlInit():
    if FAKE["init_error"] is not None:
        raise NVMLError(FAKE["init_error"])
    FAKE["init_count"] += 1


def nvmlShutdown():
    _ready("nvmlShutdown")
    FAKE["init_count"] -= 1


def nvmlSystemGetDriverVersion():
    _ready("nvmlSystemGetDriverVersion")
    return FAKE["driver"]


def nvmlSystemGetCudaDriverVersion():
    _ready("nvmlSystemGetCudaDriverVersion")
    return FAKE["cuda_driver"]


def nvmlDeviceGetCount():
    _ready("nvmlDeviceGetCount")
    return len(FAKE["devices"])


def nvmlDeviceGetHandleByIndex(index):
    _ready("nvmlDeviceGetHandleByIndex")
    if not 0 <= int(index) < len(FAKE["devices"]):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(int(index))


def nvmlDeviceGetName(handle):
    return _device(handle, "nvmlDeviceGetName")["name"]


def nvmlDeviceGetUUID(handle):
    return _device(handle, "nvmlDeviceGetUUID")["uuid"]


def nvmlDeviceGetSerial(handle):
    return _device(handle, "nvmlDeviceGetSerial")["serial"]


def nvmlDeviceGetEnforcedPowerLimit(handle):
    return int(_device(handle, "nvmlDeviceGetEnforcedPowerLimit")["power_limit_mw"])


def nvmlDeviceGetPowerManagementLimit(handle):
    return int(_device(handle, "nvmlDeviceGetPowerManagementLimit")["power_limit_mw"])


def nvmlDeviceGetPowerUsage(handle):
    """Milliwatts."""
    device = _device(handle, "nvmlDeviceGetPowerUsage")
    return int(round(fake_power_w(device, fake_now()) * 1000))


def nvmlDeviceGetTotalEnergyConsumption(handle):
    """Millijoules since the driver loaded."""
    device = _device(handle, "nvmlDeviceGetTotalEnergyConsumption")
    return int(fake_energy_j(device, fake_now()) * 1000)


def nvmlDeviceGetTemperature(handle, sensor):
    device = _device(handle, "nvmlDeviceGetTemperature")
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(device["temp_c"])


def nvmlDeviceGetClockInfo(handle, type):  # noqa: A002 - pynvml's argument name
    device = _device(handle, "nvmlDeviceGetClockInfo")
    if type in (NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM):
        return int(device["sm_mhz"])
    if type == NVML_CLOCK_MEM:
        if "mem_clock" in device["not_supported"]:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(device["mem_mhz"])
    if type == NVML_CLOCK_VIDEO:
        return int(device.get("video_mhz", 1305))
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


def nvmlDeviceGetCurrentClocksEventReasons(handle):
    return int(_device(handle, "nvmlDeviceGetCurrentClocksEventReasons")["reasons"])


def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
    return int(_device(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")["reasons"])
