"""Boards heal themselves, over real sshd boards: a changed host key and a full disk are board faults whose
jobs move to another board; the keeper follows a board the lab moved to another port; flapping is damped.

The keeper is driven one round at a time (``tick``), as its thread would, so nothing here waits on a clock.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import paramiko
from click.testing import CliRunner
from sqlalchemy import select

from farm.cli.main import cli
from farm.config import load_settings
from farm.db.models import BoardEventRow, JobRow
from farm.db.session import session_scope
from farm.fleet import states
from farm.fleet.keeper import BoardKeeper
from farm.fleet.policy import HealthPolicy
from farm.fleet.transports import _CACHE
from farm.inventory import load_inventory
from farm.lab.loopback import write_lab
from farm.lab.sshd import SshdServer, free_port, keygen
from farm.transport.hostkeys import fingerprint_sha256
from tests.conftest import TINY_SWEEP, write_sweep
from tests.small_fs import fill, small_tmpfs

ONE = TINY_SWEEP.replace("[fp32, int8]", "[fp32]").replace(", Offline", "")


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _keeper(board: str, policy: HealthPolicy) -> BoardKeeper:
    settings = load_settings()
    with session_scope(settings.db_url) as s:
        states.sync_boards(s, load_inventory(settings.inventory_dir))
    return BoardKeeper(
        settings, load_inventory(settings.inventory_dir), board, lambda: None, lambda: None, policy=policy
    )


def _events(db_url: str, board: str, kind: str) -> list[BoardEventRow]:
    with session_scope(db_url) as s:
        q = select(BoardEventRow).where(BoardEventRow.board_name == board, BoardEventRow.kind == kind)
        rows = list(s.scalars(q.order_by(BoardEventRow.id)))
        s.expunge_all()
        return rows


def _fingerprint(server: SshdServer) -> str:
    return fingerprint_sha256(paramiko.Ed25519Key(filename=str(server.host_key)))


def _new_host_key(server: SshdServer) -> None:
    """The board is reinstalled: same address and port, a new host key (known_hosts still pins the old)."""
    server.stop()
    server.host_key.unlink()
    server.host_pub.unlink()
    keygen(server.host_key, "reinstalled")
    server.start()


def test_a_changed_host_key_is_a_board_fault_until_trusted(
    tmp_path: Path, ssh_lab, farm_env, tiny_onnx
) -> None:
    servers = ssh_lab(2)
    pinned = _fingerprint(servers[0])
    _new_host_key(servers[0])  # embedded mode takes node-0 first
    offered = _fingerprint(servers[0])

    result = _cli("submit", str(write_sweep(tmp_path, ONE.format(onnx=tiny_onnx))))

    assert result.exit_code == 0, result.output
    with session_scope(farm_env.db_url) as s:
        job = s.scalars(select(JobRow).where(JobRow.kind == "run")).one()
        assert (job.state, job.board_name, job.attempts) == ("done", "node-1", 2)  # retried elsewhere
    bad = states.get_state(farm_env.db_url, "node-0")
    assert bad.state == "bad"
    assert "host key MISMATCH" in bad.reason and "farm fleet trust node-0" in bad.reason
    assert f"presented ssh-ed25519 {offered}" in bad.reason and f"pins {pinned}" in bad.reason

    keeper = _keeper("node-0", HealthPolicy(flap_failures=1, cooldown_s=0))
    assert keeper.tick() == "bad" and not keeper.consuming  # its checks fail the same way
    assert "host key MISMATCH" in _events(farm_env.db_url, "node-0", "health")[-1].reason

    trusted = _cli("fleet", "trust", "node-0", "--yes")
    assert f"offers ssh-ed25519 {offered}" in trusted.output and "(DIFFERENT)" in trusted.output
    checked = _cli("fleet", "check", "node-0")
    assert checked.exit_code == 0, checked.output
    assert states.get_state(farm_env.db_url, "node-0").state == "idle"
    assert keeper.tick() == "idle" and keeper.consuming


def test_the_keeper_follows_a_board_moved_to_another_port(ssh_lab, sshd_factory, farm_env) -> None:
    servers = ssh_lab(1)
    keeper = _keeper("node-0", HealthPolicy(flap_failures=3, cooldown_s=3600))
    assert keeper.tick() == "idle" and keeper.consuming

    old = servers[0]
    old.stop()
    assert keeper.tick() == "idle" and not keeper.consuming  # one failure: no jobs, not yet bad
    # The lab starts the board's sshd on a new port (same host key; known_hosts pinned for the new port)
    # and rewrites the lab file.
    moved = SshdServer(
        old.root, old.host, sshd_factory.client, port=free_port(old.host), work_dir=old.work_dir
    )
    sshd_factory.servers.append(moved)
    moved.start()
    write_lab(Path(load_settings().inventory_dir), [moved])

    assert keeper.tick() == "idle" and keeper.consuming
    assert _CACHE["node-0"].port == moved.port != old.port
    assert _events(farm_env.db_url, "node-0", "health")[-1].ok
    assert _cli("fleet", "check", "node-0").exit_code == 0
    assert keeper.tick() == "idle" and keeper.consuming  # and stays so after an operator's check
    assert [e.to_state for e in _events(farm_env.db_url, "node-0", "state")] == ["idle"]  # never bad


def test_a_full_disk_is_no_space_left_and_the_board_stays_bad(
    tmp_path: Path, ssh_lab, farm_env, tiny_onnx
) -> None:
    servers = ssh_lab(2)
    artifacts = servers[0].work_dir / "artifacts"
    with small_tmpfs(artifacts, 256):
        fill(artifacts)
        result = _cli("submit", str(write_sweep(tmp_path, ONE.format(onnx=tiny_onnx))))
        assert result.exit_code == 0, result.output
        with session_scope(farm_env.db_url) as s:
            job = s.scalars(select(JobRow).where(JobRow.kind == "run")).one()
            assert (job.state, job.board_name, job.attempts) == ("done", "node-1", 2)
        bad = states.get_state(farm_env.db_url, "node-0")
        assert bad.state == "bad"
        assert bad.reason.startswith(f"no space left on node-0:{artifacts}") and "(0 MB free, " in bad.reason
        assert "Failure" not in bad.reason

        keeper = _keeper("node-0", HealthPolicy(flap_failures=1, cooldown_s=0, min_free_mb=1))
        for _ in range(3):  # past its cooldown, checked again and again: it stays bad, no flapping
            assert keeper.tick() == "bad" and not keeper.consuming
        said = f"no space left on node-0:{artifacts} (0 MB free, 1.0 MB needed)"
        assert states.get_state(farm_env.db_url, "node-0").reason == f"health check failed: {said}"
        checked = _cli("fleet", "check", "node-0")
        assert checked.exit_code == 1 and "no space left on node-0:" in " ".join(checked.output.split())
    assert [e.to_state for e in _events(farm_env.db_url, "node-0", "state")] == ["idle", "running", "bad"]


def test_a_flapping_board_stays_bad_through_its_cooldown(ssh_lab, farm_env) -> None:
    servers = ssh_lab(1)
    policy = HealthPolicy(flap_failures=3, cooldown_s=3600)
    keeper = _keeper("node-0", policy)
    board = servers[0]

    board.stop()
    assert [keeper.tick() for _ in range(2)] == ["idle", "idle"] and not keeper.consuming
    assert keeper.suspect  # checked again sooner than the interval
    board.start()
    assert keeper.tick() == "idle" and keeper.consuming and not keeper.suspect  # two blips: tolerated
    board.stop()
    assert [keeper.tick() for _ in range(3)] == ["idle", "idle", "bad"]  # three in a row: bad
    board.start()
    assert keeper.tick() == "bad" and not keeper.consuming  # a pass right after a failure: held
    board.stop()
    assert keeper.tick() == "bad"  # a failure inside the cooldown starts it again
    board.start()
    assert keeper.tick() == "bad" and not keeper.consuming

    keeper.policy = dataclasses.replace(policy, cooldown_s=0)  # the cooldown has run out
    assert keeper.tick() == "idle" and keeper.consuming

    db = farm_env.db_url
    assert [e.to_state for e in _events(db, "node-0", "state")] == ["idle", "bad", "idle"]
    decisions = [e.reason for e in _events(db, "node-0", "decision")]
    assert [d.split(" (")[0] for d in decisions[:2]] == ["health check failed"] * 2
    assert "1 of 3 in a row" in decisions[0] and "2 of 3 in a row" in decisions[1]
    held = [d for d in decisions if d.startswith("health check passed, but the board stays bad until")]
    assert len(held) == 2 and all("FARM_BAD_COOLDOWN_S" in d for d in held)
    bad = _events(db, "node-0", "state")[1]
    assert bad.reason.startswith("health check failed (3 checks in a row): unreachable:")
