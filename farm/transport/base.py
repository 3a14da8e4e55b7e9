"""The transport protocol: ship an artifact and run the agent on a board, get its JSON back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AgentOutcome:
    returncode: int
    stdout: str
    stderr: str


class Transport(ABC):
    @abstractmethod
    def artifact_path(self, key: str, local_path: Path) -> str:
        """Where the board sees the artifact (uploading it first when the board lacks that hash)."""

    @abstractmethod
    def run_agent(self, config: dict[str, Any], timeout_s: float) -> AgentOutcome:
        """Run the board agent with this config; raise InfraError when the board cannot be reached."""

    def log_dir(self, local_data_dir: Path, sweep_id: str, job_name: str) -> str:
        """Where the agent keeps LoadGen's logs for this job, on the board."""
        path = local_data_dir / "runs" / sweep_id / job_name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    @abstractmethod
    def agent_health(self, backend: str, timeout_s: float, min_free_mb: float | None = None) -> AgentOutcome:
        """Run `farm_agent.py --health BACKEND` on the board (python, numpy, loadgen, backend, and free space
        where the transport keeps the agent and artifacts: at least ``min_free_mb``, the agent's default
        when None)."""

    def cancel(self) -> None:  # noqa: B027 - optional hook
        """Stop the agent run in progress now, from another thread (its job was cancelled): ``run_agent``
        then returns or raises soon. Best effort; the default does nothing and the run goes to its end."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
