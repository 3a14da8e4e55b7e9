"""SSH transport: the board is a Linux machine reached with fabric (paramiko underneath).

One SSH connection per transport, reused for every command and SFTP transfer, reopened transparently
when it dropped. Security rules:

* Host keys are verified against the farm's own known_hosts file only (never ``~/.ssh/known_hosts``,
  never ``~/.ssh/config``), with paramiko's ``RejectPolicy``: an unknown or changed key is a
  :class:`HostKeyError` (configuration, not retried) telling the operator to run ``farm fleet trust``.
* Authentication is by the configured key file only (no agent, no ``~/.ssh/id_*`` discovery).
* Every remote command line is built from validated, quoted parts (:mod:`farm.transport.remote`).

Remote layout under ``work_dir``::

    agent/<agent-hash>/...           the agent directory; .complete (holding the hash) is written last
    artifacts/<key>/model.onnx       one compiled artifact (renamed into place after a verified upload)
    run/<uuid>.pid                   process group of a running agent (removed when it ends)

The agent runs under a small guard (:data:`_GUARD`): it puts the agent in its own process group, records
that group in ``run/<uuid>.pid`` and kills the whole group if it outlives ``timeout_s + grace``, so a hung
agent dies even when the connection to the board is gone. On a timeout seen from this side the transport
kills the group itself right away and raises :class:`InfraError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.hostkeys import InvalidHostKey

from farm.artifacts import MODEL_FILE, sha256_file
from farm.errors import FarmError, InfraError
from farm.transport.base import AgentOutcome, Transport
from farm.transport.hostkeys import HostKeyError, fingerprint_sha256, known_hosts_name
from farm.transport.remote import (
    UnsafeRemoteValue,
    quote_arg,
    quote_argv,
    remote_join,
    validate_remote_path,
    validate_sha256,
)
from workers.agent import AGENT_DIR

__all__ = ["HostKeyError", "SshTransport", "agent_hash"]

log = logging.getLogger(__name__)

AGENT_SCRIPT_NAME = "farm_agent.py"
COMPLETE_MARKER = ".complete"
#: Extra seconds the board-side guard waits past the run timeout before killing the agent itself.
GUARD_GRACE_S = 15.0
#: Time allowed for small housekeeping commands (hashing, killing).
HOUSEKEEPING_TIMEOUT_S = 60.0

# Runs on the board (Python >= 3.5; boards have old distributions):
#   python3 -c GUARD <pidfile> <limit_s> <argv...>
# New process group (pgid == our pid), recorded in <pidfile>; the agent is our child; the whole group is
# SIGKILLed if the agent outlives <limit_s>. Exit status: the agent's, or 128 + signal.
_GUARD = r"""
import os, signal, sys
pidfile, limit, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
try:
    os.setsid()
except OSError:
    pass
if os.getpgrp() != os.getpid():
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
try:
    os.makedirs(os.path.dirname(pidfile))
except OSError:
    pass
with open(pidfile, "w") as fh:
    fh.write("%d\n" % os.getpgrp())
pid = os.fork()
if pid == 0:
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; exec would keep that
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
def _expire(signum, frame):
    try:  # stderr is gone when the SSH connection is: never let that stop the kill
        sys.stderr.write("farm guard: agent still running after %.0f s: killing its process group\n" % limit)
        sys.stderr.flush()
    except Exception:
        pass
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGALRM, _expire)
signal.setitimer(signal.ITIMER_REAL, limit)
status = os.waitpid(pid, 0)[1]
signal.setitimer(signal.ITIMER_REAL, 0)
try:
    os.unlink(pidfile)
except OSError:
    pass
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
""".strip()

# sha256 of one file on the board, for boards without coreutils' sha256sum.
_PY_SHA256 = (
    "import hashlib,sys\n"
    "h=hashlib.sha256()\n"
    "with open(sys.argv[1],'rb') as f:\n"
    " for b in iter(lambda:f.read(1<<20),b''):h.update(b)\n"
    "print(h.hexdigest())"
)


class _WholeStream(io.StringIO):
    """stdin for fabric's ``run``: invoke reads a non-tty stream 1 character per 10 ms poll (a 2 KB config
    would take 20 s); hand it everything at once instead."""

    def read(self, size: int | None = -1) -> str:
        return super().read()


class _UnknownHostKey(paramiko.SSHException):
    pass


class _RejectUnknown(paramiko.RejectPolicy):
    """RejectPolicy, with an exception type we can tell apart from other SSH failures."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(f"no host key for {hostname} in the farm's known_hosts")


def agent_hash(agent_dir: str | os.PathLike[str]) -> str:
    """sha256 over the sorted relative paths and bytes of the agent's ``*.py`` files (``__pycache__`` skipped)."""
    return hashlib.sha256(b"".join(_agent_digest_parts(_agent_files(Path(agent_dir))))).hexdigest()


def _agent_files(root: Path) -> list[tuple[str, Path]]:
    files = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or not path.is_file():
            continue
        files.append((rel.as_posix(), path))
    return sorted(files)


def _agent_digest_parts(files: list[tuple[str, Path]]) -> list[bytes]:
    parts = []
    for rel, path in files:
        data = path.read_bytes()
        # Length-prefixed, so no two different trees hash the same.
        parts.append(f"{len(rel)}:{rel}:{len(data)}:".encode())
        parts.append(data)
    return parts


class SshTransport(Transport):
    """A board over SSH. Construct from plain values (the inventory's); connects lazily on first use.

    ``agent_dir`` is the local agent directory to ship (tests pass a fake one). ``name`` is the board's
    inventory name, used in messages (``farm fleet trust <name>``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key_file: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str],
        work_dir: str,
        connect_timeout_s: float = 10,
        python: str = "python3",
        *,
        agent_dir: str | os.PathLike[str] = AGENT_DIR,
        name: str | None = None,
        keepalive_s: int = 30,
    ) -> None:
        if not host or any(c in host for c in "\x00\n\r\t /@"):
            raise FarmError(f"invalid SSH host {host!r}")
        self.host = host
        self.port = int(port)
        self.user = user
        self.key_file = str(key_file)
        self.known_hosts = str(known_hosts)
        self.work_dir = validate_remote_path(work_dir)
        self.connect_timeout_s = float(connect_timeout_s)
        quote_arg(python)  # rejects NUL; the word is always quoted where it is used
        self.python = python
        self.agent_dir = Path(agent_dir)
        self.name = name or host
        self.keepalive_s = keepalive_s

        #: Bytes of artifacts sent to the board / artifact uploads skipped because the board had them.
        self.bytes_uploaded = 0
        self.uploads_skipped = 0
        #: The same for the agent directory.
        self.agent_bytes_uploaded = 0
        self.agent_uploads_skipped = 0
        #: How many times an SSH connection was opened (1 + reconnects).
        self.connects = 0

        self._conn: Connection | None = None
        self._lock = threading.RLock()
        self._agent_script: str | None = None  # remote script path, once ensured on this connection
        self._local_sha_cache: dict[tuple[str, int, int], str] = {}
        # Artifacts checked (or uploaded) on the board over the current connection. A board is held by one
        # worker, and the agent verifies the sha256 itself before loading, so they are not hashed again.
        self._verified: set[str] = set()

    # ------------------------------------------------------------------ connection

    def __repr__(self) -> str:
        return f"SshTransport({self.name}: {self.user or ''}@{self.host}:{self.port})"

    def __enter__(self) -> SshTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def paramiko_transport(self) -> paramiko.Transport | None:
        """The live paramiko Transport (None before the first connect or after close)."""
        return self._conn.client.get_transport() if self._conn is not None else None

    def _where(self) -> str:
        return f"board {self.name} ({known_hosts_name(self.host, self.port)})"

    def _new_connection(self) -> Connection:
        config = Config(
            lazy=True,  # no /etc/fabric.yml, ~/.fabric.yml
            ssh_config=paramiko.SSHConfig(),  # explicit empty config: no ~/.ssh/config, /etc/ssh/ssh_config
            overrides={"forward_agent": False, "load_ssh_configs": False},
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
            return HostKeyError(f"{self._where()}: host key is not in {self.known_hosts}: {trust}")
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
        self._agent_script = None  # the board may have changed while we were away
        self._verified.clear()
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
                # Could not open a session / start the command: nothing ran remotely, so retrying is safe.
                self._drop()
                if attempt == 2 or isinstance(exc, paramiko.BadHostKeyException):
                    raise self._connect_error(exc) from None
                log.info("SSH session to %s failed (%s): reconnecting", self._where(), exc)
                continue
            except ThreadException as exc:
                self._drop()
                raise InfraError(f"{self._where()}: SSH I/O failed during a command: {exc}") from None
            if result.exited == -1 and not conn.is_connected:
                self._drop()
                raise InfraError(f"{self._where()}: SSH connection lost while a command was running")
            return result.exited, result.stdout, result.stderr
        raise AssertionError("unreachable")

    def exec(self, argv: list[str], timeout_s: float = HOUSEKEEPING_TIMEOUT_S) -> tuple[int, str, str]:
        """Run ``argv`` on the board (each word quoted: it arrives as given); returns (rc, stdout, stderr).

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

    # ------------------------------------------------------------------ sftp helpers

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
            if self._conn is None or not self._conn.is_connected:
                self._drop()
            raise InfraError(f"{self._where()}: SFTP {what} failed: {exc}") from None

    def _makedirs(self, sftp: paramiko.SFTPClient, path: str) -> None:
        """``mkdir -p`` over SFTP."""
        missing = []
        current = path
        while current not in ("/", ""):
            try:
                self._sftp_call("stat", sftp.stat, current, missing_ok=True)
                break
            except FileNotFoundError:
                missing.append(current)
                current = posixpath.dirname(current)
        for directory in reversed(missing):
            try:
                self._sftp_call("mkdir", sftp.mkdir, directory)
            except InfraError:
                # Created concurrently by someone else? Then it exists now.
                self._sftp_call("stat", sftp.stat, directory)

    def _read_small(self, sftp: paramiko.SFTPClient, path: str) -> str | None:
        try:
            with sftp.open(path, "r") as fh:
                return fh.read(4096).decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise InfraError(f"{self._where()}: SFTP read of {path} failed: {exc}") from None

    def _rename(self, sftp: paramiko.SFTPClient, src: str, dst: str) -> None:
        """Atomic replace (posix-rename@openssh.com; ``mv -f`` where the server lacks it)."""
        try:
            sftp.posix_rename(src, dst)
        except (OSError, paramiko.SSHException):
            rc, _, err = self._shell(quote_argv(["mv", "-f", "--", src, dst]))
            if rc != 0:
                raise InfraError(f"{self._where()}: cannot move {src} to {dst}: {err.strip()}") from None

    def _remove_quietly(self, sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            sftp.remove(path)
        except (OSError, paramiko.SSHException):
            log.debug("could not remove %s on %s", path, self._where())

    def _remote_sha256(self, path: str) -> str | None:
        """sha256 of a board file, computed on the board (None if the file does not exist)."""
        quoted = quote_arg(path)
        command = (
            f"if [ -f {quoted} ]; then "
            f"sha256sum -- {quoted} 2>/dev/null || {quote_arg(self.python)} -c {quote_arg(_PY_SHA256)} {quoted}; "
            f"else exit 3; fi"
        )
        rc, out, err = self._shell(command)
        if rc == 3:
            return None
        digest = out.split()[0] if out.split() else ""
        if rc != 0 or len(digest) != 64:
            raise InfraError(
                f"{self._where()}: cannot hash {path} on the board: {err.strip() or out.strip()}"
            )
        return digest.lower()

    def _local_sha256(self, path: Path) -> str:
        st = path.stat()
        cache_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        digest = self._local_sha_cache.get(cache_key)
        if digest is None:
            digest = self._local_sha_cache[cache_key] = sha256_file(path)
        return digest

    # ------------------------------------------------------------------ agent

    def ensure_agent(self) -> str:
        """The remote path of the agent script, uploading the agent directory first if the board lacks it."""
        with self._lock:
            if self._agent_script is not None and self._conn is not None and self._conn.is_connected:
                return self._agent_script
            files = _agent_files(self.agent_dir)
            if not any(rel == AGENT_SCRIPT_NAME for rel, _ in files):
                raise FarmError(f"{self.agent_dir} has no {AGENT_SCRIPT_NAME}")
            digest = hashlib.sha256(b"".join(_agent_digest_parts(files))).hexdigest()
            remote_dir = remote_join(self.work_dir, "agent", digest)
            script = posixpath.join(remote_dir, AGENT_SCRIPT_NAME)
            sftp = self._sftp()
            marker = posixpath.join(remote_dir, COMPLETE_MARKER)
            if (self._read_small(sftp, marker) or "").strip() == digest:
                self.agent_uploads_skipped += 1
            else:
                log.info("uploading the agent (%s) to %s:%s", digest[:12], self._where(), remote_dir)
                sent = 0
                for directory in sorted(
                    {posixpath.dirname(posixpath.join(remote_dir, rel)) for rel, _ in files}
                ):
                    self._makedirs(sftp, directory)
                for rel, path in files:
                    target = posixpath.join(remote_dir, rel)
                    self._sftp_call("upload", sftp.put, str(path), target)
                    sent += path.stat().st_size
                tmp_marker = f"{marker}.{uuid.uuid4().hex}.tmp"
                with self._sftp_open_write(sftp, tmp_marker) as fh:
                    fh.write(digest + "\n")
                self._rename(sftp, tmp_marker, marker)
                self.agent_bytes_uploaded += sent
            self._makedirs(sftp, remote_join(self.work_dir, "run"))
            self._agent_script = script
            return script

    def _sftp_open_write(self, sftp: paramiko.SFTPClient, path: str) -> Any:
        try:
            return sftp.open(path, "w")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise InfraError(f"{self._where()}: cannot write {path}: {exc}") from None

    # ------------------------------------------------------------------ artifacts

    def invalidate(self, key: str) -> None:
        """Check this artifact on the board again next time (the agent found its sha256 wrong)."""
        self._verified.discard(key)

    def artifact_path(self, key: str, local_path: Path) -> str:
        """``<work_dir>/artifacts/<key>/model.onnx`` on the board, uploaded (and verified) unless it is
        already there with the same sha256."""
        validate_sha256(key)
        local_path = Path(local_path)
        with self._lock:
            local_sha = self._local_sha256(local_path)
            size = local_path.stat().st_size
            remote_dir = remote_join(self.work_dir, "artifacts", key)
            final = posixpath.join(remote_dir, MODEL_FILE)
            if key in self._verified and self._conn is not None and self._conn.is_connected:
                self.uploads_skipped += 1
                return final
            sftp = self._sftp()
            try:
                remote_size = self._sftp_call("stat", sftp.stat, final, missing_ok=True).st_size
            except FileNotFoundError:
                remote_size = None
            if remote_size == size and self._remote_sha256(final) == local_sha:
                self.uploads_skipped += 1
                self._verified.add(key)
                log.debug("artifact %s already on %s", key[:12], self._where())
                return final
            if remote_size is not None:
                log.warning(
                    "artifact %s on %s differs from the local copy: uploading again", key[:12], self._where()
                )
            self._makedirs(sftp, remote_dir)
            tmp = posixpath.join(remote_dir, f".{MODEL_FILE}.{uuid.uuid4().hex}.tmp")
            log.info("uploading artifact %s (%d bytes) to %s", key[:12], size, self._where())
            try:
                self._sftp_call("upload", sftp.put, str(local_path), tmp)
                self.bytes_uploaded += size
                remote_sha = self._remote_sha256(tmp)
                if remote_sha != local_sha:
                    raise InfraError(
                        f"{self._where()}: corrupt upload of artifact {key[:12]}: sha256 on the board is "
                        f"{remote_sha}, expected {local_sha}"
                    )
                self._rename(sftp, tmp, final)
                self._verified.add(key)
            except BaseException:
                if self._conn is not None and self._conn.is_connected:
                    self._remove_quietly(sftp, tmp)
                raise
            return final

    # ------------------------------------------------------------------ agent runs

    def run_agent(self, config: dict[str, Any], timeout_s: float) -> AgentOutcome:
        """``python3 <agent>/farm_agent.py --config -`` with ``config`` as JSON on stdin.

        A run that outlives ``timeout_s`` has its whole process group killed on the board; InfraError.
        """
        payload = json.dumps(config)
        with self._lock:
            script = self.ensure_agent()
            pidfile = remote_join(self.work_dir, "run", f"{uuid.uuid4().hex}.pid")
            command = quote_argv(
                [
                    self.python,
                    "-c",
                    _GUARD,
                    pidfile,
                    f"{timeout_s + GUARD_GRACE_S:g}",
                    self.python,
                    script,
                    "--config",
                    "-",
                ]
            )
            try:
                rc, out, err = self._run(command, timeout_s, stdin=payload)
            except CommandTimedOut:
                killed = self._kill_run(pidfile)
                raise InfraError(
                    f"{self._where()}: agent hung (no result within {timeout_s:g} s): "
                    + ("killed its process group" if killed else f"could not kill it now ({killed.reason})")
                    + (
                        ""
                        if killed
                        else f"; the board-side guard kills it after {timeout_s + GUARD_GRACE_S:g} s"
                    )
                ) from None
            return AgentOutcome(rc, out, err)

    def log_dir(self, local_data_dir: Path, sweep_id: str, job_name: str) -> str:
        """LoadGen logs stay on the board under <work_dir>/runs (the agent creates the folder)."""
        return remote_join(self.work_dir, "runs", sweep_id, job_name)  # each name validated

    def agent_health(self, backend: str, timeout_s: float) -> AgentOutcome:
        """``python3 <agent>/farm_agent.py --health BACKEND`` (the agent is shipped first if needed)."""
        with self._lock:
            script = self.ensure_agent()
            rc, out, err = self.exec([self.python, script, "--health", backend], timeout_s)
            return AgentOutcome(rc, out, err)

    def _kill_run(self, pidfile: str) -> _KillResult:
        quoted = quote_arg(pidfile)
        # The pid file holds the process group id (digits only; checked before use).
        command = (
            f'p=$(cat {quoted} 2>/dev/null); case "$p" in ""|*[!0-9]*) exit 4;; esac; '
            f'kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; rm -f {quoted}; exit 0'
        )
        try:
            rc, _, err = self._shell(command, timeout_s=min(HOUSEKEEPING_TIMEOUT_S, 10.0))
        except InfraError as exc:
            return _KillResult(False, str(exc))
        if rc == 4:
            return _KillResult(False, "the agent never recorded its process group")
        if rc != 0:
            return _KillResult(False, err.strip() or f"exit status {rc}")
        log.warning("killed a hung agent on %s", self._where())
        return _KillResult(True, "")

    # ------------------------------------------------------------------ generic files and commands
    # (compile jobs on Docker hosts: workers/toolchains/runners)

    def upload(self, local_path: str | os.PathLike[str], remote_path: str) -> str:
        """Copy a local file to ``remote_path`` (parent folders made), verified by sha256 on the board, then
        renamed into place: the path never holds a partial or corrupt file. Returns the sha256."""
        validate_remote_path(remote_path)
        local_path = Path(local_path)
        with self._lock:
            local_sha = sha256_file(local_path)
            size = local_path.stat().st_size
            sftp = self._sftp()
            parent, name = posixpath.split(remote_path)
            self._makedirs(sftp, parent)
            tmp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
            try:
                self._sftp_call("upload", sftp.put, str(local_path), tmp)
                remote_sha = self._remote_sha256(tmp)
                if remote_sha != local_sha:
                    raise InfraError(
                        f"{self._where()}: corrupt upload of {local_path.name}: sha256 on the board is "
                        f"{remote_sha}, expected {local_sha}"
                    )
                self._rename(sftp, tmp, remote_path)
            except BaseException:
                if self._conn is not None and self._conn.is_connected:
                    self._remove_quietly(sftp, tmp)
                raise
            self.bytes_uploaded += size
            return local_sha

    def download(self, remote_path: str, local_path: str | os.PathLike[str]) -> str:
        """Copy a board file to ``local_path``, verified against its sha256 computed on the board, then
        renamed into place (a mismatch is InfraError and leaves nothing behind). Returns the sha256."""
        validate_remote_path(remote_path)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.with_name(f".{local_path.name}.{uuid.uuid4().hex}.tmp")
        with self._lock:
            sftp = self._sftp()
            try:
                self._sftp_call(f"download of {remote_path}", sftp.get, remote_path, str(tmp))
                local_sha = sha256_file(tmp)
                remote_sha = self._remote_sha256(remote_path)
                if remote_sha != local_sha:
                    raise InfraError(
                        f"{self._where()}: corrupt download of {remote_path}: sha256 on the board is "
                        f"{remote_sha}, the copy received has {local_sha}"
                    )
                os.replace(tmp, local_path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return local_sha

    def remove_tree(self, remote_path: str) -> None:
        """``rm -rf`` a folder strictly inside ``work_dir`` (anything else is refused)."""
        validate_remote_path(remote_path)
        root = self.work_dir.rstrip("/") + "/"
        if not remote_path.startswith(root) or remote_path == root:
            raise UnsafeRemoteValue(f"refusing to remove {remote_path!r}: not inside the work dir {root}")
        with self._lock:
            rc, _, err = self._shell(quote_argv(["rm", "-rf", "--", remote_path]))
            if rc != 0:
                raise InfraError(f"{self._where()}: cannot remove {remote_path}: {err.strip()}")

    def run_guarded(
        self, argv: list[str], timeout_s: float, stdin: str = "", what: str = "command"
    ) -> tuple[int, str, str]:
        """Run ``argv`` under the board-side guard (:data:`_GUARD`), as ``run_agent`` runs the agent: its own
        process group, killed from here on a timeout (InfraError) and by the guard itself ``GUARD_GRACE_S``
        later if the connection is gone. Returns (rc, stdout, stderr)."""
        with self._lock:
            pidfile = remote_join(self.work_dir, "run", f"{uuid.uuid4().hex}.pid")
            command = quote_argv(
                [self.python, "-c", _GUARD, pidfile, f"{timeout_s + GUARD_GRACE_S:g}", *argv]
            )
            try:
                return self._run(command, timeout_s, stdin=stdin)
            except CommandTimedOut:
                killed = self._kill_run(pidfile)
                raise InfraError(
                    f"{self._where()}: {what} did not finish within {timeout_s:g} s: "
                    + ("killed its process group" if killed else f"could not kill it now ({killed.reason})")
                ) from None


@dataclass(frozen=True)
class _KillResult:
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok
