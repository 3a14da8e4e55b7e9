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
    artifacts/<key>/<file name>      one content-addressed file under its local name: a compiled artifact
                                     (model.onnx), a dataset or reference pack (dataset.npz,
                                     reference.npz); renamed into place after a verified upload
    run/<uuid>.pid                   process group of a running agent (removed when it ends)

The agent runs under a small guard (:data:`_GUARD`): it puts the agent in its own process group, records
that group in ``run/<uuid>.pid`` and kills the whole group if it outlives ``timeout_s + grace``, so a hung
agent dies even when the connection to the board is gone. On a timeout seen from this side the transport
kills the group itself right away and raises :class:`InfraError`.

Agent sessions: an agent whose ``farm_agent.py`` carries :data:`SERVE_PROTOCOL` runs job after job in one
process (``farm_agent.py --config - --serve``) on one SSH channel of the connection, so a job costs one
line each way instead of an SSH session, an interpreter start and the runtime imports. The session is
started at the first ``run_agent`` and again after a hang, a crash, a reconnect or an agent update. Its
guard (:data:`_SESSION_GUARD`) owns the process group (pid file as above), enforces ``timeout_s + grace``
per job only (an idle session lives on), and kills the group as soon as the channel closes or the
connection drops, so closing the transport or losing the farm side never leaves an agent behind. Other
agents (older ones, test doubles) still run once per job.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import posixpath
import queue
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.hostkeys import InvalidHostKey

from farm.artifacts import sha256_file
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

# Both guards start the same way: a new session and process group (pgid == the guard's pid) whose id goes
# into <pidfile>, so the farm can kill the whole group even when the guard itself is stuck.
_OWN_GROUP = r"""
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
"""

# Runs on the board (Python >= 3.5; boards have old distributions):
#   python3 -c GUARD <pidfile> <limit_s> <argv...>
# New process group (pgid == our pid), recorded in <pidfile>; the agent is our child; the whole group is
# SIGKILLed if the agent outlives <limit_s>. Exit status: the agent's, or 128 + signal.
_GUARD = (
    r"""
import os, signal, sys
pidfile, limit, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
"""
    + _OWN_GROUP
    + r"""pid = os.fork()
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
"""
).strip()

# The guard of a long-lived agent session (Python >= 3.5):
#   python3 -c SESSION_GUARD <pidfile> <argv...>
# New process group (pgid == our pid), recorded in <pidfile>; the agent is our child, its stdin and stdout
# pipes to us. We pass request lines on ("<limit_s> <json>" in, "<json>" to the agent) and response lines
# back, and kill the whole group (ourselves included) when a job outlives its <limit_s>, or when our stdin
# ends or our stdout breaks (the SSH channel closed or the connection dropped) and the agent does not
# finish within a second: a session never outlives the farm's side of it. Between jobs nothing times out.
# When the agent exits by itself we exit with its status (128 + signal), after a SIGTERM to what it left.
_SESSION_GUARD = (
    r"""
import os, select, signal, sys, time
pidfile, argv = sys.argv[1], sys.argv[2:]
"""
    + _OWN_GROUP
    + r"""in_r, in_w = os.pipe()
out_r, out_w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        for fd in (in_r, in_w, out_r, out_w):
            os.close(fd)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
os.close(in_r)
os.close(out_w)
def say(text):
    try:  # stderr is gone when the SSH connection is
        os.write(2, ("farm guard: %s\n" % text).encode())
    except OSError:
        pass
def unlink():
    try:
        os.unlink(pidfile)
    except OSError:
        pass
def kill_all():
    unlink()
    os.killpg(0, signal.SIGKILL)
def reaped():
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except OSError:
        return 255 << 8
    return status if done else None
def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
def hang_up():
    try:
        os.close(in_w)
    except OSError:
        pass
    end = time.time() + 1.0
    while reaped() is None and time.time() < end:
        time.sleep(0.02)
    kill_all()
pending, deadline, busy, agent_out = b"", None, 0, True
while True:
    wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.time()))
    ready = select.select([0, out_r] if agent_out else [0], [], [], wait)[0]
    if out_r in ready:
        data = os.read(out_r, 65536)
        if not data:
            agent_out = False
        else:
            try:
                write_all(1, data)
            except OSError:
                hang_up()
            busy -= data.count(b"\n")
            if busy <= 0:
                busy, deadline = 0, None
    if deadline is not None and time.time() >= deadline:
        say("job still running after its limit: killing the agent's process group")
        kill_all()
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            hang_up()
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            limit, _, request = line.partition(b" ")
            try:
                deadline = time.time() + float(limit)
            except ValueError:
                deadline = None
            busy += 1
            try:
                write_all(in_w, request + b"\n")
            except OSError:
                pass  # the agent is gone: reaped below
    status = reaped()
    if status is not None:
        while agent_out and select.select([out_r], [], [], 0)[0]:
            data = os.read(out_r, 65536)
            if not data:
                break
            try:
                write_all(1, data)
            except OSError:
                break
        unlink()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            os.killpg(0, signal.SIGTERM)
        except OSError:
            pass
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""
).strip()

#: In farm_agent.py of an agent that runs job after job (``--serve``); the farm starts one session per board.
SERVE_PROTOCOL = "farm-agent-serve/1"
#: The agent writes this line (% job number) to stderr after each job in serve mode (workers/agent/serve.py).
JOB_END_MARK = "farm-agent-serve: end of job %d"
#: How much of a session's stderr is kept (the tail).
SESSION_STDERR_KEEP = 64 * 1024
#: How long to wait for a job's stderr to catch up with its response (it travels separately).
SESSION_STDERR_WAIT_S = 1.0

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


class _AgentSession:
    """One long-lived ``farm_agent.py --config - --serve`` on the board, under :data:`_SESSION_GUARD`, on
    one SSH channel. Two daemon threads read the channel: stdout into a queue of lines, stderr into a
    bounded buffer (the board never blocks on a full pipe)."""

    def __init__(self, channel: paramiko.Channel, script: str, pidfile: str) -> None:
        self.channel = channel
        self.script = script
        self.pidfile = pidfile
        self.jobs = 0  # requests sent
        self.stray = b""  # bytes after the last full stdout line, at EOF
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._ended = threading.Event()
        self._err = bytearray()
        self._err_base = 0  # absolute stderr offset of self._err[0]
        self._err_eof = False
        self._err_cond = threading.Condition()
        self._job_err_start = 0  # absolute stderr offset where the current job's stderr begins
        for target, what in ((self._read_stdout, "stdout"), (self._read_stderr, "stderr")):
            threading.Thread(target=target, name=f"farm-agent-session-{what}", daemon=True).start()

    def _read_stdout(self) -> None:
        parts: list[bytes] = []
        try:
            while True:
                data = self.channel.recv(65536)
                if not data:
                    break
                while True:
                    end = data.find(b"\n")
                    if end < 0:
                        parts.append(data)
                        break
                    parts.append(data[:end])
                    self._lines.put(b"".join(parts))
                    parts, data = [], data[end + 1 :]
        except Exception:  # the channel broke: the same as its end
            log.debug("agent session stdout ended", exc_info=True)
        finally:
            self.stray = b"".join(parts)
            self._ended.set()
            self._lines.put(None)

    def _read_stderr(self) -> None:
        try:
            while True:
                data = self.channel.recv_stderr(65536)
                if not data:
                    break
                with self._err_cond:
                    self._err += data
                    excess = len(self._err) - SESSION_STDERR_KEEP
                    if excess > 0:
                        del self._err[:excess]
                        self._err_base += excess
                    self._err_cond.notify_all()
        except Exception:
            log.debug("agent session stderr ended", exc_info=True)
        finally:
            with self._err_cond:
                self._err_eof = True
                self._err_cond.notify_all()

    def alive(self) -> bool:
        return not self._ended.is_set() and not self.channel.closed and not self.channel.exit_status_ready()

    def send(self, request: bytes) -> None:
        self.channel.sendall(request)

    def response(self, timeout_s: float) -> bytes | None:
        """The next response line; None when the session ended first; queue.Empty on timeout."""
        return self._lines.get(timeout=max(0.0, timeout_s))

    def job_stderr(self, job: int, wait_s: float = SESSION_STDERR_WAIT_S) -> str:
        """This job's stderr: from the previous job's end mark to this job's (waited for up to ``wait_s``:
        stderr travels beside stdout, not in order with it)."""
        mark = (JOB_END_MARK % job + "\n").encode()
        deadline = time.monotonic() + wait_s
        with self._err_cond:
            while True:
                start = max(self._job_err_start - self._err_base, 0)
                found = self._err.find(mark, start)
                left = deadline - time.monotonic()
                if found >= 0 or self._err_eof or left <= 0:
                    break
                self._err_cond.wait(left)
            end = found if found >= 0 else len(self._err)
            text = bytes(self._err[start:end])
            self._job_err_start = self._err_base + (end + len(mark) if found >= 0 else end)
        return text.decode("utf-8", "replace")

    def stderr_tail(self, wait_s: float = SESSION_STDERR_WAIT_S) -> str:
        """Everything since the last job's end mark, once stderr has ended (waited for up to ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        with self._err_cond:
            while not self._err_eof and (left := deadline - time.monotonic()) > 0:
                self._err_cond.wait(left)
            start = max(self._job_err_start - self._err_base, 0)
            return bytes(self._err[start:]).decode("utf-8", "replace")

    def exit_status(self, wait_s: float = 1.0) -> int | None:
        """The guard's exit status (the agent's, or 128 + signal), if the board reported one in time."""
        if self.channel.status_event.wait(wait_s) and self.channel.exit_status_ready():
            status = self.channel.recv_exit_status()
            return None if status == -1 else status
        return None

    def close(self) -> None:
        """Close the channel: the guard sees its stdin end and kills the agent's process group."""
        try:
            self.channel.close()
        except Exception:
            log.debug("closing an agent session failed", exc_info=True)


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


def _agent_signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap fingerprint of the local agent files (path, size, mtime), checked before every job: tells when
    to hash them again (and so ship the new agent and restart the session)."""
    signature = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    signature.append((path, st.st_size, st.st_mtime_ns))
    return tuple(signature)


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
        #: How many long-lived agent sessions were started (serve-mode agents: one per connection, plus one
        #: after each hang, crash or agent update).
        self.agent_sessions_started = 0

        self._conn: Connection | None = None
        self._lock = threading.RLock()
        self._agent_script: str | None = None  # remote script path, once ensured on this connection
        self._agent_signature: tuple[tuple[str, int, int], ...] | None = None  # local files it was made from
        self._agent_serves = False  # does that agent speak the serve protocol (SERVE_PROTOCOL)?
        self._session: _AgentSession | None = None
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
        self._end_session()
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
                # Could not open a session / start the command: nothing ran remotely, so retrying is safe.
                self._drop()
                if attempt == 2 or isinstance(exc, paramiko.BadHostKeyException):
                    raise self._connect_error(exc) from None
                log.info("SSH session to %s failed (%s): reconnecting", self._where(), exc)
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
            signature = _agent_signature(self.agent_dir)
            if (
                self._agent_script is not None
                and self._agent_signature == signature
                and self._conn is not None
                and self._conn.is_connected
            ):
                return self._agent_script
            files = _agent_files(self.agent_dir)
            if not any(rel == AGENT_SCRIPT_NAME for rel, _ in files):
                raise FarmError(f"{self.agent_dir} has no {AGENT_SCRIPT_NAME}")
            digest = hashlib.sha256(b"".join(_agent_digest_parts(files))).hexdigest()
            serves = SERVE_PROTOCOL.encode() in dict(files)[AGENT_SCRIPT_NAME].read_bytes()
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
            self._agent_script, self._agent_signature, self._agent_serves = script, signature, serves
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
        """``<work_dir>/artifacts/<key>/<local file name>`` on the board (``model.onnx`` for a compiled
        artifact, ``dataset.npz`` for a dataset pack...), uploaded (and verified) unless it is already
        there with the same sha256."""
        validate_sha256(key)
        local_path = Path(local_path)
        with self._lock:
            local_sha = self._local_sha256(local_path)
            size = local_path.stat().st_size
            remote_dir = remote_join(self.work_dir, "artifacts", key)
            name = local_path.name
            final = remote_join(remote_dir, name)
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
            tmp = posixpath.join(remote_dir, f".{name}.{uuid.uuid4().hex}.tmp")
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
        """Run the agent with ``config``; its one JSON report comes back in ``stdout``, its exit status (0 ok,
        1 infra error, 2 model error) in ``returncode``.

        An agent that speaks the serve protocol runs as one long-lived session per connection (started at
        the first job, again after a hang, a crash or an agent update): the config goes in as one line,
        the report comes back as one line. Any other agent runs once per job as
        ``python3 <agent>/farm_agent.py --config -`` with the config on stdin.

        A run that outlives ``timeout_s`` has its whole process group killed on the board; InfraError. So is
        a session that ends without a report (the agent crashed, the connection dropped).
        """
        payload = json.dumps(config)
        with self._lock:
            script = self.ensure_agent()
            started = time.monotonic()
            if self._agent_serves:
                return self._run_in_session(script, payload, timeout_s, started)
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

    def _run_in_session(self, script: str, payload: str, timeout_s: float, started: float) -> AgentOutcome:
        request = f"{timeout_s + GUARD_GRACE_S:.3f} {payload}\n".encode()
        for attempt in (1, 2):
            session = self._agent_session(script)
            try:
                session.send(request)
                break
            except (paramiko.SSHException, EOFError, OSError) as exc:
                # The job never reached the agent (a session or connection that died while idle): retry once.
                self._end_session()
                if self._conn is not None and not self._conn.is_connected:
                    self._drop()
                if attempt == 2:
                    raise InfraError(f"{self._where()}: cannot send the job to the agent: {exc}") from None
                log.info("agent session on %s is gone (%s): starting a new one", self._where(), exc)
        session.jobs += 1
        try:
            line = session.response(timeout_s - (time.monotonic() - started))
        except queue.Empty:
            killed = self._kill_run(session.pidfile)
            self._end_session()
            raise InfraError(
                f"{self._where()}: agent hung (no result within {timeout_s:g} s): "
                + (
                    "killed its process group"
                    if killed
                    else f"could not kill it now ({killed.reason}); closed its session, so the board-side "
                    "guard kills it"
                )
            ) from None
        if line is None:
            return self._session_ended(session)
        outcome = _session_outcome(line)
        if outcome is None:
            killed = self._kill_run(session.pidfile)
            self._end_session()
            raise InfraError(
                f"{self._where()}: agent sent a malformed response ({_clip(line)!r}): "
                + ("killed it" if killed else "closed its session")
            )
        code, report = outcome
        return AgentOutcome(code, report, session.job_stderr(session.jobs))

    def _session_ended(self, session: _AgentSession) -> AgentOutcome:
        """The session's stdout ended before the job's response: InfraError, saying why as well as we can."""
        tail = session.stderr_tail()
        status = session.exit_status()
        self._end_session()
        if self._conn is None or not self._conn.is_connected:
            self._drop()
            raise InfraError(f"{self._where()}: SSH connection lost while the agent was running")
        stray = f"; stdout: {_clip(session.stray)!r}" if session.stray else ""
        exited = f"exit {status}" if status is not None else "no exit status"
        raise InfraError(
            f"{self._where()}: agent crashed ({exited}) without a report: "
            f"{tail[-2000:].strip() or '(no stderr)'}{stray}"
        )

    def _agent_session(self, script: str) -> _AgentSession:
        """The running session for ``script`` (a new one if there is none, it ended, or the agent changed)."""
        session = self._session
        if session is not None and (
            session.script != script
            or not session.alive()
            or self._conn is None
            or not self._conn.is_connected
        ):
            log.info(
                "agent session on %s %s: starting a new one",
                self._where(),
                "runs an older agent" if session.script != script else "has ended",
            )
            self._end_session()
            session = None
        if session is None:
            session = self._start_session(script)
        return session

    def _start_session(self, script: str) -> _AgentSession:
        pidfile = remote_join(self.work_dir, "run", f"{uuid.uuid4().hex}.pid")
        command = quote_argv(
            [self.python, "-c", _SESSION_GUARD, pidfile, self.python, script, "--config", "-", "--serve"]
        )
        for attempt in (1, 2):
            conn = self._connection()
            try:
                transport = conn.client.get_transport()
                if transport is None:
                    raise paramiko.SSHException("no transport")
                channel = transport.open_session(timeout=self.connect_timeout_s)
                channel.exec_command(command)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                # Could not open a session / start the command: nothing ran remotely, so retrying is safe.
                self._drop()
                if attempt == 2 or isinstance(exc, paramiko.BadHostKeyException):
                    raise self._connect_error(exc) from None
                log.info("SSH session to %s failed (%s): reconnecting", self._where(), exc)
                continue
            self._session = _AgentSession(channel, script, pidfile)
            self.agent_sessions_started += 1
            log.info("started an agent session on %s", self._where())
            return self._session
        raise AssertionError("unreachable")

    def _end_session(self) -> None:
        """Close the agent session, if any (its guard kills the agent when the channel closes)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

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


class _Remote(Remote):
    """fabric's runner, returning only once its timeout timer has finished. The timer closes the channel
    from its own thread; without the join a timed-out command could come back (and its caller go on to
    kill the run or close the connection) while that thread is still writing to the transport."""

    def stop(self) -> None:
        timer = self._timer
        super().stop()  # cancels a timer that has not fired, closes the channel
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=TIMER_JOIN_S)


#: How long a command waits for its timeout timer's channel close (it takes milliseconds).
TIMER_JOIN_S = 10.0

_RESPONSE = re.compile(rb'\{"exit": (-?\d+), "report": (\{.*\})\}', re.DOTALL)


def _session_outcome(line: bytes) -> tuple[int, str] | None:
    """(exit status, report JSON text) of one response line, or None if it is not one."""
    match = _RESPONSE.fullmatch(line.strip())
    if match is not None:  # the agent's own layout: hand the report on without parsing it twice
        try:
            return int(match.group(1)), match.group(2).decode("utf-8") + "\n"
        except UnicodeDecodeError:
            return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("report"), dict):
        return None
    code = doc.get("exit")
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    return code, json.dumps(doc["report"]) + "\n"


def _clip(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class _KillResult:
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok
