"""In-process compiles on the worker itself (what compile jobs did before there were compile hosts)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.cli import load_model
from farm.workers.toolchains.registry import get_toolchain
from farm.workers.toolchains.runners.base import CompileRunner, RunnerResult, ToolchainInfo


class LocalRunner(CompileRunner):
    kind = "local"

    def __init__(self) -> None:
        self._info: dict[str, ToolchainInfo] = {}

    def toolchain_info(self, toolchain_name: str) -> ToolchainInfo:
        if toolchain_name not in self._info:
            tc = get_toolchain(toolchain_name)
            self._info[toolchain_name] = ToolchainInfo(tc.name, tc.version(), tc.target_arch)
        return self._info[toolchain_name]

    def compile(
        self, toolchain_name: str, model_path: Path, precision: str, quant: QuantConfig, out_dir: Path
    ) -> RunnerResult:
        started = time.perf_counter()
        tc = get_toolchain(toolchain_name)
        model = load_model(model_path)
        result = tc.compile(model, precision, quant, Path(out_dir))
        seconds = time.perf_counter() - started
        return RunnerResult(
            path=result.path,
            fidelity=result.fidelity,
            warnings=list(result.warnings),
            details=result.details,
            toolchain=tc.name,
            toolchain_version=tc.version(),
            target_arch=tc.target_arch,
            runner=self.describe(),
            seconds=seconds,
            toolchain_seconds=seconds,
        )

    def describe(self) -> dict[str, Any]:
        return {"runner": "local", "host": None, "image": None, "image_id": None, "image_digest": None}
