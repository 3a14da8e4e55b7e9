"""Where a compile job's toolchain runs: in-process, on a compile host over SSH, or in Docker on one.

A runner compiles ``model_path`` (an ONNX file) with the catalog toolchain ``toolchain_name`` into the
local folder ``out_dir`` and returns a :class:`RunnerResult` (a :class:`CompileResult` whose ``path`` is
the local artifact, plus the toolchain identity as reported *where it ran* and the runner's
provenance). Errors: :class:`ModelError` when the toolchain rejects the model (never retried);
:class:`InfraError` for everything the host or the transport is to blame for (retried elsewhere).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.workers.toolchains.base import CompileResult, QuantConfig

#: Remote compiles are killed after this long unless told otherwise: below the compile task's soft time
#: limit (farm.celery_app.COMPILE_SOFT_LIMIT_S = 3600 s), so the remote process dies before Celery gives up.
DEFAULT_COMPILE_TIMEOUT_S = 3300.0
#: Version queries and other short remote calls.
SHORT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ToolchainInfo:
    """A toolchain as it is where the runner runs it (its version and arch go into the artifact key)."""

    name: str  # Toolchain.name, e.g. "onnxruntime"
    version: str  # e.g. "onnxruntime-1.32.0"
    target_arch: str  # e.g. "x86_64-cpu"


@dataclass
class RunnerResult(CompileResult):
    toolchain: str = ""  # Toolchain.name
    toolchain_version: str = ""
    target_arch: str = ""
    runner: dict[str, Any] = field(default_factory=dict)  # CompileRunner.describe() after the compile
    seconds: float = 0.0  # wall time of the whole compile as seen by the runner (transfers included)
    toolchain_seconds: float | None = None  # the toolchain's own time, where it ran


class CompileRunner(ABC):
    kind: str  # "local" | "host" | "docker"

    @abstractmethod
    def compile(
        self, toolchain_name: str, model_path: Path, precision: str, quant: QuantConfig, out_dir: Path
    ) -> RunnerResult:
        """Compile ``model_path`` into ``out_dir`` (local); ModelError / InfraError as described above."""

    @abstractmethod
    def toolchain_info(self, toolchain_name: str) -> ToolchainInfo:
        """Name, version and target arch of the toolchain this runner would use (cached per runner)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance: ``{"runner", "host", "image", "image_id", "image_digest"}`` (None where n/a)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> CompileRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def artifact_columns(runner: dict[str, Any]) -> dict[str, str | None]:
    """``describe()`` as the artifacts row's columns: compile_runner, compile_host, toolchain_image
    (``image@sha256:...`` when the host knows the image's registry digest, else ``image (sha256:<id>)``)."""
    image = runner.get("image")
    if image and runner.get("image_digest"):
        shown = f"{image}@{runner['image_digest']}"
    elif image and runner.get("image_id"):
        shown = f"{image} ({runner['image_id']})"
    else:
        shown = image
    return {
        "compile_runner": runner.get("runner"),
        "compile_host": runner.get("host"),
        "toolchain_image": shown[:255] if shown else None,
    }
