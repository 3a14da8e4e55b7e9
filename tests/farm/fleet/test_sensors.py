"""Catalog sensor specs -> agent sensor entries (docs/virtual-lab.md section 4), real and emulated boards."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import InventoryError
from farm.fleet.sensors import agent_entry, agent_sensors, board_root
from farm.inventory import Board, BoardEmulation, load_inventory
from farm.services.agent_config import emulation_config as agent_emulation

INVENTORY = Path(__file__).resolve().parents[3] / "inventory"


@pytest.mark.parametrize(
    "spec, root, entry",
    [
        ("hwmon:ina226", "/", {"kind": "hwmon_ina2xx", "root": "/", "chip": "ina226"}),
        ("hwmon:ina219", "/r", {"kind": "hwmon_ina2xx", "root": "/r", "chip": "ina219"}),
        ("hwmon:ina260", "/r", {"kind": "hwmon_ina2xx", "root": "/r", "chip": "ina260"}),
        ("hwmon:ina3221", "/r", {"kind": "hwmon_ina3221", "root": "/r", "chip": "ina3221"}),
        ("hwmon-temp:zynqmp_ams", "/r", {"kind": "hwmon_temp", "root": "/r", "chip": "zynqmp_ams"}),
        ("hwmon-temp:versal_sysmon", "/", {"kind": "hwmon_temp", "root": "/", "chip": "versal_sysmon"}),
        ("thermal_zone", "/r", {"kind": "thermal_zone", "root": "/r", "zone": 0}),
        ("thermal_zone:2", "/", {"kind": "thermal_zone", "root": "/", "zone": 2}),
        ("xbutil", "/", {"kind": "xbutil", "path": "/opt/xilinx/xrt/bin/xbutil", "device": None}),
        (
            "xbutil",
            "/lab/u50-0",
            {"kind": "xbutil", "path": "/lab/u50-0/opt/xilinx/xrt/bin/xbutil", "device": None},
        ),
        (
            "xbutil:0000:3b:00.1",
            "/",
            {"kind": "xbutil", "path": "/opt/xilinx/xrt/bin/xbutil", "device": "0000:3b:00.1"},
        ),
        ("nvml", "/", {"kind": "nvml", "index": 0}),
        ("nvml:1", "/", {"kind": "nvml", "index": 1}),
        ("rapl", "/r", {"kind": "rapl", "root": "/r"}),
    ],
)
def test_spec_to_entry(spec, root, entry):
    assert agent_entry(spec, root) == entry


@pytest.mark.parametrize(
    "spec", ["hwmon:lm75", "hwmon-temp:", "thermal_zone:x", "xbutil:; reboot", "rapl:1", "ipmi"]
)
def test_unknown_specs_are_refused(spec):
    with pytest.raises(InventoryError, match="unknown sensor spec"):
        agent_entry(spec)


def test_every_catalog_spec_maps():
    inventory = load_inventory(INVENTORY)
    for name, board_type in inventory.board_types.items():
        board = Board(name=f"{name}-0", type=name)
        entries = agent_sensors(board_type, board)
        assert len(entries) == len(board_type.sensors), name
        assert all(e.get("root", "/") == "/" for e in entries)


def test_emulated_board_reads_under_its_root():
    inventory = load_inventory(INVENTORY)
    board = Board(
        name="zcu104-emu-0",
        type="zcu104",
        emulation=BoardEmulation(root="/srv/lab/zcu104-0", time_scale=0.01),
    )
    assert board_root(board) == "/srv/lab/zcu104-0"
    assert agent_sensors(inventory.board_types["zcu104"], board) == [
        {"kind": "hwmon_ina2xx", "root": "/srv/lab/zcu104-0", "chip": "ina226"},
        {"kind": "hwmon_temp", "root": "/srv/lab/zcu104-0", "chip": "zynqmp_ams"},
    ]
    assert agent_emulation(board) == {"root": "/srv/lab/zcu104-0", "time_scale": 0.01}
    real = Board(name="zcu104-0", type="zcu104")
    assert board_root(real) == "/" and agent_emulation(real) is None


def test_one_table_names_every_reader():
    """A sensor is one reader module, one line of the contract's table and its catalog spec: every reader
    module is in the table, and every line names a reader class that exists."""
    import ast

    from farm.workers.agent import protocol

    folder = Path(protocol.AGENT_DIR) / "sensors"
    readers = {p.stem for p in folder.glob("*.py")} - {"__init__", "base", "sampler"}
    table = {s.reader.partition(":")[0]: s.reader.partition(":")[2] for s in protocol.SENSOR_KINDS}
    assert set(table) == readers
    for module, cls in table.items():
        tree = ast.parse((folder / f"{module}.py").read_text())
        assert cls in {n.name for n in tree.body if isinstance(n, ast.ClassDef)}, module
