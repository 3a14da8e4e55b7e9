"""Local transport: the board is the worker's own machine; the agent runs as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farm.errors import InfraError
from farm.transport.base import AgentOutcome, Transport
from farm.workers.agent.protocol import AGENT_SCRIPT

if TYPE_CHECKING:
    from farm.inventory import Board, Inventory


class LocalTransport(Transport):
    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._procs: set[subprocess.Popen] = set()

    @classmethod
    def for_board(cls, inventory: Inventory, board: Board) -> LocalTransport:
        return cls()

    def artifact_path(self, key: str, local_path: Path) -> str:
        return str(local_path)

    def run_agent(self, config: dict[str, Any], timeout_s: float) -> AgentOutcome:
        return self._agent(["--config", "-"], json.dumps(config), timeout_s)

    def agent_health(self, backend: str, timeout_s: float, min_free_mb: float | None = None) -> AgentOutcome:
        """The agent's folder only: artifacts stay in the farm's own store, which is not the board's."""
        extra = ["--min-free-mb", f"{float(min_free_mb):g}"] if min_free_mb is not None else []
        return self._agent(["--health", backend, *extra], "", timeout_s)

    def _agent(self, args: list[str], stdin: str, timeout_s: float) -> AgentOutcome:
        """The agent runs in a session of its own, so a Ctrl-C meant for the farm does not reach it as a
        crash; the farm stops it itself (:func:`stop_all`) when it cancels."""
        cmd = [self.python, AGENT_SCRIPT, *args]
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise InfraError(f"cannot start the agent: {exc}") from None
        with _LOCK:
            stopping = _STOPPING.is_set()
            if not stopping:
                _RUNNING.add(proc)
                self._procs.add(proc)
        if stopping:  # started just as the process was stopping all its agents: it never runs unowned
            _kill(proc)
            proc.communicate()
            raise InfraError("the farm is stopping its agents (sweep cancelled)")
        try:
            out, err = proc.communicate(stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            proc.communicate()
            raise InfraError(f"agent did not finish within {timeout_s:.0f} s (killed)") from None
        finally:
            with _LOCK:
                _RUNNING.discard(proc)
                self._procs.discard(proc)
        return AgentOutcome(proc.returncode, out, err)

    def cancel(self) -> None:
        """Kill the agents this transport runs now (their job was cancelled)."""
        with _LOCK:
            procs = list(self._procs)
        for proc in procs:
            _kill(proc)


_RUNNING: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set by stop_all: this process starts no agent any more


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def stop_all() -> int:
    """Kill every agent this process runs, and start none after (an embedded sweep interrupted: the
    process is about to exit); returns how many were killed."""
    with _LOCK:
        _STOPPING.set()
        running = list(_RUNNING)
    for proc in running:
        _kill(proc)
    return len(running)
