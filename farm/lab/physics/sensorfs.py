"""The emulated sensor files under a board's root, laid out exactly as the real ones (docs/virtual-lab.md s4).

A board's root is a tree laid out like ``/``; the agent's REAL sensor readers read it (root "/" on a real
board). For each sensor spec of the board type's catalog entry:

==========================  =========================================================================
``hwmon:ina219|ina226|ina260``  ``sys/class/hwmon/hwmonN/``: ``name`` (the chip), ``power1_input`` (uW),
                            ``curr1_input`` (mA), ``in1_input`` (bus mV), ``in0_input`` (shunt mV),
                            ``shunt_resistor`` (uOhm), ``update_interval`` (ms)
``hwmon:ina3221``           ``sys/class/hwmon/hwmonN/``: ``name``, ``in[1-3]_input`` (bus mV),
                            ``curr[1-3]_input`` (mA), ``in[1-3]_label``, ``in[1-3]_enable``,
                            ``in[4-6]_input`` (shunt mV), ``update_interval`` (ms)
``hwmon-temp:<chip>``       ``sys/class/hwmon/hwmonN/``: ``name``, ``temp1_input`` (millidegree C)
``thermal_zone``            ``sys/class/thermal/thermal_zone0/``: ``type``, ``temp`` (millidegree C)
``meter``                   ``var/lib/farm/power_meter_w``: board power in W (an external meter's logger)
``xbutil``                  ``opt/xilinx/xrt/bin/xbutil``: answers ``xbutil examine -d BDF -r electrical
                            thermal -f JSON -o FILE --force`` with XRT's JSON (:mod:`farm.lab.physics.xbutil_emu`)
==========================  =========================================================================

``nvml`` and ``rapl`` are not files the simulator can stand in for (NVML is a library; RAPL is the
machine's own counter), so they are listed in :attr:`SensorFs.skipped`.

Every value file is replaced atomically (written to a temporary name in the same folder, then renamed),
so a reader never sees a half-written number. Besides the sensors, the simulator's state goes to
``emu/clock_mhz`` (contract s3) and ``emu/state.json`` (read by the emulated xbutil and ``farm lab status``).
The simulator reads ``emu/clock_set_mhz`` and ``emu/ambient_c`` (``farm lab set``) when they exist.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from farm.inventory import BoardType

HWMON_DIR = "sys/class/hwmon"
THERMAL_DIR = "sys/class/thermal"
XBUTIL_PATH = "opt/xilinx/xrt/bin/xbutil"
EMU_DIR = "emu"
STATE_FILE = "emu/state.json"
CLOCK_FILE = "emu/clock_mhz"
#: Operator settings (`farm lab set`), re-read by the simulator every tick; absent: the catalog's values.
CLOCK_SET_FILE = "emu/clock_set_mhz"
AMBIENT_FILE = "emu/ambient_c"
LOAD_FILE = "emu/load"
BOARD_FILE = "emu/board.json"

INA2XX = ("ina219", "ina226", "ina260")
#: Bus voltage the board's power monitor sits on (the 12 V barrel/ATX input of the eval boards).
SUPPLY_MV = 12000
SHUNT_UOHM = 2000  # 2 mOhm, the usual shunt on these boards (the INA260's is built in)
#: Jetson AGX Xavier's INA3221 channels (rails named as in its hwmon labels); share of static/dynamic power.
INA3221_RAILS = (("GPU", 0.15, 0.80), ("CPU", 0.35, 0.12), ("SOC", 0.50, 0.08))
INA3221_RAIL_MV = 5000
THERMAL_ZONE_TYPES = {"pynq-z2": "xadc-thermal", "jetson-agx-xavier": "GPU-therm"}
#: The emulated Alveo's PCIe address (a U50's user function as lspci shows it).
XRT_BDF = "0000:3b:00.1"
METER_PATH = "/var/lib/farm/power_meter_w"  # protocol.SENSOR_KINDS "meter": the agent reads it there


@dataclass(frozen=True)
class SensorState:
    """What the sensors show at one instant (the simulator's state)."""

    power_w: float
    temp_c: float
    clock_mhz: float
    utilisation: float = 0.0
    static_w: float = 0.0  # how power_w splits (rails that carry mostly static or dynamic power)
    throttled: bool = False
    ambient_c: float = 25.0
    t_s: float = 0.0  # emulated seconds since the simulator started
    wall_time: float = 0.0  # time.time() of this update
    time_scale: float = 1.0
    clock_set_mhz: float | None = None  # the accelerator clock set by `farm lab set` (None: nominal)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _int(value: float) -> str:
    return f"{round(value)}\n"


class SensorFs:
    """The sensor tree of one emulated board: :meth:`layout` once, then :meth:`write` on every tick."""

    def __init__(
        self, root: Path | str, board_type: BoardType, type_name: str = "", update_interval_ms: int = 100
    ) -> None:
        self.root = Path(root)
        self.board_type = board_type
        self.type_name = type_name
        self.update_interval_ms = int(update_interval_ms)
        self.skipped: list[str] = []
        self._writers: list = []
        self._planned = False
        self._last: dict[Path, str] = {}  # what each value file holds: unchanged values are not rewritten

    # ------------------------------------------------------------------ layout
    def layout(self, python: str = sys.executable) -> SensorFs:
        """Create the folders and the files that do not change (names, labels, intervals, the xbutil
        script). Idempotent. ``python`` is the interpreter the emulated xbutil runs with."""
        (self.root / EMU_DIR).mkdir(parents=True, exist_ok=True)
        self._plan(create=True, python=python)
        return self

    def _plan(self, create: bool, python: str = sys.executable) -> None:
        self._writers = []
        self.skipped = []
        hwmon = 0
        for spec in self.board_type.sensors:
            kind, _, chip = spec.partition(":")
            if kind == "hwmon" and chip in INA2XX:
                self._writers.append(self._ina2xx(self._hwmon(hwmon, chip, create), chip))
                hwmon += 1
            elif kind == "hwmon" and chip == "ina3221":
                self._writers.append(self._ina3221(self._hwmon(hwmon, chip, create), create))
                hwmon += 1
            elif kind == "hwmon-temp" and chip:
                self._writers.append(self._hwmon_temp(self._hwmon(hwmon, chip, create)))
                hwmon += 1
            elif kind == "thermal_zone":
                self._writers.append(self._thermal_zone(0, create))
            elif kind == "meter":
                self._writers.append(self._meter(create))
            elif kind == "xbutil":
                if create:
                    self._xbutil(python)
            else:
                self.skipped.append(spec)
        self._planned = True

    def _hwmon(self, index: int, chip: str, create: bool) -> Path:
        path = self.root / HWMON_DIR / f"hwmon{index}"
        if create:
            path.mkdir(parents=True, exist_ok=True)
            write_atomic(path / "name", f"{chip}\n")
            write_atomic(path / "update_interval", f"{self.update_interval_ms}\n")
        return path

    def _ina2xx(self, path: Path, chip: str):
        if not (path / "shunt_resistor").exists():
            write_atomic(path / "shunt_resistor", f"{SHUNT_UOHM}\n")

        def write(state: SensorState) -> None:
            bus_mv = SUPPLY_MV
            current_ma = state.power_w / (bus_mv / 1000.0) * 1000.0
            self._put(path / "in1_input", _int(bus_mv))
            self._put(path / "in0_input", f"{current_ma / 1000.0 * SHUNT_UOHM / 1000.0:.3f}\n")
            self._put(path / "curr1_input", _int(current_ma))
            self._put(path / "power1_input", _int(state.power_w * 1e6))

        return write

    def _ina3221(self, path: Path, create: bool):
        if create:
            for i, (label, _, _) in enumerate(INA3221_RAILS, start=1):
                write_atomic(path / f"in{i}_label", f"{label}\n")
                write_atomic(path / f"in{i}_enable", "1\n")
                write_atomic(path / f"shunt{i}_resistor", f"{SHUNT_UOHM}\n")

        def write(state: SensorState) -> None:
            static = min(state.static_w, state.power_w)
            dynamic = state.power_w - static
            for i, (_, static_share, dynamic_share) in enumerate(INA3221_RAILS, start=1):
                rail_w = static * static_share + dynamic * dynamic_share
                current_ma = rail_w / (INA3221_RAIL_MV / 1000.0) * 1000.0
                self._put(path / f"in{i}_input", _int(INA3221_RAIL_MV))
                self._put(path / f"curr{i}_input", _int(current_ma))
                self._put(path / f"in{i + 3}_input", _int(current_ma / 1000.0 * SHUNT_UOHM / 1000.0))

        return write

    def _hwmon_temp(self, path: Path):
        def write(state: SensorState) -> None:
            self._put(path / "temp1_input", _int(state.temp_c * 1000.0))

        return write

    def _thermal_zone(self, zone: int, create: bool):
        path = self.root / THERMAL_DIR / f"thermal_zone{zone}"
        if create:
            path.mkdir(parents=True, exist_ok=True)
            kind = THERMAL_ZONE_TYPES.get(self.type_name, "soc-thermal")
            write_atomic(path / "type", f"{kind}\n")

        def write(state: SensorState) -> None:
            self._put(path / "temp", _int(state.temp_c * 1000.0))

        return write

    def _meter(self, create: bool):
        """An external power meter on the board's supply (what a PYNQ-Z2 without an INA needs), logged by
        the operator's logger as one number in W: here the board-level power of the simulator."""
        path = self.root / METER_PATH.lstrip("/")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)

        def write(state: SensorState) -> None:
            self._put(path, f"{state.power_w:.4f}\n")

        return write

    def _xbutil(self, python: str) -> None:
        path = self.root / XBUTIL_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        source = resources.files("farm.lab.physics").joinpath("xbutil_emu.py").read_text()
        body = source.split("\n", 1)[1] if source.startswith("#!") else source
        write_atomic(path, f"#!{python}\n{body}")
        path.chmod(0o755)

    # ------------------------------------------------------------------ updates
    def write(self, state: SensorState) -> None:
        """Write every sensor file, the clock and the state file for this instant."""
        if not self._planned:
            self._plan(create=False)
        for writer in self._writers:
            writer(state)
        self._put(self.root / CLOCK_FILE, f"{state.clock_mhz:.3f}\n")
        write_atomic(self.root / STATE_FILE, json.dumps(asdict(state)) + "\n")

    def _put(self, path: Path, text: str) -> None:
        if self._last.get(path) != text:
            write_atomic(path, text)
            self._last[path] = text


def read_state(root: Path | str) -> SensorState | None:
    """The last state a simulator wrote under this root (None if none yet)."""
    try:
        data = json.loads((Path(root) / STATE_FILE).read_text())
        return SensorState(**data)
    except (OSError, ValueError, TypeError):
        return None


def read_load(root: Path | str) -> float:
    """The utilisation the emulated backend wrote (``emu/load``; 0 when missing or unreadable)."""
    try:
        return float((Path(root) / LOAD_FILE).read_text().strip() or 0.0)
    except (OSError, ValueError):
        return 0.0


def read_setting(root: Path | str, name: str) -> float | None:
    """An operator setting under the root (:data:`CLOCK_SET_FILE`, :data:`AMBIENT_FILE`); None when absent
    or not a finite number (the simulator then uses the catalog's value)."""
    try:
        value = float((Path(root) / name).read_text().strip())
    except (OSError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None
