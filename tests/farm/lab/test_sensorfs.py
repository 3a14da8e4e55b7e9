"""Emulated sensor files (farm/lab/physics/sensorfs.py) and the emulated xbutil: layout, units, atomic updates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from farm.config import REPO_ROOT
from farm.lab.physics.boardsim import load_catalog
from farm.lab.physics.sensorfs import SensorFs, SensorState, read_state

CATALOG = load_catalog(REPO_ROOT / "inventory")
STATE = SensorState(
    power_w=21.0, temp_c=55.5, clock_mhz=300.0, utilisation=1.0, static_w=9.0, ambient_c=25.0, time_scale=0.01
)


def _lay_out(root: Path, type_name: str, state: SensorState = STATE) -> SensorFs:
    fs = SensorFs(root, CATALOG[type_name], type_name).layout()
    fs.write(state)
    return fs


def _read(path: Path) -> str:
    return path.read_text().strip()


def test_ina226_and_temperature_hwmon_units(tmp_path: Path):
    root = tmp_path / "zcu104"
    _lay_out(root, "zcu104")  # sensors: [hwmon:ina226, hwmon-temp:zynqmp_ams]
    ina = root / "sys/class/hwmon/hwmon0"
    assert _read(ina / "name") == "ina226"
    assert int(_read(ina / "power1_input")) == 21_000_000  # uW
    assert int(_read(ina / "in1_input")) == 12_000  # bus mV
    assert int(_read(ina / "curr1_input")) == 1750  # mA: 21 W / 12 V
    assert int(_read(ina / "update_interval")) == 100  # ms
    temp = root / "sys/class/hwmon/hwmon1"
    assert _read(temp / "name") == "zynqmp_ams"
    assert int(_read(temp / "temp1_input")) == 55_500  # millidegree C
    assert float(_read(root / "emu/clock_mhz")) == 300.0
    assert read_state(root) == STATE
    # every file is replaced atomically: nothing half-written or temporary is left behind
    assert not [p for p in root.rglob(".*.tmp")]


def test_ina260_kv260_and_versal_sysmon(tmp_path: Path):
    _lay_out(tmp_path / "kv260", "kv260")
    assert _read(tmp_path / "kv260/sys/class/hwmon/hwmon0/name") == "ina260"
    _lay_out(tmp_path / "vck190", "vck190")
    assert _read(tmp_path / "vck190/sys/class/hwmon/hwmon1/name") == "versal_sysmon"


def test_ina3221_channels_sum_to_board_power(tmp_path: Path):
    root = tmp_path / "jetson"
    _lay_out(root, "jetson-agx-xavier")  # sensors: [hwmon:ina3221, thermal_zone]
    hw = root / "sys/class/hwmon/hwmon0"
    assert _read(hw / "name") == "ina3221"
    labels = [_read(hw / f"in{i}_label") for i in (1, 2, 3)]
    assert labels == ["GPU", "CPU", "SOC"]
    watts = sum(int(_read(hw / f"in{i}_input")) * int(_read(hw / f"curr{i}_input")) / 1e6 for i in (1, 2, 3))
    assert watts == pytest.approx(21.0, abs=0.01)  # sum of V x I (mV x mA)
    zone = root / "sys/class/thermal/thermal_zone0"
    assert _read(zone / "type") == "GPU-therm"
    assert int(_read(zone / "temp")) == 55_500


def test_thermal_zone_only_board(tmp_path: Path):
    root = tmp_path / "pynq"
    _lay_out(root, "pynq-z2")  # no INA: power is only in the simulator's state
    assert not (root / "sys/class/hwmon").exists()
    assert int(_read(root / "sys/class/thermal/thermal_zone0/temp")) == 55_500


def test_specs_without_files_are_skipped(tmp_path: Path):
    fs = SensorFs(tmp_path / "cpu", CATALOG["cpu"], "cpu").layout()
    assert fs.skipped == ["rapl"]


def _xbutil(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(root / "opt/xilinx/xrt/bin/xbutil"), *args], capture_output=True, text=True, timeout=30
    )


def test_xbutil_examine_writes_xrt_json(tmp_path: Path):
    root = tmp_path / "u50"
    state = SensorState(
        power_w=40.0, temp_c=66.4, clock_mhz=300.0, utilisation=0.65, static_w=18.0, ambient_c=30.0
    )
    _lay_out(root, "u50", state)
    script = root / "opt/xilinx/xrt/bin/xbutil"
    assert script.stat().st_mode & 0o111 and script.read_text().startswith(f"#!{sys.executable}\n")
    out = tmp_path / "xb.json"
    proc = _xbutil(
        root,
        "examine",
        "-d",
        "0000:3b:00.1",
        "-r",
        "electrical",
        "thermal",
        "-f",
        "JSON",
        "-o",
        str(out),
        "--force",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["schema_version"]["schema"] == "JSON"
    (device,) = doc["devices"]
    assert device["interface_type"] == "pcie" and device["device_id"] == "0000:3b:00.1"
    electrical = device["electrical"]
    # XRT writes every value as a string (boost::property_tree): watts with 6 decimals, V and A with 3
    assert electrical["power_consumption_watts"] == "40.000000"
    assert electrical["power_consumption_max_watts"] == "75"
    assert electrical["power_consumption_warning"] == "false"
    rails = {r["id"]: r for r in electrical["power_rails"]}
    assert set(rails["12v_pex"]) == {"id", "description", "voltage", "current"}
    assert rails["12v_aux"]["voltage"]["is_present"] == "false"  # a U50 has no aux connector
    slot_w = sum(
        float(rails[r]["voltage"]["volts"]) * float(rails[r]["current"]["amps"])
        for r in ("12v_pex", "3v3_pex")
    )
    assert slot_w == pytest.approx(40.0, rel=0.005)
    thermals = {t["location_id"]: t for t in device["thermals"]}
    assert thermals["fpga0"] == {
        "location_id": "fpga0",
        "description": "FPGA",
        "temp_C": "66",
        "is_present": "true",
    }
    assert thermals["cage_temp_1"]["is_present"] == "false"
    # the BDF may omit the domain; --force is needed to overwrite; an unknown device or report is an error
    assert (
        _xbutil(
            root, "examine", "-d", "3b:00.1", "-r", "thermal", "-f", "JSON", "-o", str(out), "--force"
        ).returncode
        == 0
    )
    assert "thermals" in json.loads(out.read_text())["devices"][0]
    again = _xbutil(root, "examine", "-r", "electrical", "-f", "JSON", "-o", str(out))
    assert again.returncode != 0 and "--force" in again.stderr
    wrong = _xbutil(
        root, "examine", "-d", "0000:af:00.1", "-r", "electrical", "-f", "JSON", "-o", str(out), "--force"
    )
    assert wrong.returncode != 0 and "not found" in wrong.stderr
    assert _xbutil(root, "examine", "-r", "memory").returncode != 0


def test_xbutil_without_a_simulator_finds_no_device(tmp_path: Path):
    root = tmp_path / "u50"
    SensorFs(root, CATALOG["u50"], "u50").layout()  # laid out, never written
    proc = _xbutil(root, "examine", "-r", "electrical", "-f", "JSON", "-o", str(tmp_path / "x.json"))
    assert proc.returncode != 0 and "No devices found" in proc.stderr
