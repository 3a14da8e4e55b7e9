"""hwmon and thermal-zone readers against sysfs-like trees laid out as on a board (hwmon ABI units)."""

from __future__ import annotations

import pytest

from tests.workers.agent import agent_modules


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        yield ns


def hwmon(root, index, name, **files):
    d = root / "sys" / "class" / "hwmon" / f"hwmon{index}"
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    for key, value in files.items():
        (d / key).write_text(f"{value}\n")
    return d


def test_ina226_power_in_microwatts(agent, tmp_path):
    hwmon(tmp_path, 0, "zynqmp_ams", temp1_input=45123)
    d = hwmon(
        tmp_path, 2, "ina226", power1_input=12_345_000, curr1_input=1028, in1_input=12010, update_interval=2
    )
    reader = agent.sensors.create({"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina226"})
    assert reader.read() == {"power": pytest.approx(12.345)}
    assert reader.describe() == "hwmon_ina2xx ina226 (hwmon2)"
    assert reader.info()["update_interval_ms"] == 2
    assert reader.resolution("power") == 1e-6
    (d / "power1_input").write_text("8000000\n")
    assert reader.read()["power"] == pytest.approx(8.0)


def test_ina219_without_power_file_uses_bus_voltage_times_current(agent, tmp_path):
    hwmon(tmp_path, 1, "ina219", curr1_input=500, in1_input=5000)
    reader = agent.sensors.create({"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina219"})
    assert reader.read()["power"] == pytest.approx(2.5)  # 5000 mV x 500 mA = 2.5 W


def test_ina260_and_numeric_hwmon_order(agent, tmp_path):
    hwmon(tmp_path, 10, "ina260", power1_input=2_000_000)
    hwmon(tmp_path, 9, "ina260", power1_input=1_000_000)
    reader = agent.sensors.create({"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina260"})
    assert reader.read()["power"] == pytest.approx(1.0)  # hwmon9 before hwmon10


def test_missing_chip_says_what_was_found(agent, tmp_path):
    hwmon(tmp_path, 0, "zynqmp_ams", temp1_input=45000)
    with pytest.raises(agent.sensors.SensorError, match=r"no hwmon device named 'ina226'.*found: zynqmp_ams"):
        agent.sensors.create({"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina226"})
    with pytest.raises(agent.sensors.SensorError, match="chip must be one of"):
        agent.sensors.create({"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "lm75"})


def test_vanished_file_is_sensor_gone(agent, tmp_path):
    d = hwmon(tmp_path, 0, "ina226", power1_input=1_000_000)
    reader = agent.sensors.create({"kind": "hwmon_ina2xx", "root": str(tmp_path), "chip": "ina226"})
    (d / "power1_input").unlink()
    with pytest.raises(agent.sensors.SensorGone):
        reader.read()


def test_ina3221_sums_the_rails(agent, tmp_path):
    hwmon(
        tmp_path,
        3,
        "ina3221",
        in1_input=19000,
        curr1_input=400,
        in1_label="VDD_IN",
        in2_input=5000,
        curr2_input=1200,
        in2_label="VDD_GPU",
        in3_input=5000,  # channel 3 disabled: no current file
    )
    reader = agent.sensors.create({"kind": "hwmon_ina3221", "root": str(tmp_path), "chip": "ina3221"})
    assert reader.read()["power"] == pytest.approx(19.0 * 0.4 + 5.0 * 1.2)
    assert reader.info()["rails"] == ["VDD_IN", "VDD_GPU"]
    assert "VDD_IN+VDD_GPU" in reader.describe()


def test_hwmon_temp_in_millidegrees(agent, tmp_path):
    hwmon(tmp_path, 0, "ina226", power1_input=1)
    hwmon(tmp_path, 1, "zynqmp_ams", temp1_input=51250, temp1_label="ps_temp")
    reader = agent.sensors.create({"kind": "hwmon_temp", "root": str(tmp_path), "chip": "zynqmp_ams"})
    assert reader.read() == {"thermal": pytest.approx(51.25)}
    assert "ps_temp" in reader.describe()


def test_thermal_zone(agent, tmp_path):
    zone = tmp_path / "sys" / "class" / "thermal" / "thermal_zone1"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("38500\n")
    (zone / "type").write_text("GPU-therm\n")
    reader = agent.sensors.create({"kind": "thermal_zone", "root": str(tmp_path), "zone": 1})
    assert reader.read() == {"thermal": pytest.approx(38.5)}
    assert reader.describe() == "thermal_zone1 (GPU-therm)"
    with pytest.raises(agent.sensors.SensorError, match="thermal_zone0/temp does not exist"):
        agent.sensors.create({"kind": "thermal_zone", "root": str(tmp_path), "zone": 0})


def test_emulated_clock(agent, tmp_path):
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "clock_mhz").write_text("150.0\n")
    reader = agent.sensors.create({"kind": "emu_clock", "root": str(tmp_path)})
    assert reader.read() == {"clock": 150.0}


def test_unknown_kind_lists_the_known_ones(agent):
    with pytest.raises(agent.sensors.SensorError, match="unknown sensor kind 'ina9'.*hwmon_ina2xx"):
        agent.sensors.create({"kind": "ina9"})
