"""The `farm fleet trust` building blocks: scan a board's host key, show its fingerprint, pin it."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from farm.errors import InfraError
from farm.transport.hostkeys import (
    HostKeyError,
    fingerprint_sha256,
    known_hosts_name,
    lookup_host_key,
    pin_host_key,
    scan_host_key,
)


def _ssh_keygen_fingerprint(pub_path) -> str:
    # "256 SHA256:abc... comment (ED25519)"
    out = subprocess.run(["ssh-keygen", "-lf", str(pub_path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


def test_scan_fingerprint_matches_ssh_keygen(sshd_host):
    key = scan_host_key(sshd_host.host, sshd_host.port, timeout=5)

    assert key.get_name() == "ssh-ed25519"
    assert fingerprint_sha256(key) == _ssh_keygen_fingerprint(sshd_host.host_pub)
    assert f"{key.get_name()} {key.get_base64()}" == sshd_host.host_key_line


def test_trust_flow_scan_pin_then_connect(sshd_host, make_transport, tmp_path):
    known_hosts = tmp_path / "farm" / "known_hosts"  # parent directory does not exist yet
    transport = make_transport(sshd_host, known_hosts=known_hosts, name="zcu102-a")
    with pytest.raises(HostKeyError, match="farm fleet trust zcu102-a"):
        transport.exec(["true"])

    key = scan_host_key(sshd_host.host, sshd_host.port)
    line = pin_host_key(known_hosts, sshd_host.host, sshd_host.port, key)

    assert line == f"[{sshd_host.host}]:{sshd_host.port} {sshd_host.host_key_line}"
    assert known_hosts.read_text() == line + "\n"
    assert transport.exec(["echo", "trusted"]) == (0, "trusted\n", "")
    # The file is readable by OpenSSH itself, too.
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[{sshd_host.host}]:{sshd_host.port}", "-f", str(known_hosts)],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0 and sshd_host.host_key_line in found.stdout


def test_pin_replaces_the_old_entry_and_keeps_the_rest(sshd_factory, tmp_path):
    board, other = sshd_factory.start(2)
    name = known_hosts_name(board.host, board.port)
    hashed_name = paramiko.HostKeys.hash_host(name)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "# farm known_hosts\n"
        f"{name} {other.host_key_line}\n"  # stale key for the board (reinstalled)
        f"{hashed_name} {other.host_key_line}\n"  # the same, hashed (HashKnownHosts yes)
        f"{name},alias.example {other.host_key_line}\n"  # shared entry: only our name goes
        f"[{other.host}]:{other.port} {other.host_key_line}\n"
    )
    key = scan_host_key(board.host, board.port)

    pin_host_key(known_hosts, board.host, board.port, key)

    lines = known_hosts.read_text().splitlines()
    assert lines == [
        "# farm known_hosts",
        f"alias.example {other.host_key_line}",
        f"[{other.host}]:{other.port} {other.host_key_line}",
        f"{name} {board.host_key_line}",
    ]
    assert [k.get_base64() for k in lookup_host_key(known_hosts, board.host, board.port)] == [
        key.get_base64()
    ]
    assert lookup_host_key(known_hosts, "10.0.0.1", 22) == []
    assert lookup_host_key(tmp_path / "missing", board.host, board.port) == []


def test_port_22_uses_the_plain_host_name(tmp_path, sshd_host):
    key = scan_host_key(sshd_host.host, sshd_host.port)
    assert known_hosts_name("fpga1.lab", 22) == "fpga1.lab"
    assert known_hosts_name("fpga1.lab", 2222) == "[fpga1.lab]:2222"
    line = pin_host_key(tmp_path / "kh", "fpga1.lab", 22, key)
    assert line.startswith("fpga1.lab ssh-ed25519 ")


def test_scan_of_a_closed_port_is_an_infra_error(sshd_host):
    address = (sshd_host.host, sshd_host.port)
    sshd_host.stop()
    with pytest.raises(InfraError, match="cannot reach"):
        scan_host_key(*address, timeout=2)
