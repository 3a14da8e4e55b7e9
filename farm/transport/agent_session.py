"""The farm's side of an agent session: one serve-mode agent per board, job after job on one SSH channel.

An agent whose ``farm_agent.py`` carries :data:`SERVE_PROTOCOL` runs as ``farm_agent.py --config - --serve``
under ``hostside/session_guard.py``. A job is one request line in (``<limit_s> <config JSON>``; the guard
strips the limit) and one response line out (``{"exit": <status>, "report": {...}}``); the job's stderr
ends with :data:`JOB_END_MARK`. :class:`AgentSession` reads the channel; the transport
(:class:`farm.transport.ssh.SshTransport`) decides when to start, use and end a session.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time

import paramiko

__all__ = ["JOB_END_MARK", "SERVE_PROTOCOL", "AgentSession", "clip", "session_outcome"]

log = logging.getLogger(__name__)

#: In farm_agent.py of an agent that runs job after job (``--serve``); the farm starts one session per board.
SERVE_PROTOCOL = "farm-agent-serve/1"
#: The agent writes this line (% job number) to stderr after each job in serve mode (workers/agent/serve.py).
JOB_END_MARK = "farm-agent-serve: end of job %d"
#: How much of a session's stderr is kept (the tail).
SESSION_STDERR_KEEP = 64 * 1024
#: How long to wait for a job's stderr to catch up with its response (it travels separately).
SESSION_STDERR_WAIT_S = 1.0

_RESPONSE = re.compile(rb'\{"exit": (-?\d+), "report": (\{.*\})\}', re.DOTALL)


class AgentSession:
    """One long-lived ``farm_agent.py --config - --serve`` on the board, under the session guard, on one
    SSH channel. Two daemon threads read the channel: stdout into a queue of lines, stderr into a bounded
    buffer (the board never blocks on a full pipe)."""

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


def session_outcome(line: bytes) -> tuple[int, str] | None:
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


def clip(data: bytes, limit: int = 200) -> str:
    """``data`` as text, cut to ``limit`` characters, for an error message."""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."
