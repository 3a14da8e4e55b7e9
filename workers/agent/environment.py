"""Facts about the machine the agent runs on. Every probe is best-effort: nothing here may fail a run."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys

AGENT_VERSION = "1"

_SERIAL_PATHS = ("/sys/class/dmi/id/product_serial", "/proc/device-tree/serial-number")


def _read(path):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except (OSError, IOError):
        return None
    text = data.replace(b"\x00", b"").decode("utf-8", "replace").strip()
    return text or None


def _cpuinfo():
    return _read("/proc/cpuinfo") or ""


def cpu_model(cpuinfo=None):
    """x86 ``model name``; on ARM boards ``Hardware``/``Model``, else the ``CPU part``; else platform."""
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    fields = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "hardware", "model", "cpu model", "processor"):
        value = fields.get(key)
        if value and not value.isdigit():
            return value
    if "cpu part" in fields:
        return "%s cpu part %s" % (fields.get("cpu implementer", "?"), fields["cpu part"])
    return platform.processor() or platform.machine() or None


#: The instruction-set features INT8 (and BF16) results depend on: ONNX Runtime's x86 U8S8 kernels sum
#: u8 x s8 pairs into a saturating int16 without VNNI (VPMADDUBSW) and exactly with it (VPDPBUSD); ARM
#: kernels use the dot-product (asimddp) and i8mm instructions when present.
ISA_FEATURES = (
    "sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "i8mm", "sve", "sve2", "bf16",
)  # fmt: skip


def cpu_isa(cpuinfo=None):
    """The :data:`ISA_FEATURES` the CPU reports (x86 ``flags``, ARM ``Features``), in that order."""
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            have = set(value.split())
            return [f for f in ISA_FEATURES if f in have]
    return []


def cpu_freq_mhz(cpuinfo=None):
    """Current frequency of cpu0 in MHz (cpufreq, then /proc/cpuinfo), or None."""
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    if khz:
        try:
            return round(int(khz) / 1000.0, 1)
        except ValueError:
            pass
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "cpu mhz":
            try:
                return round(float(value.strip()), 1)
            except ValueError:
                return None
    return None


def board_serial():
    for path in _SERIAL_PATHS:
        value = _read(path)
        if value:
            return value
    return None


def emulated_board(root):
    """``<root>/emu/board.json`` of an emulated board (written by ``farm lab up``), or {}."""
    text = _read(os.path.join(root, "emu", "board.json"))
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def ambient_from(path):
    """Degrees C from a sensor file (a plain number; hwmon millidegrees when over 1000), or None."""
    text = _read(path)
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return round(value / 1000.0, 2) if abs(value) > 1000 else value


def emulated_state(root):
    """``<root>/emu/state.json`` (the board simulator's state: ambient_c, clock_mhz, ...), or {}."""
    try:
        doc = json.loads(_read(os.path.join(root, "emu", "state.json")) or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def loadgen_package_version():
    """The installed mlcommons-loadgen version, or None."""
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - python < 3.8
        return None
    for dist in ("mlcommons-loadgen", "mlcommons_loadgen", "mlperf-loadgen", "mlperf_loadgen"):
        try:
            return metadata.version(dist)
        except Exception:
            continue
    return None


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def collect(backend=None, loadgen_version=None, emulation=None):
    """The ``environment`` record of the agent's output.

    ``emulation`` is the config's ``{"root", "time_scale"}`` on an emulated board: its serial and DPU
    fingerprint then come from ``<root>/emu/board.json``. A real board's DPU fingerprint comes from the
    backend (vart_dpu asks ``xdputil query``)."""
    try:
        import numpy

        numpy_version = numpy.__version__
    except Exception:
        numpy_version = None
    info = _cpuinfo()
    env = {
        "hostname": _safe(socket.gethostname),
        "kernel": _safe(platform.release),
        "machine": _safe(platform.machine),
        "cpu_model": _safe(lambda: cpu_model(info)),
        "cpu_isa": _safe(lambda: cpu_isa(info), []),
        "cpu_count": _safe(os.cpu_count),
        "cpu_freq_mhz": _safe(lambda: cpu_freq_mhz(info)),
        "python": sys.version.split()[0],
        "numpy": numpy_version,
        "runtime": None,
        "runtime_version": None,
        "runtime_providers": [],
        "loadgen_version": loadgen_version or _safe(loadgen_package_version),
        "board_serial": _safe(board_serial),
        "dpu_fingerprint": None,
        "agent_version": AGENT_VERSION,
        "load_avg": _safe(lambda: [round(x, 2) for x in os.getloadavg()], []),
    }
    if backend is not None:
        versions = _safe(backend.versions, {}) or {}
        env.update(versions)
    if emulation and emulation.get("root"):
        board = _safe(lambda: emulated_board(emulation["root"]), {}) or {}
        env["emulated"] = True
        env["emulated_board"] = board.get("board")
        env["emulated_type"] = board.get("type")
        env["board_serial"] = board.get("serial")
        env["dpu_fingerprint"] = board.get("dpu_fingerprint")
        env["time_scale"] = emulation.get("time_scale")
        state = _safe(lambda: emulated_state(emulation["root"]), {}) or {}
        ambient = _safe(lambda: ambient_from(os.path.join(emulation["root"], "emu", "ambient_c")))
        env["ambient_c"] = ambient if ambient is not None else state.get("ambient_c")
        # the clock an operator set (`farm lab set BOARD clock_mhz=N`) is the board's configured clock, as
        # a real board reports its DPU's; absent, the farm records the catalog's nominal clock
        clock_set = _safe(lambda: float(_read(os.path.join(emulation["root"], "emu", "clock_set_mhz"))))
        if clock_set is not None and clock_set > 0:
            env["accelerator_clock_mhz"] = clock_set
    return env
