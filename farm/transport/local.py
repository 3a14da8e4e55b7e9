"""Local transport: the board is the worker's own machine; the agent runs as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farm.errors import InfraError
from farm.transport.base import AgentOutcome, Transport
from workers.agent.protocol import AGENT_SCRIPT

if TYPE_CHECKING:
    from farm.inventory import Board, Inventory


class LocalTransport(Transport):
    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

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
        cmd = [self.python, AGENT_SCRIPT, *args]
        try:
            proc = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise InfraError(f"agent did not finish within {timeout_s:.0f} s (killed)") from None
        except OSError as exc:
            raise InfraError(f"cannot start the agent: {exc}") from None
        return AgentOutcome(proc.returncode, proc.stdout, proc.stderr)
