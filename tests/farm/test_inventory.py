"""Inventory files: validated with located errors; unsafe values never get in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm.config import REPO_ROOT
from farm.errors import InventoryError
from farm.inventory import load_inventory

LAB = """\
boards:
  - name: local-cpu
    type: cpu
  - name: node-a
    type: cpu
    transport: ssh
    ssh:
      host: 127.0.0.2
      port: 2222
      user: farm
      key_file: keys/id_ed25519
      known_hosts: keys/known_hosts
docker_hosts:
  - name: builder
    runner: host
    ssh: {host: 127.0.0.3, user: farm, key_file: keys/id_ed25519, known_hosts: keys/known_hosts}
pools:
  cpus: [local-cpu, node-a]
"""


def _inv(tmp_path: Path, lab: str):
    shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", tmp_path / "board-types.yaml")
    (tmp_path / "lab.yaml").write_text(lab)
    return load_inventory(tmp_path, "lab.yaml")


def _err(tmp_path: Path, lab: str) -> InventoryError:
    with pytest.raises(InventoryError) as info:
        _inv(tmp_path, lab)
    return info.value


def test_repository_inventory_loads() -> None:
    inv = load_inventory(REPO_ROOT / "inventory")
    assert inv.targets() == ["cpu"] and inv.board("local-cpu").transport == "local"


def test_example_lab_loads() -> None:
    inv = load_inventory(REPO_ROOT / "inventory", "example-lab.yaml")
    assert [b.name for b in inv.boards] == ["bench-x86-01", "bench-x86-02"]
    assert inv.docker_hosts[0].runner == "docker" and inv.pools["x86"] == ["bench-x86-01", "bench-x86-02"]


def test_ambient_sensor_is_an_absolute_safe_path(tmp_path: Path) -> None:
    lab = LAB.replace(
        "  - name: local-cpu\n    type: cpu\n", "  - name: local-cpu\n    type: cpu\n    ambient_sensor: X\n"
    )
    ok = _inv(tmp_path, lab.replace("X", "/sys/class/hwmon/hwmon3/temp1_input"))
    assert ok.board("local-cpu").ambient_sensor == "/sys/class/hwmon/hwmon3/temp1_input"
    assert load_inventory(REPO_ROOT / "inventory", "example-lab.yaml").board("bench-x86-01").ambient_sensor
    for bad in ("temp1_input", "/sys/$(reboot)", "/sys/../etc/shadow"):
        err = _err(tmp_path, lab.replace("X", f"'{bad}'"))
        assert err.field.startswith("boards[0]") and err.line in (2, 4), str(err)


def test_lab_with_ssh_boards_hosts_and_pools(tmp_path: Path) -> None:
    inv = _inv(tmp_path, LAB)
    node = inv.board("node-a")
    assert node.ssh.port == 2222 and node.ssh.work_dir == "/tmp/farm"
    assert inv.resolve(node.ssh.key_file) == tmp_path / "keys" / "id_ed25519"
    assert [b.name for b in inv.boards_of("cpu")] == ["local-cpu", "node-a"]
    assert inv.docker_hosts[0].runner == "host" and inv.pools["cpus"] == ["local-cpu", "node-a"]


@pytest.mark.parametrize(
    ("bad", "field", "line"),
    [
        ("host: 127.0.0.2", "boards[1].ssh.host", 8),
        ("user: farm", "boards[1].ssh.user", 10),
    ],
)
def test_injection_in_host_or_user_rejected(tmp_path: Path, bad: str, field: str, line: int) -> None:
    key, _ = bad.split(": ")
    for evil in ("a;rm -rf /", "$(reboot)", "`id`", "x y"):
        err = _err(tmp_path, LAB.replace(bad, f"{key}: '{evil}'"))
        assert err.field == field and err.line == line, str(err)


def test_work_dir_must_be_plain_absolute(tmp_path: Path) -> None:
    for evil in ("relative/dir", "/tmp/$(reboot)", "/tmp/a;b", "/tmp/../etc"):
        lab = LAB.replace("      port: 2222\n", f"      port: 2222\n      work_dir: '{evil}'\n")
        err = _err(tmp_path, lab)
        assert err.field.startswith("boards[1].ssh"), str(err)


def test_unknown_type_duplicate_name_bad_pool(tmp_path: Path) -> None:
    err = _err(tmp_path, LAB.replace("type: cpu\n    transport", "type: zcu105\n    transport"))
    assert err.field == "boards[1].type" and err.line == 5 and "valid: cpu" in str(err)
    err = _err(tmp_path, LAB.replace("name: node-a", "name: local-cpu"))
    assert err.field == "boards[1].name" and "duplicate" in str(err)
    err = _err(tmp_path, LAB.replace("[local-cpu, node-a]", "[local-cpu, node-z]"))
    assert err.field == "pools.cpus[1]" and err.line == 18 and "node-z" in str(err)


def test_ssh_board_needs_endpoint(tmp_path: Path) -> None:
    err = _err(tmp_path, "boards:\n  - name: x\n    type: cpu\n    transport: ssh\n")
    assert err.field == "boards[0]" and "needs an ssh: section" in str(err)


def test_port_range(tmp_path: Path) -> None:
    err = _err(tmp_path, LAB.replace("port: 2222", "port: 70000"))
    assert err.field == "boards[1].ssh.port" and err.line == 9


def test_every_catalog_toolchain_backend_and_sensor_exists() -> None:
    """The catalog names only toolchains, agent backends and sensors the code has (real and emulated)."""
    import ast

    from farm.fleet.sensors import agent_sensors
    from farm.inventory import Board, BoardEmulation
    from farm.workers.toolchains.registry import TOOLCHAINS

    registry = (REPO_ROOT / "workers" / "agent" / "backends" / "__init__.py").read_text()
    backends = ast.literal_eval(registry.split("BACKENDS = ", 1)[1].split("\n}\n", 1)[0] + "\n}")
    inventory = load_inventory(REPO_ROOT / "inventory")
    for name, bt in inventory.board_types.items():
        assert bt.toolchain in TOOLCHAINS and bt.backend in backends, name
        if bt.emulation is not None:
            assert bt.emulation.toolchain in TOOLCHAINS and bt.emulation.backend in backends, name
            board = Board(name="b", type=name, emulation=BoardEmulation(root="/tmp/emu"))
            assert len(agent_sensors(bt, board)) == len(bt.sensors), name  # every spec maps to a reader


PYNQ_LAB = """\
boards:
  - name: pynq-1
    type: pynq-z2
  - name: local-cpu
    type: cpu
"""


def test_a_boards_own_cpu_is_a_target_of_its_type(tmp_path: Path) -> None:
    """`pynq-z2:cpu[:N]`: family cpu, runs on the pynq-z2's boards and queue, N threads (all cores by
    default); looked up but never listed (the catalog's listing stays the catalog)."""
    from farm.queues import run_queue

    inv = _inv(tmp_path, PYNQ_LAB)
    both, one = inv.board_types["pynq-z2:cpu"], inv.board_types.get("pynq-z2:cpu:1")
    assert both.family == one.family == "cpu" and both.threads == 2 and one.threads == 1
    assert both.runs_on == "pynq-z2" and both.precisions == ["fp32", "int8"] and both.accelerator is None
    assert (
        both.toolchain == "onnxruntime_cpu" and both.backend == "onnxruntime_cpu"
    )  # a real board: ORT on it
    assert both.power == inv.board_types["pynq-z2"].power  # the board's power, sensors and price
    assert [b.name for b in inv.boards_of("pynq-z2:cpu:1")] == ["pynq-1"]
    assert run_queue("pynq-z2:cpu:1") == run_queue("pynq-z2")
    assert "pynq-z2:cpu:3" not in inv.board_types and "cpu:cpu" not in inv.board_types  # 2 cores; no ARM
    assert "u50:cpu" not in inv.board_types  # an x86 host is not the board's own ARM CPU
    assert not any(":" in name for name in inv.board_types)


def test_an_emulated_boards_cpu_is_timed_by_the_arm_model(tmp_path: Path) -> None:
    lab = (
        "boards:\n  - name: pynq-1\n    type: pynq-z2\n    emulation: {root: /tmp/pynq-1, time_scale: 1.0}\n"
    )
    cpu = _inv(tmp_path, lab).board_types["pynq-z2:cpu:1"]
    assert (cpu.toolchain, cpu.backend, cpu.source) == ("cpu_emulator", "emulated", "emulated")
