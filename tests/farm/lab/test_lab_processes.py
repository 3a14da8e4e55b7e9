"""`farm lab up|down|status` (farm/lab/processes.py): real sshd boards on 127.0.0.x, board simulators, the
rendered lab file, idempotence, clean shutdown, and the fallback without openssh-server."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from farm.config import Settings, load_settings
from farm.fleet.transports import close_all, transport_for
from farm.inventory import load_inventory
from farm.lab import processes
from farm.lab.sshd import SSHD, pid_alive, processes_mentioning, sshd_available


@pytest.fixture
def lab_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a data dir of this test's own; whatever the lab started is stopped afterwards."""
    monkeypatch.setenv("FARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FARM_LAB_SSHD", raising=False)
    monkeypatch.delenv("FARM_LAB", raising=False)
    settings = load_settings()
    yield settings
    close_all()
    processes.down(settings)


def _ours(settings: Settings) -> list[int]:
    return processes_mentioning(f"{processes.lab_dir(settings)}/")


def test_up_status_down_with_real_sshd(lab_settings: Settings):
    if not sshd_available(SSHD):
        pytest.fail("openssh-server is not installed (make test installs it)")
    handle = processes.up(lab_settings, time_scale=0.01, boards=["zcu104-1", "u50", "local-cpu"])
    assert handle.transport == "ssh" and handle.notes == []
    assert handle.lab_file == lab_settings.data_dir / "lab" / "virtual-lab.yaml"
    by_name = {b.name: b for b in handle.boards}
    assert list(by_name) == ["zcu104-1", "u50-1", "local-cpu"]  # template order
    zcu, u50 = by_name["zcu104-1"], by_name["u50-1"]
    assert zcu.host != u50.host and all(b.host.startswith("127.0.0.") for b in (zcu, u50))

    # the rendered lab validates and makes those types emulated
    inventory = load_inventory(lab_settings.inventory_dir, lab=str(handle.lab_file))
    assert inventory.board_types["zcu104"].source == "emulated"
    assert inventory.board_types["zcu104"].backend == "emulated"
    assert inventory.board_types["cpu"].source == "measured"
    board = inventory.board("zcu104-1")
    assert board.transport == "ssh" and board.emulation is not None
    assert board.emulation.time_scale == 0.01 and board.serial == "EMU-zcu104-1"
    known = Path(board.ssh.known_hosts).read_text().split()
    assert known[0] == f"[{zcu.host}]:{zcu.port}" and known[1] == "ssh-ed25519"  # pinned, one key

    root = Path(board.emulation.root)
    info = json.loads((root / "emu/board.json").read_text())
    assert info["board"] == "zcu104-1" and info["type"] == "zcu104" and info["serial"] == "EMU-zcu104-1"
    assert info["dpu_fingerprint"].startswith("0x") and info["time_scale"] == 0.01

    # through the farm's own SSH transport (host key checked against that known_hosts)
    transport = transport_for(inventory, board)
    rc, out, err = transport.exec(["cat", f"{root}/sys/class/hwmon/hwmon0/name", f"{root}/emu/clock_mhz"])
    assert rc == 0, err
    assert out.split() == ["ina226", "300.000"]
    rc, out, _ = transport.exec(["cat", f"{root}/sys/class/hwmon/hwmon0/power1_input"])
    assert 8.5e6 < int(out) < 9.5e6  # idle: about the 9 W static power, in uW
    u50_board = inventory.board("u50-1")
    u50_root = u50_board.emulation.root
    xb = f"{u50_root}/opt/xilinx/xrt/bin/xbutil"
    out_file = f"{u50_board.ssh.work_dir}/xb.json"
    command = [
        xb,
        "examine",
        "-d",
        "0000:3b:00.1",
        "-r",
        "electrical",
        "thermal",
        "-f",
        "JSON",
        "-o",
        out_file,
        "--force",
    ]
    rc, _, err = transport_for(inventory, u50_board).exec(command)
    assert rc == 0, err
    doc = json.loads(Path(out_file).read_text())
    assert 17.0 < float(doc["devices"][0]["electrical"]["power_consumption_watts"]) < 19.0

    # status: everything up, a temperature and a clock
    rows = {r.name: r for r in processes.status(lab_settings)}
    assert rows["zcu104-1"].sshd_up and rows["zcu104-1"].boardsim_up
    assert rows["zcu104-1"].clock_mhz == 300.0 and 35 < rows["zcu104-1"].temp_c < 45
    assert rows["local-cpu"].sshd_up is None and rows["local-cpu"].boardsim_up is None

    # up again: the same lab, nothing restarted
    again = processes.up(lab_settings, time_scale=0.01, boards=["zcu104-1", "u50", "local-cpu"])
    assert again.started == []
    assert [(b.host, b.port, b.sshd_pid, b.boardsim_pid) for b in again.boards] == [
        (b.host, b.port, b.sshd_pid, b.boardsim_pid) for b in handle.boards
    ]
    # a simulator that died is restarted; the rest stays
    os.kill(zcu.boardsim_pid, signal.SIGKILL)
    healed = {b.name: b for b in processes.up(lab_settings, boards=["zcu104"]).boards}
    assert healed["zcu104-1"].boardsim_pid != zcu.boardsim_pid and pid_alive(healed["zcu104-1"].boardsim_pid)
    assert healed["zcu104-1"].sshd_pid == zcu.sshd_pid and healed["u50-1"].boardsim_pid == u50.boardsim_pid

    # a session left running on a board goes down with it
    marker = f"{board.ssh.work_dir}/marker"
    sleeper = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(300)' {shlex.quote(marker)}"
    transport.exec(["sh", "-c", f"nohup {sleeper} >/dev/null 2>&1 &"])
    assert processes_mentioning(marker)
    close_all()
    stopped = processes.down(lab_settings)
    assert len(stopped) == 4  # two sshd, two simulators
    assert _ours(lab_settings) == []
    assert not handle.lab_file.exists()
    assert processes.status(lab_settings) == []
    assert processes.down(lab_settings) == []  # down twice is fine


def test_fallback_without_sshd_runs_boards_locally(lab_settings: Settings, tmp_path: Path):
    missing = str(tmp_path / "no-such" / "sshd")
    handle = processes.up(
        lab_settings, time_scale=0.01, boards=["pynq-z2", "jetson-agx-xavier", "local-cpu"], sshd_path=missing
    )
    assert handle.transport == "local"
    assert any("openssh-server not found" in n for n in handle.notes)
    inventory = load_inventory(lab_settings.inventory_dir, lab=str(handle.lab_file))
    pynq = inventory.board("pynq-z2-1")
    assert pynq.transport == "local" and pynq.ssh is None and pynq.emulation is not None
    assert inventory.board_types["pynq-z2"].source == "emulated"
    jetson_root = Path(inventory.board("jetson-agx-xavier-1").emulation.root)
    assert (jetson_root / "sys/class/hwmon/hwmon0/name").read_text().strip() == "ina3221"
    assert int((jetson_root / "sys/class/thermal/thermal_zone0/temp").read_text()) > 25_000
    rows = processes.status(lab_settings)
    assert all(r.sshd_up is None for r in rows) and all(r.boardsim_up for r in rows if r.type != "cpu")
    assert len(processes.down(lab_settings)) == 2
    assert _ours(lab_settings) == []


def test_cli_up_status_down(lab_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FARM_LAB_SSHD", str(tmp_path / "missing-sshd"))  # quick: no sshd needed here
    runner = CliRunner()
    result = runner.invoke(cli, ["lab", "up", "--boards", "kv260-1", "--time-scale", "0.02"])
    assert result.exit_code == 0, result.output
    assert f"export FARM_LAB={processes.lab_file(lab_settings)}" in result.output
    assert "openssh-server not found" in result.output  # said clearly (on stderr, mixed in by CliRunner)
    result = runner.invoke(cli, ["lab", "status", "--format", "json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"kv260-1", "local-cpu"}  # --boards keeps this machine's CPU: the baseline
    row = rows["kv260-1"]
    assert row["name"] == "kv260-1" and row["boardsim_up"] and row["clock_mhz"] == 300.0
    result = runner.invoke(cli, ["lab", "status"])
    assert "kv260-1" in result.output and "up" in result.output
    again = runner.invoke(cli, ["lab", "up", "--boards", "kv260-1", "--format", "json"])
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)  # notes go to stderr: stdout is one JSON document
    assert doc["started"] == [] and {b["name"] for b in doc["boards"]} == {"kv260-1", "local-cpu"}
    assert doc["export"] == f"export FARM_LAB={processes.lab_file(lab_settings)}"
    bad = runner.invoke(cli, ["lab", "up", "--boards", "no-such-board"])
    assert bad.exit_code == 1 and "no board or board type" in bad.output
    result = runner.invoke(cli, ["lab", "down"])
    assert result.exit_code == 0 and "stopped kv260-1: board simulator" in result.output
    assert _ours(lab_settings) == []
