"""Board host keys: the farm's own known_hosts file, and the ``farm fleet trust`` flow.

The farm never trusts a host key on first use: a board's key is pinned once, explicitly, by an operator
running ``farm fleet trust <board>`` (which calls :func:`scan_host_key`, shows
:func:`fingerprint_sha256` for comparison with ``ssh-keygen -lf`` on the board, then
:func:`pin_host_key`). Connections then verify against that file only (see ``farm.transport.ssh_connection``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import tempfile
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from farm.errors import InfraError

DEFAULT_SSH_PORT = 22


class HostKeyError(InfraError):
    """A board's host key is unknown or does not match the pinned one.

    An infrastructure fault of that board (an InfraError): the board goes bad with this message, which
    names the expected and offered keys and ``farm fleet trust``, and the job is retried on another board
    of its type. Until an operator pins the new key the board's health checks fail the same way, so it
    stays out of service instead of failing every job sent to it."""


def known_hosts_name(host: str, port: int = DEFAULT_SSH_PORT) -> str:
    """The name a known_hosts entry uses: ``host`` for port 22, ``[host]:port`` otherwise (as OpenSSH)."""
    return host if int(port) == DEFAULT_SSH_PORT else f"[{host}]:{int(port)}"


def fingerprint_sha256(key: paramiko.PKey) -> str:
    """``SHA256:<base64, unpadded>`` of the public key blob: the same text ``ssh-keygen -lf`` prints."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def scan_host_key(host: str, port: int = DEFAULT_SSH_PORT, timeout: float = 10.0) -> paramiko.PKey:
    """The host key the server presents in a key exchange (no authentication is attempted).

    When a server has several host keys, this is the one paramiko negotiates by preference, which is
    also the type later connections will ask for once it is pinned.
    """
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as exc:
        raise InfraError(f"cannot reach {host}:{port}: {exc}") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise InfraError(f"SSH key exchange with {host}:{port} failed: {exc}") from None
    finally:
        transport.close()
        sock.close()


def _entry_matches(entry_names: list[str], name: str) -> bool:
    for candidate in entry_names:
        if candidate.startswith("|1|"):
            # Hashed entry (HashKnownHosts yes): |1|salt|hmac-sha1(salt, name)
            with contextlib.suppress(Exception):
                if paramiko.HostKeys.hash_host(name, candidate) == candidate:
                    return True
        elif candidate == name:
            return True
    return False


def lookup_host_key(known_hosts_path: str | os.PathLike[str], host: str, port: int) -> list[paramiko.PKey]:
    """The keys pinned for ``host:port`` in this file (empty if the file or an entry is missing)."""
    path = Path(known_hosts_path)
    if not path.is_file():
        return []
    name = known_hosts_name(host, port)
    keys = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        with contextlib.suppress(Exception):
            entry = HostKeyEntry.from_line(stripped)
            if entry is not None and entry.key is not None and _entry_matches(entry.hostnames, name):
                keys.append(entry.key)
    return keys


def pin_host_key(known_hosts_path: str | os.PathLike[str], host: str, port: int, key: paramiko.PKey) -> str:
    """Write ``key`` as the one key for ``host:port`` (replacing older entries for that name); returns the line.

    Other hosts' lines and comments are kept. An entry listing several names loses only this one.
    The file is replaced atomically (write to a temp file, then rename).
    """
    path = Path(known_hosts_path)
    name = known_hosts_name(host, port)
    new_line = f"{name} {key.get_name()} {key.get_base64()}"
    kept: list[str] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                kept.append(line)
                continue
            marker = fields[0] if fields[0].startswith("@") else None
            names_field = fields[1] if marker and len(fields) > 1 else fields[0]
            names = names_field.split(",")
            if not _entry_matches(names, name):
                kept.append(line)
                continue
            others = [n for n in names if not _entry_matches([n], name)]
            if others:  # keep the entry for the other names it lists
                rest = fields[2:] if marker else fields[1:]
                kept.append(" ".join(([marker] if marker else []) + [",".join(others), *rest]))
    kept.append(new_line)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".known_hosts-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(kept) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return new_line
