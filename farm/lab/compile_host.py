"""The virtual lab's compile host (``farm lab up --compile-host container``).

A real lab compiles on servers with Docker and the toolchain images, reached over SSH. The virtual lab
does the same with what this machine has: a real sshd on 127.0.0.100 (its own host key, pinned; the lab's
client key) whose user runs this machine's podman (farm/containers/podman.py) with the farm's compile
image (farm/containers/image.py, built here if it is missing or stale). The rendered lab file lists it as
a ``runner: docker`` host with that image, the podman engine and the lab's container limits, so every
compile of the lab whose toolchain lives in the image (ONNX Runtime and the DPU, GPU and ARM CPU
emulators) goes through the same Docker runner a real lab uses. Vitis AI's image is not on it, so a
real-board Vitis AI toolchain still says it has no compile host.

``farm lab up`` keeps the choice: run again without ``--compile-host``, a lab keeps its compile host;
``--compile-host none`` stops it. ``farm lab down`` stops its sshd and removes any compile container left.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from farm.config import Settings
from farm.containers.engine import ComputeLimits, ContainerEngine
from farm.containers.image import ensure_image
from farm.containers.names import compile_image
from farm.containers.podman import engine_problem, local_engine, run
from farm.errors import FarmError
from farm.lab.labfile import ssh_lines
from farm.lab.sshd import ClientKey, keep_or_start, serves, stop_server

__all__ = ["CompileHost", "LAB_LIMITS", "down", "ensure", "from_state", "lab_lines"]

Kind = Literal["none", "container"]
NAME = "lab-compile"
ADDRESS = "127.0.0.100"  # below the boards' 127.0.0.101+, above the tests' own sshd hosts (2-99)
#: Each compile container's limits in the lab: enough for resnet50's INT8 calibration, and a bound on a
#: runaway compile on a shared machine.
LAB_LIMITS = ComputeLimits(memory_mb=4096)


@dataclass
class CompileHost:
    """The lab's compile host as the state file keeps it."""

    kind: str  # "container"
    host: str = ADDRESS
    port: int | None = None
    sshd_dir: str | None = None
    work_dir: str | None = None
    sshd_pid: int | None = None
    image: str | None = None
    image_id: str | None = None
    image_digest: str | None = None

    def as_state(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """What `farm lab up` and `farm lab status` say of it: the engine and the image with its digest."""
        return f"podman, {self.image} ({self.image_digest or self.image_id})"


def from_state(state: dict) -> CompileHost | None:
    doc = state.get("compile_host")
    return CompileHost(**doc) if isinstance(doc, dict) else None


def ensure(
    settings: Settings,
    directory: Path,
    previous: CompileHost | None,
    client: ClientKey | None,
    sshd_path: str,
    started: list[str],
    notes: list[str],
) -> CompileHost:
    """The compile host up: the image present and current (built if not), its sshd running."""
    if client is None:
        raise FarmError(
            f"--compile-host container needs openssh-server ({sshd_path} not found): the compile host is "
            "reached over SSH like a real one"
        )
    problem = engine_problem()
    if problem:
        raise FarmError(f"--compile-host container: no container engine on this machine: {problem}")
    built = ensure_image(settings, say=lambda line: notes.append(line))
    if built.built:
        started.append(f"{NAME}: built {', '.join(built.built)} of {built.ref} in {built.seconds:.0f} s")
    ch = previous or CompileHost(kind="container")
    ch.kind = "container"
    ch.sshd_dir = str(directory / "compile" / "sshd")
    ch.work_dir = str(directory / "compile" / "work")
    Path(ch.work_dir).mkdir(parents=True, exist_ok=True)
    ch.image, ch.image_id, ch.image_digest = built.ref, built.image_id, built.digest
    try:
        server, fresh = keep_or_start(
            Path(ch.sshd_dir),
            ch.host,
            client,
            port=ch.port,
            pid=ch.sshd_pid,
            work_dir=Path(ch.work_dir),
            sshd_path=sshd_path,
        )
    except RuntimeError as exc:
        raise FarmError(f"could not start the compile host's sshd: {exc}") from None
    if not fresh:
        return ch
    ch.port, ch.sshd_pid = server.port, server.pid
    started.append(f"{NAME}: sshd {ch.host}:{ch.port} (pid {ch.sshd_pid}), podman with {built.ref}")
    return ch


def down(settings: Settings, ch: CompileHost | None) -> list[str]:
    """Stop the compile host's sshd and remove compile containers a stopped compile left behind."""
    if ch is None or not ch.sshd_dir:
        return []
    stopped = []
    if stop_server(ch.sshd_pid, ch.sshd_dir, [f"{p}/" for p in (ch.sshd_dir, ch.work_dir) if p]):
        stopped.append(f"{NAME}: sshd {ch.host}:{ch.port} (pid {ch.sshd_pid})")
    if engine_problem() is None:
        engine = local_engine(settings)
        with contextlib.suppress(OSError, TimeoutError):
            listed = run(
                engine, "ps", "-a", "--filter", "name=farm-compile-", "--format", "{{.Names}}", timeout_s=60
            )
            for name in listed.stdout.decode().split():
                mounts = run(engine, "inspect", "--format", "{{range .Mounts}}{{.Source}} {{end}}", name)
                if ch.work_dir and ch.work_dir in mounts.stdout.decode():  # this lab's compiles only
                    run(engine, "kill", name, timeout_s=60)
                    run(engine, "rm", "--force", name, timeout_s=60)
                    stopped.append(f"{NAME}: container {name}")
    ch.sshd_pid = None
    return stopped


def is_up(ch: CompileHost) -> bool:
    return serves(ch.sshd_pid, Path(ch.sshd_dir or "") / "sshd_config")


def lab_lines(settings: Settings, ch: CompileHost | None, client: ClientKey | None, user: str) -> list[str]:
    """The lab file's ``docker_hosts:`` block for the compile host (nothing without one)."""
    if ch is None or client is None:
        return []
    engine: ContainerEngine = local_engine(settings)
    lines = [
        "docker_hosts:",
        f"  - name: {NAME}",
        "    runner: docker",
        f"    images: [{ch.image or compile_image()}]",
        "    ssh:",
        *ssh_lines(
            ch.host, ch.port, user, client.private, Path(ch.sshd_dir or "") / "known_hosts", ch.work_dir
        ),
        "    engine:",
        f"      command: {engine.command}",
        f"      options: [{', '.join(engine.options)}]",
        "      env: {" + ", ".join(f"{k}: {v}" for k, v in engine.env.items()) + "}",
        "    limits: {"
        + ", ".join(f"{k}: {v}" for k, v in LAB_LIMITS.model_dump(exclude_none=True).items())
        + "}",
    ]
    return lines
