"""Compiles in the toolchain's container image on a compile host over SSH (inventory ``runner: docker``).

Same job folder, transfers, checks and clean-up as :mod:`farm.workers.toolchains.runners.host`; the command is

    [env K=V ...] docker [engine options] run --rm --name farm-compile-<job> --network none --pull never
        [--memory M --memory-swap M --cpus C --pids-limit P]
        -v <job dir>:/work -w /work [--user <uid>:<gid> --env HOME=/work]
        <image> <Toolchain.container_command("/work/in/model.onnx", "/work/out", ...)>

built as a list (:func:`docker_run_argv`) and quoted word by word. No network (a compile needs none and
must not fetch anything), ``--pull never`` (the image must already be on the host: the inventory's
``images`` says which are, and an image pulled behind our back would change the artifact), and the
SSH user's uid:gid so the job folder stays removable. Before anything is sent, ``image inspect``
checks the engine and the image and gives the image id and digest recorded as provenance. The
toolchain's ``container_inputs`` (e.g. the Vitis AI driver) are uploaded beside the model.

The engine is configuration (the inventory's ``engine:`` and ``limits:``, farm/containers/engine.py):
Docker by default; podman, or podman-docker's ``docker``, with the options and environment it needs.
The same argv works on both (podman's CLI is Docker's).

The host needs the engine usable by the SSH user and ``python3`` (for the command guard); farm
itself lives in the image. On a timeout the guard kills the engine's client, which does not stop the
container (dockerd, or podman's conmon, keeps it): the runner removes it by name (``rm -f``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from farm.containers.engine import ComputeLimits, ContainerEngine, image_id
from farm.errors import FarmError, InfraError
from farm.transport.remote import UnsafeRemoteValue, validate_name, validate_remote_path
from farm.transport.ssh_host import SshHost
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.registry import get_toolchain
from farm.workers.toolchains.runners.base import DEFAULT_COMPILE_TIMEOUT_S, SHORT_TIMEOUT_S
from farm.workers.toolchains.runners.host import IN_DIR, MODEL_NAME, OUT_DIR, HostRunner, tail

log = logging.getLogger(__name__)

CONTAINER_WORK = "/work"
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}")
_USER = re.compile(r"[0-9]{1,10}:[0-9]{1,10}")
#: How Docker and podman say an image is missing.
_NO_IMAGE = ("No such image", "No such object", "image not known", "failed to find image")
#: How a full disk shows in an engine's or a toolchain's output (ENOSPC's text, and podman's wording).
NO_SPACE = ("No space left on device", "no space left on device")
_UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
    "permission denied while trying to connect",
)


def validate_image(image: str) -> str:
    """A Docker image reference (``repo[:tag][@digest]``): nothing a shell or docker would read as an option."""
    if not isinstance(image, str) or not _IMAGE.fullmatch(image):
        raise UnsafeRemoteValue(f"invalid Docker image reference {image!r}")
    return image


def docker_run_argv(
    image: str,
    command: list[str],
    *,
    name: str,
    job_dir: str | None = None,
    user: str | None = None,
    docker: str | ContainerEngine = "docker",
    limits: ComputeLimits | None = None,
) -> list[str]:
    """``docker run`` of ``command`` in ``image``, with ``job_dir`` (a host path) mounted at /work.
    ``docker``: the CLI's name, or a :class:`ContainerEngine` (its env, command and global options)."""
    engine = docker if isinstance(docker, ContainerEngine) else ContainerEngine(command=docker)
    argv = [
        *engine.argv(),
        "run",
        "--rm",
        "--name",
        validate_name(name),
        "--network",
        "none",
        "--pull",
        "never",
    ]
    if limits is not None:
        argv += limits.argv()
    if job_dir is not None:
        validate_remote_path(job_dir)
        if ":" in job_dir:  # -v SRC:DST[:OPTS] cannot say where a path with a colon ends
            raise UnsafeRemoteValue(f"a job folder for `docker run -v` cannot contain ':': {job_dir!r}")
        argv += ["-v", f"{job_dir}:{CONTAINER_WORK}", "-w", CONTAINER_WORK]
    if user is not None:
        if not _USER.fullmatch(user):
            raise UnsafeRemoteValue(f"docker --user must be uid:gid (digits), got {user!r}")
        argv += ["--user", user, "--env", f"HOME={CONTAINER_WORK}"]
    if not command:
        raise UnsafeRemoteValue("empty container command")
    return [*argv, validate_image(image), *command]


class DockerRunner(HostRunner):
    """``user``: ``"auto"`` (the SSH user's uid:gid, asked once), ``"uid:gid"``, or None (the image's user;
    files it writes may then not be removable by the SSH user)."""

    kind = "docker"

    def __init__(
        self,
        transport: SshHost,
        *,
        host_name: str | None = None,
        timeout_s: float = DEFAULT_COMPILE_TIMEOUT_S,
        user: str | None = "auto",
        docker: str | ContainerEngine = "docker",
        limits: ComputeLimits | None = None,
    ) -> None:
        super().__init__(transport, host_name=host_name, timeout_s=timeout_s)
        self.user = user
        self.engine = docker if isinstance(docker, ContainerEngine) else ContainerEngine(command=docker)
        self.docker = self.engine.command  # the CLI's name, for messages
        self.limits = limits or ComputeLimits()
        self.image: str | None = None
        self.image_id: str | None = None
        self.image_digest: str | None = None
        self._checked: set[str] = set()

    def describe(self) -> dict[str, Any]:
        return {
            "runner": self.kind,
            "host": self.host_name,
            "image": self.image,
            "image_id": self.image_id,
            "image_digest": self.image_digest,
        }

    @staticmethod
    def image_for(toolchain_name: str) -> str:
        image = get_toolchain(toolchain_name).container_image
        if not image:
            raise FarmError(
                f"toolchain {toolchain_name!r} declares no container image: it cannot run in Docker"
            )
        return validate_image(image)

    # ------------------------------------------------------------------ hooks

    def _prepare(self, toolchain_name: str) -> None:
        image = self.image_for(toolchain_name)
        self.image = image
        if image in self._checked:
            return
        rc, out, err = self.transport.exec(
            [*self.engine.argv(), "image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", image],
            SHORT_TIMEOUT_S,
        )
        if rc != 0:
            raise InfraError(self._docker_problem(rc, err or out, image))
        raw_id, _, digests = out.strip().partition(" ")
        self.image_id = image_id(raw_id)
        self.image_digest = _repo_digest(image, digests)
        if self.user == "auto":
            rc, out, err = self.transport.exec(["sh", "-c", 'echo "$(id -u):$(id -g)"'], SHORT_TIMEOUT_S)
            if rc != 0 or not _USER.fullmatch(out.strip()):
                raise InfraError(
                    f"compile host {self.host_name}: cannot read the SSH user's uid:gid: {tail(err)}"
                )
            self.user = out.strip()
        self._checked.add(image)

    def compile_command(
        self, toolchain_name: str, job_id: str, job_dir: str, precision: str, quant: QuantConfig
    ) -> list[str]:
        tc = get_toolchain(toolchain_name)
        inner = tc.container_command(
            self.input_path(job_dir, MODEL_NAME), f"{CONTAINER_WORK}/{OUT_DIR}", precision, quant
        )
        user = None if self.user == "auto" else self.user
        return docker_run_argv(
            self.image_for(toolchain_name),
            inner,
            name=_container_name(job_id),
            job_dir=job_dir,
            user=user,
            docker=self.engine,
            limits=self.limits,
        )

    def job_inputs(self, toolchain_name: str) -> dict[str, Path]:
        return get_toolchain(toolchain_name).container_inputs()

    def input_path(self, job_dir: str, name: str) -> str:
        return f"{CONTAINER_WORK}/{IN_DIR}/{name}"  # the job dir is mounted at CONTAINER_WORK

    def version_command(self, toolchain_name: str, job_id: str) -> list[str]:
        tc = get_toolchain(toolchain_name)
        return docker_run_argv(
            self.image_for(toolchain_name),
            tc.container_version_command(),
            name=_container_name(job_id),
            docker=self.engine,
            limits=self.limits,
        )

    def _after_failure(self, job_id: str) -> None:
        # kill (SIGKILL on both engines), then remove: podman's `rm -f` alone first waits 10 s on SIGTERM
        name = _container_name(job_id)
        try:
            self.transport.exec([*self.engine.argv(), "kill", name], SHORT_TIMEOUT_S)
            self.transport.exec([*self.engine.argv(), "rm", "-f", name], SHORT_TIMEOUT_S)
        except FarmError as exc:
            log.warning("could not remove container %s on %s: %s", name, self.host_name, exc)

    def _explain(self, what: str, rc: int, stderr: str) -> str:
        where = f"compile host {self.host_name}"
        if any(marker in stderr for marker in NO_SPACE):
            return (
                f"{where}: no space left on device during {what}: free space in {self.transport.work_dir} "
                f"(the job folder) or in the engine's image store on the host: {tail(stderr)}"
            )
        if rc == 137 and self.limits.memory_mb is not None:
            return (
                f"{where}: {what} was killed (exit 137), most likely at its container memory limit of "
                f"{self.limits.memory_mb} MB (the compile host's limits.memory_mb): {tail(stderr)}"
            )
        if rc == 125:
            return (
                f"{where}: `{self.docker} run` itself failed for {what} (exit 125: the engine could not "
                f"start the container): {tail(stderr)}"
            )
        if rc in (126, 127):
            return (
                f"{where}: {what}: the command cannot be run inside {self.image} (exit {rc}; is the toolchain "
                f"in the image?): {tail(stderr)}"
            )
        return super()._explain(what, rc, stderr)

    def _docker_problem(self, rc: int, err: str, image: str) -> str:
        where = f"compile host {self.host_name}"
        if rc == 127 or ("not found" in err.lower() and self.docker in err):
            return (
                f"{where}: no container engine: `{self.docker}` is not installed ({tail(err)}). Install Docker "
                f"(or podman, with the host's engine: in the inventory), or give the host `runner: host` to run "
                f"toolchains installed on it."
            )
        if any(marker in err for marker in _UNREACHABLE):
            return (
                f"{where}: the Docker engine is unreachable: the docker CLI is installed but cannot reach a "
                f"running daemon as user {self.transport.user!r} ({tail(err)}). Start dockerd, give the user "
                f"access to its socket, or use `runner: host` for this host."
            )
        if any(marker in err for marker in _NO_IMAGE):
            return (
                f"{where}: image {image} is not on the host (the runner never pulls): run `{self.docker} pull "
                f"{image}` (or build it) there; the inventory's images list says it is present."
            )
        if any(marker in err for marker in NO_SPACE):
            return f"{where}: no space left on device for the engine ({tail(err)})"
        return f"{where}: `{self.docker} image inspect {image}` failed (exit {rc}): {tail(err)}"


def _container_name(job_id: str) -> str:
    return f"farm-compile-{job_id}"


def _repo_digest(image: str, digests_json: str) -> str | None:
    """The ``sha256:...`` registry digest of ``image``'s repository, if the host knows one."""
    try:
        digests = json.loads(digests_json or "[]") or []
    except ValueError:
        return None
    repo = image.split("@")[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:  # strip the tag (a ':' in an earlier part is a registry port)
        repo = repo[: len(repo) - len(last)] + last.split(":")[0]
    for entry in digests:
        name, _, digest = str(entry).partition("@")
        if digest and name in (repo, f"docker.io/{repo}", f"docker.io/library/{repo}", f"localhost/{repo}"):
            return digest
    first = str(digests[0]).partition("@")[2] if digests else ""
    return first or None
