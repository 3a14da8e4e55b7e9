"""Compiles on a compile host over SSH with the toolchain installed on it (inventory ``runner: host``).

Requirement: **farm installed on the host** for the inventory's ``ssh.python`` (``python -m
workers.toolchains.cli`` must work there, with the toolchain's own packages, e.g. onnxruntime), and a
``python3`` for the command guard (any Linux has one).

Per job, on the host, under the inventory's ``work_dir``::

    compile/<job uuid>/in/model.onnx     the model, uploaded and checked by sha256
    compile/<job uuid>/out/result.json   written by the toolchain CLI, last
    compile/<job uuid>/out/<artifact>    e.g. model.onnx

The command runs under the host-side guard (``farm/transport/hostside/guard.py``, shipped by
:class:`~farm.transport.ssh_host.SshHost`: its own process group, killed on a timeout, also by the host
itself if the connection is gone). result.json and the artifact are fetched back with sha256
checks, the artifact also against the hash the toolchain recorded, and the job folder is removed
whatever happened. Exit 2 from the toolchain is a :class:`ModelError` with its reason; anything else
that goes wrong is an :class:`InfraError`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import posixpath
import time
import uuid
from pathlib import Path
from typing import Any

from farm.errors import FarmError, InfraError, ModelError
from farm.transport.remote import UnsafeRemoteValue, remote_join, validate_name
from farm.transport.ssh_host import SshHost
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.cli import EXIT_MODEL, EXIT_OK, RESULT_FILE, compile_argv, version_argv
from farm.workers.toolchains.runners.base import (
    DEFAULT_COMPILE_TIMEOUT_S,
    SHORT_TIMEOUT_S,
    CompileRunner,
    RunnerResult,
    ToolchainInfo,
)

log = logging.getLogger(__name__)

JOBS_DIR = "compile"
IN_DIR, MODEL_NAME, OUT_DIR = "in", "model.onnx", "out"
CALIBRATION_NAME = "calibration.npz"  # real INT8 calibration inputs, when the sweep names a dataset


def tail(text: str, limit: int = 1500) -> str:
    """The end of a command's output, on one line-ish, for an error message."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class HostRunner(CompileRunner):
    """``transport`` is an :class:`SshHost` (the compile host over SSH); the runner owns it (``close()``)."""

    kind = "host"

    def __init__(
        self,
        transport: SshHost,
        *,
        host_name: str | None = None,
        timeout_s: float = DEFAULT_COMPILE_TIMEOUT_S,
    ) -> None:
        self.transport = transport
        self.host_name = host_name or transport.name
        self.timeout_s = float(timeout_s)
        self._info: dict[str, ToolchainInfo] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host_name})"

    def close(self) -> None:
        self.transport.close()

    def describe(self) -> dict[str, Any]:
        return {
            "runner": self.kind,
            "host": self.host_name,
            "image": None,
            "image_id": None,
            "image_digest": None,
        }

    # ------------------------------------------------------------------ hooks (DockerRunner overrides)

    def _prepare(self, toolchain_name: str) -> None:
        """Checks before anything is sent (the Docker runner checks the engine and the image)."""

    def compile_command(
        self, toolchain_name: str, job_id: str, job_dir: str, precision: str, quant: QuantConfig
    ) -> list[str]:
        """argv run on the host for one job (paths are the host's; ``quant``'s calibration data is
        already at :meth:`input_path`)."""
        return compile_argv(
            self.transport.python,
            toolchain_name,
            self.input_path(job_dir, MODEL_NAME),
            precision,
            quant,
            posixpath.join(job_dir, OUT_DIR),
        )

    def job_inputs(self, toolchain_name: str) -> dict[str, Path]:
        """Local files uploaded into the job's input folder besides the model and the calibration data
        (Docker: the toolchain's :meth:`~workers.toolchains.base.Toolchain.container_inputs`)."""
        return {}

    def input_path(self, job_dir: str, name: str) -> str:
        """Where the toolchain sees an uploaded input of the job (Docker: inside the container)."""
        return posixpath.join(job_dir, IN_DIR, name)

    def version_command(self, toolchain_name: str, job_id: str) -> list[str]:
        return version_argv(self.transport.python, toolchain_name)

    def _after_failure(self, job_id: str) -> None:
        """Clean-up after a command that timed out or lost its connection (Docker: remove the container)."""

    def _explain(self, what: str, rc: int, stderr: str) -> str:
        """An InfraError message for a command that failed with ``rc``."""
        where = f"compile host {self.host_name}"
        err = tail(stderr)
        if rc == 127:
            return (
                f"{where}: {what} failed: {self.transport.python!r} not found on the host (exit 127): {err}"
            )
        if "No module named" in err and ("workers" in err or "farm" in err):
            return (
                f"{where}: {what} failed: farm is not installed for {self.transport.python} on the host "
                f"(a `runner: host` compile host needs farm and the toolchain installed): {err}"
            )
        if rc < 0 or rc >= 128:
            return f"{where}: {what} was killed (exit {rc}; out of memory?): {err}"
        return f"{where}: {what} failed (exit {rc}): {err}"

    # ------------------------------------------------------------------ the runner API

    def toolchain_info(self, toolchain_name: str) -> ToolchainInfo:
        if toolchain_name in self._info:
            return self._info[toolchain_name]
        self._prepare(toolchain_name)
        job_id = uuid.uuid4().hex
        try:
            rc, out, err = self.transport.run_guarded(
                self.version_command(toolchain_name, job_id), SHORT_TIMEOUT_S, what="toolchain version query"
            )
        except InfraError:
            self._after_failure(job_id)
            raise
        if rc != EXIT_OK:
            raise InfraError(self._explain(f"`version --toolchain {toolchain_name}`", rc, err))
        lines = [line for line in out.splitlines() if line.strip()]
        try:
            data = json.loads(lines[-1])
            info = ToolchainInfo(str(data["name"]), str(data["version"]), str(data["target_arch"]))
        except (IndexError, ValueError, KeyError, TypeError):
            raise InfraError(
                f"compile host {self.host_name}: the toolchain version query printed no JSON: {tail(out + err)}"
            ) from None
        self._info[toolchain_name] = info
        return info

    def compile(
        self, toolchain_name: str, model_path: Path, precision: str, quant: QuantConfig, out_dir: Path
    ) -> RunnerResult:
        started = time.perf_counter()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self._prepare(toolchain_name)
        job_id = uuid.uuid4().hex
        job_dir = remote_join(self.transport.work_dir, JOBS_DIR, job_id)
        try:
            self.transport.upload(model_path, posixpath.join(job_dir, IN_DIR, MODEL_NAME))
            if quant.calibration_data is not None:
                self.transport.upload(
                    Path(quant.calibration_data), posixpath.join(job_dir, IN_DIR, CALIBRATION_NAME)
                )
                quant = dataclasses.replace(
                    quant, calibration_data=self.input_path(job_dir, CALIBRATION_NAME)
                )
            for name, local in self.job_inputs(toolchain_name).items():
                self.transport.upload(local, posixpath.join(job_dir, IN_DIR, validate_name(name)))
            argv = self.compile_command(toolchain_name, job_id, job_dir, precision, quant)
            try:
                rc, _, err = self.transport.run_guarded(
                    argv, self.timeout_s, what=f"compile job ({toolchain_name} {precision})"
                )
            except InfraError:
                self._after_failure(job_id)
                raise
            data = self._collect(rc, err, posixpath.join(job_dir, OUT_DIR), out_dir)
        finally:
            self._remove(job_dir)
        return RunnerResult(
            path=out_dir / data["artifact"],
            fidelity=data.get("fidelity"),
            warnings=list(data.get("warnings") or []),
            details=dict(data.get("details") or {}),
            toolchain=str(data["name"]),
            toolchain_version=str(data["version"]),
            target_arch=str(data["target_arch"]),
            runner=self.describe(),
            seconds=time.perf_counter() - started,
            toolchain_seconds=data.get("seconds"),
        )

    # ------------------------------------------------------------------ helpers

    def _fetch_result(self, out_remote: str, out_dir: Path) -> dict:
        local = out_dir / RESULT_FILE
        self.transport.download(posixpath.join(out_remote, RESULT_FILE), local)
        try:
            data = json.loads(local.read_text())
        except ValueError as exc:
            raise InfraError(f"compile host {self.host_name}: unreadable {RESULT_FILE}: {exc}") from None
        if not isinstance(data, dict):
            raise InfraError(f"compile host {self.host_name}: {RESULT_FILE} is not a JSON object")
        return data

    def _collect(self, rc: int, stderr: str, out_remote: str, out_dir: Path) -> dict:
        if rc == EXIT_MODEL:
            try:
                reason = self._fetch_result(out_remote, out_dir).get("error")
            except InfraError:
                reason = None
            lines = [line for line in stderr.splitlines() if line.strip()]
            fallback = lines[-1].removeprefix("model error: ") if lines else ""
            raise ModelError(reason or fallback or "the toolchain rejected the model (no reason given)")
        if rc != EXIT_OK:
            raise InfraError(self._explain("the compile", rc, stderr))
        data = self._fetch_result(out_remote, out_dir)
        if not data.get("ok") or not isinstance(data.get("artifact"), str):
            raise InfraError(
                f"compile host {self.host_name}: exit 0 but {RESULT_FILE} reports no artifact: {tail(json.dumps(data))}"
            )
        try:
            artifact = validate_name(data["artifact"])
        except UnsafeRemoteValue as exc:
            raise InfraError(
                f"compile host {self.host_name}: bad artifact name in {RESULT_FILE}: {exc}"
            ) from None
        sha = self.transport.download(posixpath.join(out_remote, artifact), out_dir / artifact)
        if data.get("artifact_sha256") not in (None, sha):
            raise InfraError(
                f"compile host {self.host_name}: the artifact's sha256 is {sha}, the toolchain recorded "
                f"{data['artifact_sha256']}"
            )
        return data

    def _remove(self, job_dir: str) -> None:
        try:
            self.transport.remove_tree(job_dir)
        except FarmError as exc:  # InfraError: the host is gone; the next job's problem, not this one's
            log.warning("could not remove %s on compile host %s: %s", job_dir, self.host_name, exc)
