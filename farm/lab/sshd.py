"""Real OpenSSH servers on loopback addresses: the hosts of the virtual lab's emulated boards (and of the
tests' sshd "boards", tests/sshd.py).

Each :class:`SshdServer` is its own ``sshd -D -e`` with its own ed25519 host key, listening on one
127.0.0.x address and port, accepting only one client key (``authorized_keys``), with sftp
(internal-sftp). ``known_hosts`` pins exactly that server's key (``[host]:port`` form): the farm never
trusts a host key on first use. Keys are generated here (``cryptography``, OpenSSH formats), so only the
``sshd`` binary (openssh-server) is needed; :func:`sshd_available` says whether it is there.

Processes are found and killed through ``/proc`` (Linux): :meth:`SshdServer.stop` kills the server, every
session it serves, and any command left over from an ended session that still mentions the server's
folders (``markers``), so a stopped board leaves nothing behind. :func:`stop_sshd` does the same from
another process that only knows the pid (``farm lab down``).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = "/usr/sbin/sshd"

__all__ = [
    "SSHD",
    "ClientKey",
    "SshdServer",
    "descendants",
    "free_port",
    "keygen",
    "pid_alive",
    "processes_mentioning",
    "sshd_available",
    "stop_sshd",
]


def sshd_available(path: str | os.PathLike[str] = SSHD) -> bool:
    """Whether the OpenSSH server binary is installed at ``path`` (and executable)."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


def keygen(path: Path | str, comment: str) -> None:
    """A new ed25519 key pair: ``path`` (OpenSSH private key, mode 0600) and ``path.pub``."""
    path = Path(path)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    os.chmod(path, 0o600)
    Path(f"{path}.pub").write_text(f"{public.decode()} {comment}\n")


def free_port(host: str) -> int:
    """A TCP port nobody listens on at ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may contain spaces/parens, so split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    if not pid:
        return False
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None:
            children.setdefault(stat[1], []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def processes_mentioning(text: str) -> list[int]:
    """Pids (other than ours) whose command line contains ``text``."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        if needle in cmdline(int(entry)):
            found.append(int(entry))
    return found


def _reap(pid: int) -> None:
    """Collect our own child's exit status (a no-op for a process that is not our child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def serves(pid: int | None, config: Path | str) -> bool:
    """Whether ``pid`` is alive and is the sshd of ``config`` (its command line names it: a recycled pid is
    not)."""
    return bool(pid) and pid_alive(pid) and str(config).encode() in cmdline(pid or 0)


def stop_sshd(pid: int | None, config: Path | str, markers: Iterable[str] = ()) -> list[int]:
    """Kill the sshd ``pid`` (only if its command line names ``config``: a recycled pid is left alone), the
    sessions it serves, and every process whose command line mentions one of ``markers``. Returns the pids
    signalled."""
    pids: list[int] = []
    if serves(pid, config):
        pids = [pid, *descendants(pid)]
    for marker in markers:
        pids += [p for p in processes_mentioning(marker) if p not in pids]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    for p in pids:
        _reap(p)
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
        for p in pids:
            _reap(p)
    return pids


@dataclass(frozen=True)
class ClientKey:
    """The key pair a client authenticates with (``public`` goes into each server's authorized_keys)."""

    private: Path
    public: Path

    @classmethod
    def create(cls, private: Path | str, comment: str) -> ClientKey:
        """The key pair at ``private`` (+ ``.pub``), generated if it does not exist yet."""
        private = Path(private)
        public = Path(f"{private}.pub")
        if not (private.is_file() and public.is_file()):
            keygen(private, comment)
        return cls(private, public)


class SshdServer:
    """One real sshd (``-D -e``) on ``host:port``; ``stop()`` kills it and every session it serves.

    Files under ``root``: ``ssh_host_ed25519_key`` (+ ``.pub``; an existing key is kept), ``known_hosts``,
    ``authorized_keys``, ``sshd_config``, ``sshd.log``. ``work_dir`` (default ``root/board``) is created.
    """

    def __init__(
        self,
        root: Path,
        host: str,
        client: ClientKey,
        port: int | None = None,
        work_dir: Path | None = None,
        sshd_path: str | os.PathLike[str] = SSHD,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port or free_port(host)
        self.user = getpass.getuser()
        self.key_file = client.private
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.host_pub = self.root / "ssh_host_ed25519_key.pub"
        self.known_hosts = self.root / "known_hosts"
        self.work_dir = Path(work_dir) if work_dir is not None else self.root / "board"
        self.log = self.root / "sshd.log"
        self.config = self.root / "sshd_config"
        self.sshd_path = str(sshd_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None  # adopted from another process (see adopt())

        self.root.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not (self.host_key.is_file() and self.host_pub.is_file()):
            keygen(self.host_key, f"farm-host-{host}")
        authorized = self.root / "authorized_keys"
        authorized.write_text(client.public.read_text())
        self.known_hosts.write_text(f"[{host}]:{self.port} {self.host_key_line}\n")
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {host}",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
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
                    # boards independent of this machine's root ~/.bashrc (pyenv init there costs ~150 ms).
                    "SetEnv SHLVL=1",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )

    @property
    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid if self.proc.poll() is None else None
        return self._pid if self._pid and pid_alive(self._pid) else None

    @property
    def host_key_line(self) -> str:
        """``type base64`` of this server's public host key."""
        return " ".join(self.host_pub.read_text().split()[:2])

    @property
    def markers(self) -> list[str]:
        """Paths whose mention in a command line marks a process as this board's."""
        found = [f"{self.root}/"]
        if not str(self.work_dir).startswith(found[0]):
            found.append(f"{self.work_dir}/")
        return found

    def adopt(self, pid: int | None) -> bool:
        """Take over a server an earlier process started (``farm lab up`` run again): true when ``pid`` is
        alive and is this server (its command line names our config)."""
        if serves(pid, self.config):
            self._pid = pid
            return True
        return False

    def banner_ok(self, timeout_s: float = 2.0) -> bool:
        """Whether something at host:port answers with an SSH banner."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout_s) as sock:
                sock.settimeout(timeout_s)
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def start(self, timeout_s: float = 10.0) -> SshdServer:
        """Start (or start again) on the same address, port and host key; returns once the banner arrives."""
        if self.pid is not None:
            return self
        with contextlib.suppress(OSError):  # sshd's privilege separation directory (sshd says if it lacks it)
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.sshd_path, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if self.banner_ok(timeout_s=1):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd on {self.host}:{self.port} not ready:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server and every process it started (sessions, their commands): a board going down."""
        if self.proc is None and self._pid is None:
            return
        pid = self.pid
        # Commands whose session already ended were reparented away from sshd: find them by our paths.
        stop_sshd(pid, self.config, self.markers)
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self.proc = None
        self._pid = None

    def __repr__(self) -> str:
        return f"SshdServer({self.host}:{self.port}, pid={self.pid})"


def keep_or_start(
    root: Path,
    host: str,
    client: ClientKey,
    *,
    port: int | None,
    pid: int | None,
    work_dir: Path,
    sshd_path: str,
) -> tuple[SshdServer, bool]:
    """A lab's sshd kept if it runs (same address, port, host key), else started, on the same port when
    that is still free. Returns the server and whether it was started now; RuntimeError if it cannot."""
    if port:
        server = SshdServer(root, host, client, port=port, work_dir=work_dir, sshd_path=sshd_path)
        if server.adopt(pid):
            return server, False
        if not port_free(host, port):
            port = None  # someone else took it: a new port (and known_hosts line)
    server = SshdServer(root, host, client, port=port, work_dir=work_dir, sshd_path=sshd_path)
    return server.start(), True


def stop_server(pid: int | None, root: Path | str, markers: Iterable[str]) -> bool:
    """Stop a lab's sshd under ``root`` (and what its sessions left, by ``markers``); whether it was up."""
    config = Path(root) / "sshd_config"
    was_up = serves(pid, config)
    stop_sshd(pid, config, markers)
    return was_up
