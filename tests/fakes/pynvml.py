"""FAKE ``pynvml`` (package nvidia-ml-py), for tests only.

The functions and constants the agent uses, with NVML's units and behaviour: ``nvmlInit`` /
``nvmlShutdown`` (reference counted; calls before init raise ``NVMLError_Uninitialized``),
``nvmlDeviceGetCount``, ``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetName`` (str, as nvidia-ml-py
>= 11.515 returns), ``nvmlDeviceGetPowerUsage`` (milliwatts), ``nvmlDeviceGetTemperature`` (C, with
``NVML_TEMPERATURE_GPU``), ``nvmlDeviceGetClockInfo`` (MHz, with ``NVML_CLOCK_SM``),
``nvmlSystemGetDriverVersion``.

Readings come from :data:`FAKE`; ``FAKE["lost"] = True`` makes every device call raise
``NVMLError_GPUIsLost`` (NVML_ERROR_GPU_IS_LOST), as when a GPU falls off the bus.
"""

from __future__ import annotations

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_GPU_IS_LOST = 15
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
}


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return _MESSAGES.get(self.value, "Unknown Error")


class NVMLError_Uninitialized(NVMLError):  # noqa: N801 - the real names
    def __init__(self):
        super().__init__(NVML_ERROR_UNINITIALIZED)


class NVMLError_InvalidArgument(NVMLError):  # noqa: N801
    def __init__(self):
        super().__init__(NVML_ERROR_INVALID_ARGUMENT)


class NVMLError_GPUIsLost(NVMLError):  # noqa: N801
    def __init__(self):
        super().__init__(NVML_ERROR_GPU_IS_LOST)


def fake_reset():
    FAKE.clear()
    FAKE.update(
        {
            "devices": [{"name": "FAKE NVIDIA A2", "power_mw": 35125, "temp_c": 48, "sm_mhz": 1770}],
            "driver": "550.54.15-fake",
            "lost": False,
            "init_count": 0,
        }
    )


FAKE = {}
fake_reset()


class _Handle:
    def __init__(self, index):
        self.index = index


def _ready():
    if FAKE["init_count"] <= 0:
        raise NVMLError_Uninitialized()


def _device(handle):
    _ready()
    if FAKE["lost"]:
        raise NVMLError_GPUIsLost()
    return FAKE["devices"][handle.index]


def nvmlInit():
    FAKE["init_count"] += 1


def nvmlShutdown():
    _ready()
    FAKE["init_count"] -= 1


def nvmlDeviceGetCount():
    _ready()
    return len(FAKE["devices"])


def nvmlDeviceGetHandleByIndex(index):
    _ready()
    if not 0 <= int(index) < len(FAKE["devices"]):
        raise NVMLError_InvalidArgument()
    return _Handle(int(index))


def nvmlDeviceGetName(handle):
    return _device(handle)["name"]


def nvmlDeviceGetPowerUsage(handle):
    return int(_device(handle)["power_mw"])


def nvmlDeviceGetTemperature(handle, sensor):
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError_InvalidArgument()
    return int(_device(handle)["temp_c"])


def nvmlDeviceGetClockInfo(handle, clock_type):
    if clock_type not in (NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM):
        raise NVMLError_InvalidArgument()
    return int(_device(handle)["sm_mhz"])


def nvmlSystemGetDriverVersion():
    _ready()
    return FAKE["driver"]
