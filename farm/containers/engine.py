"""What the Docker runner needs to know about a compile host's container engine: configuration, not code.

A lab with Docker needs nothing here (``docker`` on the PATH, the daemon's own settings). A host whose
engine is podman, or whose engine needs flags (a storage driver, an OCI runtime, its own image store) or an
environment variable (``CONTAINERS_CONF``), says so in the inventory::

    docker_hosts:
      - name: builder-1
        runner: docker
        images: [farm/compile:1.32.0]
        engine:
          command: podman                  # or docker, or /usr/bin/docker (podman-docker)
          options: [--storage-driver, vfs, --runtime, runc, --cgroup-manager, cgroupfs]
          env: {CONTAINERS_CONF: /etc/farm/containers.conf}
        limits: {memory_mb: 8192, cpus: 4}

Every word becomes one argv word of the remote command, quoted word by word like the rest
(farm/transport/remote.py), so each is checked here for what a shell or the engine could misread.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ComputeLimits", "ContainerEngine", "image_id"]

_COMMAND = re.compile(r"[A-Za-z0-9_./-]{1,255}")
_OPTION = re.compile(r"[A-Za-z0-9_.,:=/+-]{1,255}")  # flags and their values: no spaces, quotes, $ or ;
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_ENV_VALUE = re.compile(r"[A-Za-z0-9_.,:=/+-]{0,1024}")


class ContainerEngine(BaseModel):
    """The engine's CLI as the runner calls it: ``env K=V ... <command> <options...> run|image|rm ...``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = "docker"
    options: list[str] = []  # global options, before the subcommand (podman: --storage-driver, --root ...)
    env: dict[str, str] = {}  # set for every engine call (podman: CONTAINERS_CONF)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not _COMMAND.fullmatch(value) or value.startswith("-"):
            raise ValueError("must be a program name or absolute path (letters, digits, _ . / -)")
        return value

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[str]) -> list[str]:
        for word in value:
            if not _OPTION.fullmatch(word):
                raise ValueError(f"{word!r}: one word of letters, digits and _ . , : = / + - only")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: a variable name is upper-case letters, digits and _")
            if not _ENV_VALUE.fullmatch(text):
                raise ValueError(f"{name}={text!r}: letters, digits and _ . , : = / + - only")
        return value

    def argv(self) -> list[str]:
        """The words every engine call starts with."""
        env = [f"{k}={v}" for k, v in sorted(self.env.items())]
        return [*(["env", *env] if env else []), self.command, *self.options]


class ComputeLimits(BaseModel):
    """Per-container resource limits of a compile (``docker run --memory/--cpus/--pids-limit``). None: the
    engine's default (no limit). A compile that exceeds its memory is killed by the kernel (exit 137) and
    reported as such; the time limit is the runner's ``timeout_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_mb: int | None = Field(default=None, ge=6, le=2**31 - 1)  # docker refuses under 6 MB
    cpus: float | None = Field(default=None, gt=0, le=4096)
    pids: int | None = Field(default=None, ge=16, le=2**22)

    def argv(self) -> list[str]:
        words: list[str] = []
        if self.memory_mb is not None:
            # --memory-swap equal to --memory: no swap beyond the limit, so the limit is the limit.
            words += ["--memory", f"{self.memory_mb}m", "--memory-swap", f"{self.memory_mb}m"]
        if self.cpus is not None:
            words += ["--cpus", f"{self.cpus:g}"]
        if self.pids is not None:
            words += ["--pids-limit", str(self.pids)]
        return words


def image_id(raw: str) -> str | None:
    """An image id as Docker prints it (``sha256:<hex>``); podman prints the bare hex."""
    raw = raw.strip()
    if re.fullmatch(r"[0-9a-f]{64}", raw):
        return f"sha256:{raw}"
    return raw or None
