"""SSH transport: a board is a Linux host (:class:`SshHost`) that the agent is shipped to and run on.

Remote layout under ``work_dir`` (besides :mod:`farm.transport.ssh_host`'s ``hostside/`` and ``run/``)::

    agent/<agent-hash>/...           the agent directory; .complete (holding the hash) is written last
    artifacts/<key>/<file name>      one content-addressed file under its local name: a compiled artifact
                                     (model.onnx), a dataset or reference pack (dataset.npz,
                                     reference.npz); renamed into place after a verified upload
    run/<uuid>.pid                   process group of a running agent (removed when it ends)

An agent runs under a host-side guard (``hostside/guard.py``): it puts the agent in its own process group,
records that group in ``run/<uuid>.pid`` and kills the whole group if it outlives ``timeout_s + grace``, so
a hung agent dies even when the connection to the board is gone. On a timeout seen from this side the
transport kills the group itself right away and raises :class:`InfraError`.

Agent sessions (:mod:`farm.transport.agent_session`): an agent whose ``farm_agent.py`` carries
``SERVE_PROTOCOL`` runs job after job in one process on one SSH channel of the connection, so a job costs
one line each way instead of an SSH session, an interpreter start and the runtime imports. The session is
started at the first ``run_agent`` and again after a hang, a crash, a reconnect or an agent update. Its
guard (``hostside/session_guard.py``) owns the process group (pid file as above), enforces
``timeout_s + grace`` per job only (an idle session lives on), and kills the group as soon as the channel
closes or the connection drops, so closing the transport or losing the farm side never leaves an agent
behind. Other agents (older ones, test doubles) still run once per job.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import queue
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from farm.artifacts import sha256_file
from farm.errors import FarmError, InfraError
from farm.transport.agent_session import SERVE_PROTOCOL, AgentSession, clip, session_outcome
from farm.transport.base import AgentOutcome, Transport
from farm.transport.hostside import SESSION_GUARD
from farm.transport.remote import quote_argv, remote_join, validate_sha256
from farm.transport.shipping import Signature, files_hash, folder_files, folder_hash, folder_signature
from farm.transport.ssh_host import GUARD_GRACE_S, GuardTimeout, SshHost
from farm.workers.agent.protocol import AGENT_DIR

__all__ = ["SshTransport", "agent_hash"]

log = logging.getLogger(__name__)

AGENT_SCRIPT_NAME = "farm_agent.py"

if TYPE_CHECKING:
    from farm.inventory import Board, Inventory


def agent_hash(agent_dir: str | os.PathLike[str]) -> str:
    """The agent directory's content hash (:mod:`farm.transport.shipping`): its folder name on a board."""
    return folder_hash(agent_dir)


class SshTransport(SshHost, Transport):
    """A board over SSH. Construct from plain values (the inventory's); connects lazily on first use.

    ``agent_dir`` is the local agent directory to ship (tests pass a fake one). ``name`` is the board's
    inventory name, used in messages (``farm fleet trust <name>``).
    """

    #: How long a board's SSH connection may take to come up.
    CONNECT_TIMEOUT_S = 10.0

    @classmethod
    def for_board(cls, inventory: Inventory, board: Board) -> SshTransport:
        ep = board.ssh
        assert ep is not None  # the inventory guarantees it for transport: ssh
        return cls(
            host=ep.host,
            port=ep.port,
            user=ep.user,
            key_file=inventory.resolve(ep.key_file),
            known_hosts=inventory.resolve(ep.known_hosts),
            work_dir=ep.work_dir,
            connect_timeout_s=cls.CONNECT_TIMEOUT_S,
            python=ep.python,
            name=board.name,
        )

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
        super().__init__(
            host,
            port,
            user,
            key_file,
            known_hosts,
            work_dir,
            connect_timeout_s,
            python,
            name=name,
            keepalive_s=keepalive_s,
        )
        self.agent_dir = Path(agent_dir)
        #: Bytes of the agent directory sent to the board / agent uploads skipped because the board had it.
        self.agent_bytes_uploaded = 0
        self.agent_uploads_skipped = 0
        #: How many long-lived agent sessions were started (serve-mode agents: one per connection, plus one
        #: after each hang, crash or agent update).
        self.agent_sessions_started = 0

        self._agent_script: str | None = None  # remote script path, once ensured on this connection
        self._agent_signature: Signature | None = None  # the local files it was made from
        self._agent_serves = False  # does that agent speak the serve protocol (SERVE_PROTOCOL)?
        self._session: AgentSession | None = None
        self._local_sha_cache: dict[tuple[str, int, int], str] = {}
        # Artifacts checked (or uploaded) on the board over the current connection. A board is held by one
        # worker, and the agent verifies the sha256 itself before loading, so they are not hashed again.
        self._verified: set[str] = set()

    def _drop(self) -> None:
        """Forget the current connection, and with it the agent session and what was checked on the board."""
        self._end_session()
        self._agent_script = None  # the board may have changed while we were away
        self._verified.clear()
        super()._drop()

    # ------------------------------------------------------------------ agent

    def ensure_agent(self) -> str:
        """The remote path of the agent script, uploading the agent directory first if the board lacks it."""
        with self._lock:
            signature = folder_signature(self.agent_dir)
            if self._agent_script is not None and self._agent_signature == signature and self.connected:
                return self._agent_script
            files = folder_files(self.agent_dir)
            if not any(rel == AGENT_SCRIPT_NAME for rel, _ in files):
                raise FarmError(f"{self.agent_dir} has no {AGENT_SCRIPT_NAME}")
            digest = files_hash(files)
            serves = SERVE_PROTOCOL.encode() in dict(files)[AGENT_SCRIPT_NAME].read_bytes()
            remote_dir = remote_join(self.work_dir, "agent", digest)
            sent = self.ship_folder(files, digest, remote_dir, "the agent")
            if sent is None:
                self.agent_uploads_skipped += 1
            else:
                self.agent_bytes_uploaded += sent
            self._makedirs(self._sftp(), remote_join(self.work_dir, "run"))
            script = posixpath.join(remote_dir, AGENT_SCRIPT_NAME)
            self._agent_script, self._agent_signature, self._agent_serves = script, signature, serves
            return script

    # ------------------------------------------------------------------ artifacts

    def _local_sha256(self, path: Path) -> str:
        st = path.stat()
        cache_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        digest = self._local_sha_cache.get(cache_key)
        if digest is None:
            digest = self._local_sha_cache[cache_key] = sha256_file(path)
        return digest

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
            final = remote_join(remote_dir, local_path.name)
            if key in self._verified and self.connected:
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
            log.info("uploading artifact %s (%d bytes) to %s", key[:12], size, self._where())
            self._put_verified(sftp, local_path, size, local_sha, final, f"artifact {key[:12]}")
            self._verified.add(key)
            return final

    def log_dir(self, local_data_dir: Path, sweep_id: str, job_name: str) -> str:
        """LoadGen logs stay on the board under <work_dir>/runs (the agent creates the folder)."""
        return remote_join(self.work_dir, "runs", sweep_id, job_name)  # each name validated

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
            self.hostside_program(SESSION_GUARD)  # shipped before the job's clock starts
            started = time.monotonic()
            if self._agent_serves:
                return self._run_in_session(script, payload, timeout_s, started)
            try:
                rc, out, err = self._guarded([self.python, script, "--config", "-"], timeout_s, payload)
            except GuardTimeout as hung:
                killed = hung.killed
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

    def agent_health(self, backend: str, timeout_s: float, min_free_mb: float | None = None) -> AgentOutcome:
        """``python3 <agent>/farm_agent.py --health BACKEND --disk <artifacts> --disk <runs>`` (the agent is
        shipped first if needed): free space is measured where artifacts and LoadGen logs go, not only in
        the agent's own folder, since that is where a full disk makes jobs fail."""
        argv = [self.python, "", "--health", backend]
        for folder in ("artifacts", "runs"):
            argv += ["--disk", remote_join(self.work_dir, folder)]
        if min_free_mb is not None:
            argv += ["--min-free-mb", f"{float(min_free_mb):g}"]
        with self._lock:
            argv[1] = self.ensure_agent()
            rc, out, err = self.exec(argv, timeout_s)
            return AgentOutcome(rc, out, err)

    # ------------------------------------------------------------------ agent sessions

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
        outcome = session_outcome(line)
        if outcome is None:
            killed = self._kill_run(session.pidfile)
            self._end_session()
            raise InfraError(
                f"{self._where()}: agent sent a malformed response ({clip(line)!r}): "
                + ("killed it" if killed else "closed its session")
            )
        code, report = outcome
        return AgentOutcome(code, report, session.job_stderr(session.jobs))

    def _session_ended(self, session: AgentSession) -> AgentOutcome:
        """The session's stdout ended before the job's response: InfraError, saying why as well as we can."""
        tail = session.stderr_tail()
        status = session.exit_status()
        self._end_session()
        if not self.connected:
            self._drop()
            raise InfraError(f"{self._where()}: SSH connection lost while the agent was running")
        stray = f"; stdout: {clip(session.stray)!r}" if session.stray else ""
        exited = f"exit {status}" if status is not None else "no exit status"
        raise InfraError(
            f"{self._where()}: agent crashed ({exited}) without a report: "
            f"{tail[-2000:].strip() or '(no stderr)'}{stray}"
        )

    def _agent_session(self, script: str) -> AgentSession:
        """The running session for ``script`` (a new one if there is none, it ended, or the agent changed)."""
        session = self._session
        if session is not None and (session.script != script or not session.alive() or not self.connected):
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

    def _start_session(self, script: str) -> AgentSession:
        guard = self.hostside_program(SESSION_GUARD)
        pidfile = self._new_pidfile()
        command = quote_argv([self.python, guard, pidfile, self.python, script, "--config", "-", "--serve"])
        channel = self._open_channel(command)
        self._session = AgentSession(channel, script, pidfile)
        self.agent_sessions_started += 1
        log.info("started an agent session on %s", self._where())
        return self._session

    def cancel(self) -> None:
        """Close the running agent session's channel (no lock: ``run_agent`` holds it): the board-side guard
        kills the agent's process group when its channel closes, and ``run_agent`` raises InfraError."""
        session = self._session
        if session is not None:
            log.info("stopping the agent on %s: its job was cancelled", self._where())
            session.close()

    def _end_session(self) -> None:
        """Close the agent session, if any (its guard kills the agent when the channel closes)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()
