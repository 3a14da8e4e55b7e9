"""Inventory: board-type catalog, boards, Docker hosts and pools. Pure data, validated with located errors.

Describing hardware is kept apart from driving it (labgrid's lesson): nothing here opens a connection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from farm.errors import InventoryError
from farm.sweep.yaml_lines import Path_, dotted, line_for, load_with_lines

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
HOST = r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$"  # a DNS name, IPv4 or IPv6 literal: nothing a shell would read
USER = r"^[a-z_][a-z0-9_-]{0,31}$"
REMOTE_DIR = r"^/[A-Za-z0-9_./-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Accelerator(Strict):
    """What does the work: a DPU configuration, a GPU, or the CPU itself."""

    kind: Literal["dpu", "gpu", "cpu"]
    ip: str | None = None  # e.g. DPUCZDX8G
    config: str | None = None  # e.g. B4096
    cores: PositiveInt = 1
    clock_mhz: float | None = None


class BoardType(Strict):
    family: Literal["fpga", "gpu", "cpu"]
    description: str = ""
    toolchain: str
    backend: str
    source: Literal["measured", "emulated"] = "measured"
    accelerator: Accelerator | None = None
    sensors: list[str] = []
    list_price_usd: float | None = Field(default=None, ge=0)
    tdp_w: float | None = Field(default=None, gt=0)
    notes: str = ""


class SshEndpoint(Strict):
    """A machine reached over SSH. The key and known_hosts are file paths: never key material."""

    host: str = Field(pattern=HOST)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(pattern=USER)
    key_file: str
    known_hosts: str
    work_dir: str = Field(default="/tmp/farm", pattern=REMOTE_DIR)
    python: str = Field(default="python3", pattern=r"^[A-Za-z0-9_./-]+$")

    @model_validator(mode="after")
    def _no_dotdot(self) -> SshEndpoint:
        if ".." in self.work_dir.split("/"):
            raise ValueError("work_dir must not contain '..'")
        return self


class Board(Strict):
    name: str = Field(pattern=NAME)
    type: str = Field(pattern=NAME)
    transport: Literal["local", "ssh"] = "local"
    ssh: SshEndpoint | None = None
    serial: str | None = None

    @model_validator(mode="after")
    def _ssh_needs_endpoint(self) -> Board:
        if self.transport == "ssh" and self.ssh is None:
            raise ValueError(
                "a board with transport: ssh needs an ssh: section (host, user, key_file, known_hosts)"
            )
        if self.transport == "local" and self.ssh is not None:
            raise ValueError("ssh: is only for transport: ssh")
        return self


class DockerHost(Strict):
    """Runs compile jobs: `docker run` of a toolchain image, or (runner: host) toolchains installed on it."""

    name: str = Field(pattern=NAME)
    ssh: SshEndpoint
    runner: Literal["docker", "host"] = "docker"
    images: list[str] = []


class Catalog(Strict):
    board_types: dict[str, BoardType]


class Lab(Strict):
    boards: list[Board] = Field(min_length=1)
    docker_hosts: list[DockerHost] = []
    pools: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Inventory:
    board_types: dict[str, BoardType]
    boards: list[Board]
    docker_hosts: list[DockerHost]
    pools: dict[str, list[str]]
    base_dir: Path

    def targets(self) -> list[str]:
        """Board types a sweep may name: those with at least one board in the lab."""
        return sorted({b.type for b in self.boards})

    def boards_of(self, board_type: str) -> list[Board]:
        return [b for b in self.boards if b.type == board_type]

    def board(self, name: str) -> Board:
        for b in self.boards:
            if b.name == name:
                return b
        raise InventoryError(f"no board named {name!r}; boards: {', '.join(b.name for b in self.boards)}")

    def resolve(self, path: str) -> Path:
        """Key and known_hosts paths are relative to the inventory folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()


def _load(path: Path, model: type[BaseModel]) -> tuple[BaseModel, dict[Path_, int]]:
    if not path.is_file():
        raise InventoryError("inventory file not found", path=str(path))
    data, lines = load_with_lines(path.read_text(), str(path))
    if not isinstance(data, dict):
        raise InventoryError("an inventory file must be a YAML mapping", path=str(path), line=1)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise InventoryError(msg, path=str(path), line=line_for(lines, loc), field=dotted(loc)) from None


def lab_path(directory: Path, lab: str | None = None) -> Path:
    chosen = Path(lab or os.environ.get("FARM_LAB") or "local.yaml")
    return chosen if chosen.is_absolute() else directory / chosen


def load_inventory(directory: Path, lab: str | None = None) -> Inventory:
    """The catalog (board-types.yaml) and one lab file (FARM_LAB, default local.yaml; absolute or relative)."""
    catalog, _ = _load(directory / "board-types.yaml", Catalog)
    path = lab_path(directory, lab)
    lab_data, lines = _load(path, Lab)
    assert isinstance(catalog, Catalog) and isinstance(lab_data, Lab)

    def fail(msg: str, loc: Path_) -> InventoryError:
        return InventoryError(msg, path=str(path), line=line_for(lines, loc), field=dotted(loc))

    seen: set[str] = set()
    for i, board in enumerate(lab_data.boards):
        if board.type not in catalog.board_types:
            valid = ", ".join(sorted(catalog.board_types))
            raise fail(f"unknown board type {board.type!r} (valid: {valid})", ("boards", i, "type"))
        if board.name in seen:
            raise fail(f"duplicate board name {board.name!r}", ("boards", i, "name"))
        seen.add(board.name)
    for pool, members in lab_data.pools.items():
        for j, member in enumerate(members):
            if member not in seen:
                raise fail(f"pool {pool!r} names unknown board {member!r}", ("pools", pool, j))
    hosts = [h.name for h in lab_data.docker_hosts]
    for i, name in enumerate(hosts):
        if hosts.count(name) > 1:
            raise fail(f"duplicate docker host name {name!r}", ("docker_hosts", i, "name"))
    return Inventory(
        board_types=catalog.board_types,
        boards=lab_data.boards,
        docker_hosts=lab_data.docker_hosts,
        pools=lab_data.pools,
        base_dir=path.parent,
    )
