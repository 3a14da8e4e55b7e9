"""The contract between the board simulator's files (farm/lab/physics/sensorfs.py) and the agent's real readers:
for every emulatable board type, the readers the farm configures read back what the simulator wrote."""

from __future__ import annotations

import pytest

from farm.fleet.sensors import agent_sensors
from farm.inventory import Board, BoardEmulation, load_inventory
from farm.lab.physics.sensorfs import SensorFs, SensorState
from tests.workers.agent import agent_modules

INVENTORY = agent_modules.REPO / "inventory"
CATALOG = load_inventory(INVENTORY).board_types
EMULATABLE = sorted(name for name, bt in CATALOG.items() if bt.emulation is not None)


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        yield ns


@pytest.mark.parametrize("type_name", EMULATABLE)
def test_readers_read_what_the_simulator_writes(agent, tmp_path, type_name):
    board_type = CATALOG[type_name]
    root = tmp_path / "root"
    fs = SensorFs(root, board_type, type_name).layout()
    fs.write(SensorState(power_w=12.5, temp_c=55.5, clock_mhz=150.0, utilisation=0.5, static_w=4.0))
    board = Board(name=f"{type_name}-emu-0", type=type_name, emulation=BoardEmulation(root=str(root)))
    entries = agent_sensors(board_type, board) + [{"kind": "emu_clock", "root": str(root)}]
    seen = {}
    for entry in entries:
        if entry["kind"] in fs.skipped or entry["kind"] in ("nvml", "rapl"):
            continue
        reader = agent.sensors.create(entry)
        try:
            seen.update(reader.read())
        finally:
            reader.close()
    assert seen["clock"] == pytest.approx(150.0)
    if any(s.startswith(("hwmon:", "xbutil", "meter")) for s in board_type.sensors):
        assert seen["power"] == pytest.approx(12.5, rel=0.01)
    if any(s.startswith(("hwmon-temp:", "thermal_zone", "xbutil")) for s in board_type.sensors):
        assert seen["thermal"] == pytest.approx(55.5, abs=0.51)  # xbutil reports whole degrees
