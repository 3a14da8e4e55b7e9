"""Issue 10: lab files and the board-type catalog share the sweep's hardened YAML loader, and loading them
raises InventoryError (file:line: field) and nothing else: not a plain SweepError, not a ValueError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm.config import REPO_ROOT
from farm.errors import InventoryError
from farm.inventory import load_inventory

LAB = "boards:\n  - name: local-cpu\n    type: cpu\n"


def _err(tmp_path: Path, lab: str, catalog: str | None = None) -> InventoryError:
    if catalog is None:
        shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", tmp_path / "board-types.yaml")
    else:
        (tmp_path / "board-types.yaml").write_text(catalog)
    (tmp_path / "lab.yaml").write_text(lab)
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path, "lab.yaml")
    assert info.type is InventoryError
    return info.value


@pytest.mark.parametrize(
    ("lab", "line", "message"),
    [
        (LAB + "pools: {p: [local-cpu\n", 5, "not valid YAML"),
        (LAB + "pools: &p {p: *p}\n", 4, "recursive alias *p"),
        (LAB + "pools: !!python/name:os.system\n", 4, "YAML tags"),
        (LAB + 'pools: {p: ["local\\0cpu"]}\n', 4, "NUL character"),
        (LAB.replace("type: cpu", "type: cpu\n    serial: !!int abc"), 4, "YAML tags"),
        (LAB + "---\n" + LAB, 4, "one YAML document per file"),
    ],
)
def test_hostile_lab_files_raise_inventory_errors(tmp_path: Path, lab: str, line: int, message: str) -> None:
    err = _err(tmp_path, lab)
    assert err.line == line and message in str(err), str(err)
    assert str(err).startswith(f"{tmp_path / 'lab.yaml'}:{line}: ")


def test_non_finite_and_huge_numbers_in_the_catalog(tmp_path: Path) -> None:
    base = "board_types:\n  cpu:\n    family: cpu\n    toolchain: onnxruntime-cpu\n    backend: onnxruntime\n"
    err = _err(tmp_path, LAB, base + "    tdp_w: .inf\n")
    assert err.line == 6 and err.field == "board_types.cpu.tdp_w" and "finite" in str(err)
    err = _err(tmp_path, LAB, base + "    tdp_w: inf\n")  # a string pydantic would read as infinity
    assert err.field == "board_types.cpu.tdp_w" and "finite" in str(err)
    err = _err(tmp_path, LAB, base + "    accelerator: {kind: cpu, cores: 100000000000000000000}\n")
    assert err.field == "board_types.cpu.accelerator.cores"


def test_a_board_type_must_be_a_plain_name(tmp_path: Path) -> None:
    catalog = "board_types:\n  'cpu x':\n    family: cpu\n    toolchain: t\n    backend: b\n"
    err = _err(tmp_path, LAB, catalog)
    assert (
        err.field is not None and err.field.startswith("board_types") and "letters, digits" in str(err)
    )  # no regex


def test_a_lab_that_is_a_device_or_has_a_nul_in_its_name(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", tmp_path / "board-types.yaml")
    with pytest.raises(InventoryError, match="not a regular file"):
        load_inventory(tmp_path, "/dev/zero")
    with pytest.raises(InventoryError, match="not found"):
        load_inventory(tmp_path, "lab\x00.yaml")


def test_duplicate_docker_hosts_in_a_long_list(tmp_path: Path) -> None:
    hosts = "".join(
        f"  - {{name: h{i}, runner: host, ssh: {{host: h, user: farm, key_file: k, known_hosts: kh}}}}\n"
        for i in range(3000)
    )
    err = _err(tmp_path, LAB + "docker_hosts:\n" + hosts + hosts[: hosts.index("\n") + 1])
    assert err.field == "docker_hosts[0].name" and "duplicate docker host name 'h0'" in str(err)


def test_a_key_path_that_cannot_be_expanded_is_an_inventory_error(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "inventory" / "board-types.yaml", tmp_path / "board-types.yaml")
    (tmp_path / "lab.yaml").write_text(LAB)
    inventory = load_inventory(tmp_path, "lab.yaml")
    with pytest.raises(InventoryError, match="cannot resolve"):
        inventory.resolve("~no-such-user-here/id_ed25519")
