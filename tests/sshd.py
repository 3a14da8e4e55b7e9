"""Real OpenSSH servers for tests: each "board" is its own sshd on its own loopback address.

Load it as a pytest plugin (``pytest_plugins = ["tests.sshd"]`` in the root conftest). Fixtures:

* ``sshd_factory``: ``sshd_factory.start(n=1)`` starts ``n`` servers and returns a list of
  :class:`SshdServer` (``.host``, ``.port``, ``.user``, ``.key_file``, ``.known_hosts``, ``.work_dir``,
  ``.pid``, ``.stop()``, ``.start()``); all of them are killed at teardown.
* ``sshd_host``: one running server.

Each server has its own ed25519 host key, listens on 127.0.0.x (x >= 2, distinct per server) and a free
port, accepts only the session's client key (``client_key`` fixture), and has sftp (internal-sftp).
``known_hosts`` is a file with exactly that server's key pinned (``[host]:port`` form).
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["ClientKey", "SshdFactory", "SshdServer", "client_key", "sshd_factory", "sshd_host"]

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
_NOT_INSTALLED = "openssh-server is not installed (make test installs it)"

# 127.0.0.2 .. 127.0.0.254, handed out round-robin so servers of one session are distinct hosts.
_addresses = itertools.cycle(f"127.0.0.{i}" for i in range(2, 255))


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces/parens, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _processes_mentioning(text: str) -> list[int]:
    """Pids (other than ours) whose command line contains ``text``."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if needle in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class ClientKey:
    private: Path
    public: Path


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    """The client key pair every test server accepts (generated once per session)."""
    if not os.path.exists(SSHD):
        pytest.fail(_NOT_INSTALLED)
    directory = tmp_path_factory.mktemp("ssh-client")
    key = directory / "id_ed25519"
    _keygen(key, "farm-test-client")
    return ClientKey(key, Path(f"{key}.pub"))


class SshdServer:
    """One real sshd (``-D -e``) on ``host:port``; ``stop()`` kills it and every session it serves."""

    def __init__(self, root: Path, host: str, client: ClientKey) -> None:
        self.root = root
        self.host = host
        self.port = _free_port(host)
        self.user = getpass.getuser()
        self.key_file = client.private
        self.host_key = root / "ssh_host_ed25519_key"
        self.host_pub = root / "ssh_host_ed25519_key.pub"
        self.known_hosts = root / "known_hosts"
        self.work_dir = root / "board"
        self.log = root / "sshd.log"
        self.config = root / "sshd_config"
        self.proc: subprocess.Popen[bytes] | None = None

        root.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir()
        _keygen(self.host_key, f"farm-test-host-{host}")
        authorized = root / "authorized_keys"
        authorized.write_text(client.public.read_text())
        key_type, key_b64 = self.host_pub.read_text().split()[:2]
        self.known_hosts.write_text(f"[{host}]:{self.port} {key_type} {key_b64}\n")
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {host}",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "UseDNS no",
                    "PrintMotd no",
                    "X11Forwarding no",
                    "MaxStartups 100",
                    "MaxSessions 100",
                    # bash sources ~/.bashrc for commands run by sshd unless SHLVL says it is nested: keep the
                    # tests independent of this machine's root ~/.bashrc (pyenv init there costs ~150 ms).
                    "SetEnv SHLVL=1",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def host_key_line(self) -> str:
        """``type base64`` of this server's public host key."""
        return " ".join(self.host_pub.read_text().split()[:2])

    def start(self, timeout_s: float = 10.0) -> SshdServer:
        """Start (or start again) on the same address, port and host key; returns once the banner arrives."""
        if self.pid is not None:
            return self
        with contextlib.suppress(OSError):  # sshd's privilege separation directory (sshd says if it lacks it)
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd on {self.host}:{self.port} not ready:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server and every process it started (sessions, their commands): a board going down."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *_descendants(self.proc.pid)] if self.proc.poll() is None else []
        # Commands whose session already ended were reparented away from sshd: find them by our paths.
        pids += [pid for pid in _processes_mentioning(str(self.root)) if pid not in pids]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def __repr__(self) -> str:
        return f"SshdServer({self.host}:{self.port}, pid={self.pid})"


class SshdFactory:
    def __init__(self, base: Path, client: ClientKey) -> None:
        self.base = base
        self.client = client
        self.servers: list[SshdServer] = []

    def start(self, n: int = 1) -> list[SshdServer]:
        started = []
        for _ in range(n):
            host = next(_addresses)
            server = SshdServer(self.base / f"{host}-{len(self.servers)}", host, self.client)
            self.servers.append(server)
            started.append(server.start())
        return started

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def sshd_factory(tmp_path_factory: pytest.TempPathFactory, client_key: ClientKey) -> Iterator[SshdFactory]:
    """Start real sshd "boards": ``sshd_factory.start(n)``; all killed at teardown."""
    factory = SshdFactory(tmp_path_factory.mktemp("sshd"), client_key)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def sshd_host(sshd_factory: SshdFactory) -> SshdServer:
    """One running sshd "board"."""
    return sshd_factory.start(1)[0]
