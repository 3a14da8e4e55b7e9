"""One SSH connection (fabric, paramiko underneath) with the farm's security rules: commands and SFTP.

One connection per object, reused for every command, SFTP transfer and channel, reopened transparently
when it dropped. Security rules:

* Host keys are verified against the farm's own known_hosts file only (never ``~/.ssh/known_hosts``,
  never ``~/.ssh/config``), with paramiko's ``RejectPolicy``: an unknown or changed key is a
  :class:`HostKeyError` telling the operator to run ``farm fleet trust``: a fault of that board (it goes
  bad and its job moves to another board), never a reason to accept the key.
* Authentication is by the configured key file only (no agent, no ``~/.ssh/id_*`` discovery).
* Every remote command line is built from validated, quoted parts (:mod:`farm.transport.remote`).

What travels over the connection is built on top: :class:`farm.transport.ssh_host.SshHost` (files and
guarded commands, for compile hosts) and :class:`farm.transport.ssh.SshTransport` (a board's agent).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
from typing import Any

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.hostkeys import InvalidHostKey

from farm.errors import FarmError, InfraError
from farm.transport.hostkeys import HostKeyError, fingerprint_sha256, known_hosts_name
from farm.transport.remote import quote_argv

__all__ = ["HOUSEKEEPING_TIMEOUT_S", "SshConnection"]

log = logging.getLogger(__name__)

#: Time allowed for small housekeeping commands (hashing, killing).
HOUSEKEEPING_TIMEOUT_S = 60.0
#: How long a command waits for its timeout timer's channel close (it takes milliseconds).
TIMER_JOIN_S = 10.0


class _WholeStream(io.StringIO):
    """stdin for fabric's ``run``: invoke reads a non-tty stream 1 character per 10 ms poll (a 2 KB config
    would take 20 s); hand it everything at once instead."""

    def read(self, size: int | None = -1) -> str:
        return super().read()


class _Remote(Remote):
    """fabric's runner, returning only once its timeout timer has finished. The timer closes the channel
    from its own thread; without the join a timed-out command could come back (and its caller go on to
    kill the run or close the connection) while that thread is still writing to the transport."""

    def stop(self) -> None:
        timer = self._timer
        super().stop()  # cancels a timer that has not fired, closes the channel
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=TIMER_JOIN_S)


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, message: str, key: paramiko.PKey) -> None:
        super().__init__(message)
        self.key = key


class _RejectUnknown(paramiko.RejectPolicy):
    """RejectPolicy, with an exception type we can tell apart from other SSH failures (and the key offered)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(f"no host key for {hostname} in the farm's known_hosts", key)


class SshConnection:
    """A host over SSH. Construct from plain values (the inventory's); connects lazily on first use.

    ``name`` is the host's inventory name, used in messages (``farm fleet trust <name>``). Subclasses that
    keep state about the host extend :meth:`_drop`, which runs whenever the connection is given up.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key_file: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str],
        connect_timeout_s: float = 10,
        *,
        name: str | None = None,
        keepalive_s: int = 30,
        role: str = "board",
    ) -> None:
        if not host or any(c in host for c in "\x00\n\r\t /@"):
            raise FarmError(f"invalid SSH host {host!r}")
        self.host = host
        self.port = int(port)
        self.user = user
        self.key_file = str(key_file)
        self.known_hosts = str(known_hosts)
        self.connect_timeout_s = float(connect_timeout_s)
        self.name = name or host
        self.role = role  # what the host is, in messages: "board", "compile host"
        self.keepalive_s = keepalive_s
        #: How many times an SSH connection was opened (1 + reconnects).
        self.connects = 0
        self._conn: Connection | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ connection

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.user or ''}@{self.host}:{self.port})"

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def paramiko_transport(self) -> paramiko.Transport | None:
        """The live paramiko Transport (None before the first connect or after close)."""
        return self._conn.client.get_transport() if self._conn is not None else None

    @property
    def connected(self) -> bool:
        """Is a connection open right now (what was learnt about the host over it still holds)?"""
        return self._conn is not None and self._conn.is_connected

    def _where(self) -> str:
        return f"{self.role} {self.name} ({known_hosts_name(self.host, self.port)})"

    def _new_connection(self) -> Connection:
        config = Config(
            lazy=True,  # no /etc/fabric.yml, ~/.fabric.yml
            ssh_config=paramiko.SSHConfig(),  # explicit empty config: no ~/.ssh/config, /etc/ssh/ssh_config
            overrides={"forward_agent": False, "load_ssh_configs": False, "runners": {"remote": _Remote}},
        )
        conn = Connection(
            self.host,
            user=self.user,
            port=self.port,
            config=config,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            forward_agent=False,
            connect_kwargs={
                "key_filename": self.key_file,
                "look_for_keys": False,
                "allow_agent": False,
                "banner_timeout": self.connect_timeout_s,
                "auth_timeout": self.connect_timeout_s,
            },
        )
        client = conn.client
        client.set_missing_host_key_policy(_RejectUnknown())
        # Only the farm's known_hosts; loaded into the client's own table (no filename kept, never saved).
        try:
            client.get_host_keys().load(self.known_hosts)
        except FileNotFoundError:
            raise HostKeyError(
                f"{self._where()}: known_hosts file {self.known_hosts} does not exist: "
                f"run `farm fleet trust {self.name}` to pin the board's host key"
            ) from None
        except InvalidHostKey as exc:
            raise HostKeyError(
                f"known_hosts file {self.known_hosts} has a malformed line: {exc.line!r}"
            ) from None
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise HostKeyError(f"cannot read known_hosts file {self.known_hosts}: {exc}") from None
        return conn

    def _connection(self) -> Connection:
        """The open connection, (re)connecting if there is none or it dropped."""
        if self._conn is not None and self._conn.is_connected:
            return self._conn
        self._drop()
        conn = self._new_connection()
        try:
            conn.open()
        except BaseException as exc:
            conn.close()
            raise self._connect_error(exc) from None
        transport = conn.client.get_transport()
        if transport is not None and self.keepalive_s:
            transport.set_keepalive(self.keepalive_s)
        self._conn = conn
        self.connects += 1
        log.info("connected to %s as %s", self._where(), conn.user)
        return conn

    def _connect_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, FarmError | KeyboardInterrupt | SystemExit):
            return exc
        trust = f"run `farm fleet trust {self.name}` after checking the key on the board"
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyError(
                f"{self._where()}: host key MISMATCH: the board presented {exc.key.get_name()} "
                f"{fingerprint_sha256(exc.key)} but {self.known_hosts} pins {fingerprint_sha256(exc.expected_key)}. "
                f"The board was reinstalled, or something is intercepting the connection; if the new key "
                f"is legitimate, {trust}"
            )
        if isinstance(exc, _UnknownHostKey):
            return HostKeyError(
                f"{self._where()}: host key is not in {self.known_hosts} (the board offers "
                f"{exc.key.get_name()} {fingerprint_sha256(exc.key)}): {trust}"
            )
        if isinstance(exc, paramiko.SSHException) and "host key" in str(exc).lower():
            return HostKeyError(f"{self._where()}: host key negotiation failed ({exc}): {trust}")
        if isinstance(exc, paramiko.AuthenticationException):
            return InfraError(f"{self._where()}: SSH authentication as {self.user!r} failed: {exc}")
        if isinstance(exc, socket.timeout | TimeoutError):
            return InfraError(f"{self._where()}: SSH connection timed out after {self.connect_timeout_s:g} s")
        if isinstance(exc, OSError | paramiko.SSHException | EOFError):
            return InfraError(f"{self._where()}: cannot connect over SSH: {exc or type(exc).__name__}")
        return exc

    def _drop(self) -> None:
        """Forget the current connection (closing it); the next call reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # it is already broken
                log.debug("closing a dead connection to %s failed", self._where(), exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ------------------------------------------------------------------ commands

    def _run(self, command: str, timeout_s: float, stdin: str = "") -> tuple[int, str, str]:
        """Run one command line (already quoted); raises CommandTimedOut on timeout, InfraError if the
        connection is lost. Reconnects and retries once when a session cannot even be opened."""
        for attempt in (1, 2):
            conn = self._connection()
            started = time.monotonic()
            try:
                result = conn.run(
                    command,
                    in_stream=_WholeStream(stdin),
                    hide=True,
                    warn=True,
                    pty=False,
                    encoding="utf-8",
                    timeout=timeout_s,
                )
            except CommandTimedOut:
                raise
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self._session_failed(exc, last=attempt == 2)
                continue
            except ThreadException as exc:
                self._drop()
                raise InfraError(f"{self._where()}: SSH I/O failed during a command: {exc}") from None
            if result.exited == -1 and time.monotonic() - started >= timeout_s:
                # invoke's timeout closes the channel from a timer thread and reports a timeout only once
                # that thread has finished: under load the command can come back first, as "no exit
                # status" (-1). Past the deadline, that is the timeout.
                raise CommandTimedOut(result, timeout_s)
            if result.exited == -1 and not conn.is_connected:
                self._drop()
                raise InfraError(f"{self._where()}: SSH connection lost while a command was running")
            return result.exited, result.stdout, result.stderr
        raise AssertionError("unreachable")

    def exec(self, argv: list[str], timeout_s: float = HOUSEKEEPING_TIMEOUT_S) -> tuple[int, str, str]:
        """Run ``argv`` on the host (each word quoted: it arrives as given); returns (rc, stdout, stderr).

        rc is -1 when the command was killed by a signal. A timeout closes the session and raises
        InfraError (use it for short health checks: a command that ignores its closed pipes may linger).
        """
        command = quote_argv(argv)
        with self._lock:
            try:
                return self._run(command, timeout_s)
            except CommandTimedOut:
                raise InfraError(
                    f"{self._where()}: command {argv[0]!r} did not finish within {timeout_s:g} s"
                ) from None

    def _shell(self, command: str, timeout_s: float = HOUSEKEEPING_TIMEOUT_S) -> tuple[int, str, str]:
        try:
            return self._run(command, timeout_s)
        except CommandTimedOut:
            raise InfraError(
                f"{self._where()}: housekeeping command timed out after {timeout_s:g} s"
            ) from None

    def _open_channel(self, command: str) -> paramiko.Channel:
        """Start ``command`` on a channel of its own (the caller reads and writes it, and closes it).
        Reconnects and retries once when the channel cannot even be opened."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                transport = conn.client.get_transport()
                if transport is None:
                    raise paramiko.SSHException("no transport")
                channel = transport.open_session(timeout=self.connect_timeout_s)
                channel.exec_command(command)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self._session_failed(exc, last=attempt == 2)
                continue
            return channel
        raise AssertionError("unreachable")

    def _session_failed(self, exc: BaseException, *, last: bool) -> None:
        """Could not open a session or start a command: nothing ran remotely, so a retry on a new connection
        is safe; the last attempt (or a changed host key) raises the connection error instead."""
        self._drop()
        if last or isinstance(exc, paramiko.BadHostKeyException):
            raise self._connect_error(exc) from None
        log.info("SSH session to %s failed (%s): reconnecting", self._where(), exc)

    # ------------------------------------------------------------------ SFTP

    def _sftp(self) -> paramiko.SFTPClient:
        conn = self._connection()
        try:
            return conn.sftp()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self._drop()
            raise InfraError(f"{self._where()}: cannot open SFTP: {exc}") from None

    def _sftp_call(self, what: str, fn: Any, *args: Any, missing_ok: bool = False) -> Any:
        """``fn(*args)`` with SFTP failures as InfraError (FileNotFoundError passes through if missing_ok)."""
        try:
            return fn(*args)
        except FileNotFoundError:
            if missing_ok:
                raise
            raise InfraError(f"{self._where()}: SFTP {what} failed: no such file") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            lost = not self.connected or isinstance(exc, EOFError) or "connection dropped" in str(exc).lower()
            if not self.connected:
                self._drop()
            detail = f"connection lost ({exc})" if lost else str(exc)
            raise InfraError(f"{self._where()}: SFTP {what} failed: {detail}") from None
