"""The virtual lab's files: the template (``inventory/virtual-lab.yaml``), the lab file ``farm lab up``
renders from it (``$FARM_DATA_DIR/lab/virtual-lab.yaml``, what FARM_LAB points at), and the state file
that remembers the lab's boards, addresses, ports and pids (``<data>/lab/state.json``)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from farm.config import Settings
from farm.errors import FarmError, InventoryError
from farm.inventory import NAME, BoardType
from farm.lab.physics.sensorfs import write_atomic
from farm.lab.sshd import (
    ClientKey,
)

TEMPLATE = "virtual-lab.yaml"


LAB_FILE = "virtual-lab.yaml"


STATE = "state.json"


FIRST_ADDRESS = 101  # 127.0.0.101 ...; the tests' own sshd boards use 127.0.0.2-99


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemplateBoard(_Strict):
    name: str = Field(pattern=NAME)
    type: str = Field(pattern=NAME)
    transport: Literal["local"] | None = None  # local: a real board of this machine (not emulated)


class Template(_Strict):
    time_scale: float = Field(default=1.0, gt=0, le=1)
    boards: list[TemplateBoard] = Field(min_length=1)


@dataclass
class LabBoard:
    """One board of a running lab, as the state file keeps it."""

    name: str
    type: str
    emulated: bool
    transport: str  # ssh | local
    serial: str | None = None
    root: str | None = None
    host: str | None = None
    port: int | None = None
    sshd_dir: str | None = None
    work_dir: str | None = None
    sshd_pid: int | None = None
    boardsim_pid: int | None = None
    time_scale: float | None = None


@dataclass
class LabHandle:
    """What ``up`` did: the lab file to export as FARM_LAB, the boards, and what the user should know."""

    lab_file: Path
    state_file: Path
    transport: str  # "ssh" (emulated boards behind sshd) or "local" (fallback without openssh-server)
    time_scale: float
    boards: list[LabBoard]
    notes: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    compile_host: dict | None = None  # farm/lab/compile_host.py's CompileHost, as the state keeps it

    @property
    def env(self) -> dict[str, str]:
        return {"FARM_LAB": str(self.lab_file)}


@dataclass
class BoardStatus:
    name: str
    type: str
    transport: str
    where: str
    sshd_up: bool | None  # None: the board has no sshd (local)
    boardsim_up: bool | None  # None: not emulated
    temp_c: float | None = None
    clock_mhz: float | None = None
    power_w: float | None = None
    throttled: bool | None = None
    age_s: float | None = None  # how old the simulator's last update is
    nominal_clock_mhz: float | None = None  # the catalog's
    clock_set_mhz: float | None = None  # set by `farm lab set` (None: nominal)
    ambient_c: float | None = None
    ambient_set: bool = False  # `farm lab set ... ambient_c=N` (else the catalog's)


def lab_dir(settings: Settings) -> Path:
    return (settings.data_dir / "lab").absolute()


def lab_file(settings: Settings) -> Path:
    return lab_dir(settings) / LAB_FILE


def state_file(settings: Settings) -> Path:
    return lab_dir(settings) / STATE


@contextlib.contextmanager
def locked(settings: Settings) -> Iterator[None]:
    directory = lab_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_template(path: Path) -> Template:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InventoryError(f"cannot read the virtual lab template: {exc}", path=str(path)) from None
    try:
        return Template.model_validate(data)
    except ValidationError as exc:
        from farm.sweep.explain import explain_all

        said = [f"{'.'.join(str(p) for p in loc)}: {msg}" for msg, loc in explain_all(exc.errors(), Template)]
        raise InventoryError("; ".join(said), path=str(path)) from None


def dpu_fingerprint(board_type: BoardType) -> str:
    """A stable 64-bit fingerprint of the accelerator configuration (what a real DPU reports as its
    fingerprint: the same IP and configuration give the same value)."""
    accelerator = board_type.accelerator.model_dump(exclude_none=True) if board_type.accelerator else {}
    digest = hashlib.sha256(json.dumps(accelerator, sort_keys=True).encode()).hexdigest()
    return "0x" + digest[:16].upper()


def select_boards(
    template: Template, boards: list[str] | None, keep_local: bool = True
) -> list[TemplateBoard]:
    """The template's boards ``boards`` names (names or types; all when None), and with ``keep_local`` its
    real local boards too (this machine's CPU): the baseline a comparison needs stays in the lab."""
    if not boards:
        return list(template.boards)
    chosen: list[TemplateBoard] = []
    for wanted in boards:
        matches = [b for b in template.boards if b.name == wanted] or [
            b for b in template.boards if b.type == wanted
        ]
        if not matches:
            names = ", ".join(b.name for b in template.boards)
            raise FarmError(f"no board or board type {wanted!r} in the virtual lab (boards: {names})")
        chosen += [b for b in matches if b not in chosen]
    if keep_local:
        chosen += [b for b in template.boards if b.transport == "local" and b not in chosen]
    return chosen


def read_lab_state(settings: Settings) -> dict:
    try:
        return json.loads(state_file(settings).read_text())
    except (OSError, ValueError):
        return {}


def write_lab_state(
    settings: Settings,
    time_scale: float,
    boards: dict[str, LabBoard],
    transport: str,
    compile_host: dict | None = None,
) -> None:
    doc = {
        "time_scale": time_scale,
        "transport": transport,
        "lab_file": str(lab_file(settings)),
        "boards": [asdict(b) for b in boards.values()],
        "compile_host": compile_host,
    }
    write_atomic(state_file(settings), json.dumps(doc, indent=2) + "\n")


def boards_from(state: dict) -> dict[str, LabBoard]:
    return {b["name"]: LabBoard(**b) for b in state.get("boards", [])}


def next_address(boards: dict[str, LabBoard]) -> str:
    used = {b.host for b in boards.values() if b.host}
    for i in range(FIRST_ADDRESS, 255):
        if f"127.0.0.{i}" not in used:
            return f"127.0.0.{i}"
    raise FarmError("no free 127.0.0.x address left for another emulated board")


def render(
    settings: Settings,
    boards: dict[str, LabBoard],
    client: ClientKey | None,
    time_scale: float,
    docker_hosts: list[str] = (),  # type: ignore[assignment]
) -> str:
    """The lab file: the boards, and ``docker_hosts`` (the compile host's lines, farm/lab/compile_host.py)."""
    lines = [
        "# Rendered by `farm lab up` from inventory/virtual-lab.yaml: do not edit (`farm lab down` removes it).",
        f"# export FARM_LAB={lab_file(settings)}",
        f"# time scale {time_scale:g}: emulated time runs {1 / time_scale:g}x faster than wall time.",
        "boards:",
    ]
    for b in boards.values():
        lines += [f"  - name: {b.name}", f"    type: {b.type}", f"    transport: {b.transport}"]
        if b.transport == "ssh":
            assert client is not None and b.work_dir
            known_hosts = Path(b.sshd_dir or "") / "known_hosts"
            lines += ["    ssh:", *ssh_lines(b.host, b.port, user(), client.private, known_hosts, b.work_dir)]
        if b.serial:
            lines.append(f"    serial: {b.serial}")
        if b.emulated:
            lines.append(f"    emulation: {{root: {b.root}, time_scale: {b.time_scale!r}}}")
    return "\n".join([*lines, *docker_hosts]) + "\n"


def ssh_lines(
    host: object,
    port: object,
    user: str,
    key_file: object,
    known_hosts: object,
    work_dir: object,
    indent: str = "      ",
) -> list[str]:
    """A lab file's ``ssh:`` fields for a host of this machine (boards, the compile host, the tests' loopback
    hosts): its Python is this one."""
    return [
        f"{indent}host: {host}",
        f"{indent}port: {port}",
        f"{indent}user: {user}",
        f"{indent}key_file: {key_file}",
        f"{indent}known_hosts: {known_hosts}",
        f"{indent}work_dir: {work_dir}",
        f"{indent}python: {sys.executable}",
    ]


def user() -> str:
    import getpass

    return getpass.getuser()
