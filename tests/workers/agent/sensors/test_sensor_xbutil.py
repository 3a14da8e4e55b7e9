"""xbutil reader against the fake xbutil (tests/fakes/bin/xbutil), which writes XRT-shaped JSON."""

from __future__ import annotations

import json
import os

import pytest

from tests.workers.agent import agent_modules

XBUTIL = os.path.join(agent_modules.FAKES_BIN, "xbutil")


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        yield ns


@pytest.fixture
def state(tmp_path, monkeypatch):
    path = tmp_path / "xbutil-state.json"
    path.write_text(json.dumps({"power_w": 21.5, "temp_c": 54, "device_id": "0000:3b:00.1"}))
    monkeypatch.setenv("FAKE_XBUTIL_STATE", str(path))
    return path


def test_reads_board_power_and_fpga_temperature(agent, state):
    reader = agent.sensors.create({"kind": "xbutil", "path": XBUTIL, "device": None})
    assert reader.read() == {"power": pytest.approx(21.5), "thermal": 54.0}
    assert reader.describe() == "xbutil 0000:3b:00.1"
    cmd = reader.command()
    assert (
        cmd[1:4] == ["examine", "-r", "electrical"] and cmd[-4:-2] == ["JSON", "-o"] and cmd[-1] == "--force"
    )
    state.write_text(json.dumps({"power_w": 30.25, "temp_c": 61}))
    assert reader.read() == {"power": pytest.approx(30.25), "thermal": 61.0}
    reader.close()


def test_device_bdf_is_passed(agent, state):
    reader = agent.sensors.create({"kind": "xbutil", "path": XBUTIL, "device": "0000:3b:00.1"})
    assert reader.command()[2:4] == ["-d", "0000:3b:00.1"]
    with pytest.raises(agent.sensors.SensorError, match="not found"):
        agent.sensors.create({"kind": "xbutil", "path": XBUTIL, "device": "0000:af:00.1"})


def test_card_gone_is_sensor_gone(agent, state):
    reader = agent.sensors.create({"kind": "xbutil", "path": XBUTIL})
    state.unlink()
    with pytest.raises(agent.sensors.SensorGone, match="No devices found"):
        reader.read()


def test_missing_tool(agent, tmp_path):
    with pytest.raises(agent.sensors.SensorError, match="xbutil not found"):
        agent.sensors.create({"kind": "xbutil", "path": str(tmp_path / "opt/xilinx/xrt/bin/xbutil")})


def test_parse_report_prefers_fpga0_and_skips_absent_sensors(agent):
    xbutil = agent_modules.module("sensors.xbutil")
    doc = {
        "devices": [
            {
                "device_id": "0000:3b:00.1",
                "electrical": {"power_consumption_watts": "18.000001", "power_rails": []},
                "thermals": [
                    {"location_id": "pcb_top_front", "temp_C": "70", "is_present": "true"},
                    {"location_id": "cage_temp_0", "temp_C": "0", "is_present": "false"},
                    {"location_id": "fpga0", "temp_C": "48", "is_present": "true"},
                ],
            }
        ]
    }
    assert xbutil.parse_report(doc) == (pytest.approx(18.000001), 48.0, "0000:3b:00.1")
    doc["devices"][0]["thermals"].pop()
    assert xbutil.parse_report(doc)[1] == 70.0  # no FPGA die sensor: the hottest present
    doc["devices"][0]["electrical"]["power_consumption_watts"] = "N/A"
    assert xbutil.parse_report(doc)[0] is None
