"""Inventory: board-type catalog, boards, Docker hosts and pools. Pure data, validated with located errors.

Describing hardware is kept apart from driving it (labgrid's lesson): nothing here opens a connection.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from farm.config import load_settings
from farm.containers.engine import ComputeLimits, ContainerEngine
from farm.errors import InventoryError
from farm.sweep.yaml_lines import Path_, dotted, line_for, load_with_lines, read_yaml_text
from farm.targets import host_type, is_board_cpu, parse_board_cpu
from farm.transport import TRANSPORTS

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
HOST = r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$"  # a DNS name, IPv4 or IPv6 literal: nothing a shell would read
USER = r"^[a-z_][a-z0-9_-]{0,31}$"
REMOTE_DIR = r"^/[A-Za-z0-9_./-]*$"
Name = Annotated[str, Field(pattern=NAME)]
Count = Annotated[int, Field(gt=0, le=2**31 - 1)]  # fits an INTEGER column


class Strict(BaseModel):
    # allow_inf_nan=False: a number typed as "inf" or "nan" is refused like YAML's .inf
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Accelerator(Strict):
    """What does the work: a DPU configuration, a GPU, or the CPU itself."""

    kind: Literal["dpu", "gpu", "cpu"]
    ip: str | None = None  # e.g. DPUCZDX8G
    config: str | None = None  # e.g. B4096
    cores: Count = 1
    clock_mhz: float | None = Field(default=None, gt=0)
    peak_tops_int8: float | None = Field(default=None, gt=0)  # GPUs: vendor peak figures
    peak_tflops_fp32: float | None = Field(default=None, gt=0)


class Memory(Strict):
    bandwidth_gbps: float = Field(gt=0)  # peak, 1e9 bytes/s
    capacity_mib: Count


class HostCpu(Strict):
    model: str
    cores: Count
    clock_mhz: float = Field(gt=0)


class PowerModel(Strict):
    """Board power = static + dynamic x accelerator utilisation (the virtual lab's power model)."""

    static_w: float = Field(ge=0)
    dynamic_w: float = Field(ge=0)


class ThermalModel(Strict):
    """First-order thermal model: T' = (ambient + r_th * P - T) / tau; above limit_c the clock drops to
    throttle_clock_fraction until T falls hysteresis_c below the limit."""

    ambient_c: float = 25.0
    r_th_c_per_w: float = Field(gt=0)
    tau_s: float = Field(gt=0)
    limit_c: float
    throttle_clock_fraction: float = Field(default=0.5, gt=0, le=1)
    hysteresis_c: float = Field(default=3.0, ge=0)


class Price(Strict):
    """What a board of the type costs to buy and keep idle, for procurement (docs/procurement.md): the
    figure, where it came from and when, whether it is a placeholder, and what it needs beside it."""

    list_usd: float = Field(ge=0)
    source: str = ""  # where the number came from ("seed design", a quote, a vendor page)
    date: str = ""  # when ("2026-11"); quoted in YAML so it stays text
    placeholder: bool = True  # no source worth quoting: outputs say a placeholder was used
    host_share_usd: float = Field(default=0.0, ge=0)  # the share of a host machine a card needs (PCIe cards)
    host_share_w: float = Field(default=0.0, ge=0)  # that host share's power draw
    host_share_placeholder: bool = False
    idle_w: float | None = Field(default=None, ge=0)  # default: the power model's static_w


IMAGE_REF = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}"
)  # nothing a shell or docker reads as an option
TOOLCHAIN_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


class ToolchainImage(Strict):
    """The compile image of a type whose toolchain's default image cannot compile for it (the U50's
    DPUCAHX8H left Vitis AI after 2.5, so it compiles in an older image than the ZCU104 and VCK190). The
    version is recorded with the artifact and is part of its key, so artifacts of two images never mix."""

    image: str
    version: str

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not IMAGE_REF.fullmatch(value):
            raise ValueError(f"{value!r} is not a Docker image reference (repo[:tag][@digest])")
        if "@" not in value and ":" not in value.rsplit("/", 1)[-1]:
            raise ValueError(
                f"{value!r} names no tag or digest: pin one (e.g. {value}:2.5), since an untagged image is "
                ":latest, which changes under the farm's artifact keys"
            )
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not TOOLCHAIN_VERSION.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a toolchain version (letters, digits and ._+-, e.g. vitis-ai-2.5.0)"
            )
        return value


class Emulation(Strict):
    """How the virtual lab drives this type: its own toolchain (plan + timing) and the emulated backend."""

    toolchain: str
    backend: str = "emulated"


class BoardType(Strict):
    family: Literal["fpga", "gpu", "cpu"]
    description: str = ""
    toolchain: str
    backend: str
    source: Literal["measured", "emulated"] = "measured"
    precisions: list[Literal["fp32", "fp16", "bf16", "int8"]] = ["fp32", "int8"]  # fp16/bf16: GPU run dtypes
    accelerator: Accelerator | None = None
    memory: Memory | None = None
    host_cpu: HostCpu | None = None
    power: PowerModel | None = None
    thermal: ThermalModel | None = None
    sensors: list[str] = []
    list_price_usd: float | None = Field(default=None, ge=0)  # kept for older files; price: wins
    price: Price | None = None
    tdp_w: float | None = Field(default=None, gt=0)
    notes: str = ""
    emulation: Emulation | None = None
    toolchain_image: ToolchainImage | None = None  # None: the toolchain's own image (workers/toolchains/)
    threads: int | None = Field(default=None, ge=1)  # a board CPU target's threads (set by board_cpu_type)
    runs_on: str | None = None  # a board CPU target's board type (set by board_cpu_type)

    @model_validator(mode="before")
    @classmethod
    def _price_fills_list_price(cls, data: object) -> object:
        """``list_price_usd`` stays readable: a ``price:`` block sets it; both given must agree."""
        if isinstance(data, dict) and isinstance(data.get("price"), dict):
            usd = data["price"].get("list_usd")
            if isinstance(usd, int | float) and not isinstance(usd, bool):
                given = data.get("list_price_usd")
                if given is None:
                    data = {**data, "list_price_usd": usd}
                elif isinstance(given, int | float) and float(given) != float(usd):
                    raise ValueError(f"list_price_usd {given} and price.list_usd {usd} disagree: keep one")
        return data

    def emulated(self) -> BoardType:
        """This type as the virtual lab drives it (emulation toolchain and backend, source emulated)."""
        if self.emulation is None:
            raise ValueError("this board type has no emulation: section")
        return self.model_copy(
            update={
                "toolchain": self.emulation.toolchain,
                "backend": self.emulation.backend,
                "source": "emulated",
            }
        )


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


class BoardEmulation(Strict):
    """An emulated board (virtual lab): where its emulated sensor files and state live ON the board host
    (a tree laid out like / : <root>/sys/class/hwmon/..., <root>/emu/...), and how fast its time runs."""

    root: str = Field(pattern=REMOTE_DIR)
    time_scale: float = Field(default=1.0, gt=0, le=1)  # < 1 speeds emulated time up (tests)

    @model_validator(mode="after")
    def _no_dotdot(self) -> BoardEmulation:
        if ".." in self.root.split("/"):
            raise ValueError("root must not contain '..'")
        return self


class Board(Strict):
    name: str = Field(pattern=NAME)
    type: str = Field(pattern=NAME)
    transport: str = "local"  # a name of farm.transport.TRANSPORTS
    ssh: SshEndpoint | None = None
    serial: str | None = None
    emulation: BoardEmulation | None = None
    # A file on the board holding the room's temperature (a plain number in C, or hwmon millidegrees):
    # recorded with every run as provenance (ambient_c). Emulated boards publish their own.
    ambient_sensor: str | None = Field(default=None, pattern=REMOTE_DIR)

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, value: str) -> str:
        if value not in TRANSPORTS:
            raise ValueError(f"unknown transport {value!r}; known: {', '.join(sorted(TRANSPORTS))}")
        return value

    @model_validator(mode="after")
    def _ssh_needs_endpoint(self) -> Board:
        if self.transport == "ssh" and self.ssh is None:
            raise ValueError(
                "a board with transport: ssh needs an ssh: section (host, user, key_file, known_hosts)"
            )
        if self.transport == "local" and self.ssh is not None:
            raise ValueError("ssh: is only for transport: ssh")
        if self.ambient_sensor is not None and ".." in self.ambient_sensor.split("/"):
            raise ValueError("ambient_sensor must not contain '..'")
        return self


class DockerHost(Strict):
    """Runs compile jobs: `docker run` of a toolchain image, or (runner: host) toolchains installed on it."""

    name: str = Field(pattern=NAME)
    ssh: SshEndpoint
    runner: Literal["docker", "host"] = "docker"
    images: list[str] = []
    engine: ContainerEngine = (
        ContainerEngine()
    )  # runner: docker: the engine's CLI (farm/containers/engine.py)
    limits: ComputeLimits = ComputeLimits()  # runner: docker: per-compile container limits


class Catalog(Strict):
    board_types: dict[Name, BoardType]  # a type names a queue (run.<type>): a plain name


class Lab(Strict):
    boards: list[Board] = Field(min_length=1)
    docker_hosts: list[DockerHost] = []
    pools: dict[Name, list[str]] = {}


def board_cpu_type(parent: BoardType, target: str) -> BoardType | None:
    """The board's own ARM CPU as a target type (issue 13): family cpu, ONNX Runtime on the board's cores
    (``threads``: all of them, or ``:N``), its power and thermal model, price and sensors the board's; in a
    virtual lab, timed by the calibrated ARM CPU model (``cpu_emulator``, farm/perfmodel/armcpu.py). None
    for a target that is not ``<type>:cpu[:N]`` or a board without an ARM application CPU."""
    parsed = parse_board_cpu(target)
    cpu = parent.host_cpu
    if (
        parsed is None
        or parent.family != "fpga"
        or cpu is None
        or not cpu.model.lower().startswith("cortex-a")
    ):
        return None
    threads = parsed[1]
    if threads is not None and threads > cpu.cores:
        return None
    n = threads or cpu.cores
    emulated = parent.source == "emulated"
    return parent.model_copy(
        update={
            "family": "cpu",
            "description": f"The {host_type(target)}'s own {cpu.model} ({cpu.cores} cores @ {cpu.clock_mhz:g} MHz), "
            f"{n} thread{'s' if n > 1 else ''}, ONNX Runtime through the board's agent.",
            "toolchain": "cpu_emulator" if emulated else "onnxruntime_cpu",
            "backend": "emulated" if emulated else "onnxruntime_cpu",
            "precisions": ["fp32", "int8"],
            "accelerator": None,
            "threads": n,
            "runs_on": host_type(target),
            "toolchain_image": None,
            "emulation": Emulation(toolchain="cpu_emulator", backend="emulated")
            if parent.emulation
            else None,
        }
    )


class BoardTypes(dict):
    """The catalog's board types, and on demand each board's own CPU (``pynq-z2:cpu``, ``pynq-z2:cpu:1``):
    those are looked up (``[]``, ``get``, ``in``) but not listed, so every listing of the catalog stays
    the catalog."""

    def __missing__(self, key: str) -> BoardType:
        derived = self._derived(key)
        if derived is None:
            raise KeyError(key)
        return derived

    def _derived(self, key: object) -> BoardType | None:
        if not isinstance(key, str) or not is_board_cpu(key):
            return None
        parent = dict.get(self, host_type(key))
        return board_cpu_type(parent, key) if parent is not None else None

    def get(self, key, default=None):  # type: ignore[override]
        return dict.get(self, key) or self._derived(key) or default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._derived(key) is not None


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

    def precisions_of(self, targets: list[str]) -> dict[str, list[str]]:
        """Target -> the precisions its board type runs (a board's own CPU too): what a sweep expands to."""
        return {t: self.board_types[t].precisions for t in targets}

    def boards_of(self, board_type: str) -> list[Board]:
        """The boards that run a target (a board's own CPU ``<type>:cpu`` runs on the boards of the type)."""
        return [b for b in self.boards if b.type == host_type(board_type)]

    def board(self, name: str) -> Board:
        for b in self.boards:
            if b.name == name:
                return b
        raise InventoryError(f"no board named {name!r}; boards: {', '.join(b.name for b in self.boards)}")

    def resolve(self, path: str) -> Path:
        """Key and known_hosts paths are relative to the inventory folder."""
        try:
            p = Path(path).expanduser()
            return p if p.is_absolute() else (self.base_dir / p).resolve()
        except (RuntimeError, OSError, ValueError) as exc:  # ~nobody/..., a symlink loop
            raise InventoryError(f"cannot resolve {path!r}: {exc}", path=str(self.base_dir)) from None


def _load(path: Path, model: type[BaseModel]) -> tuple[BaseModel, dict[Path_, int]]:
    """One inventory file, validated: InventoryError (file:line: field) for anything wrong, nothing else."""
    text = read_yaml_text(path, what="inventory file", error=InventoryError)
    data, lines = load_with_lines(text, str(path), error=InventoryError)
    if not isinstance(data, dict):
        raise InventoryError("an inventory file must be a YAML mapping", path=str(path), line=1)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        from farm.sweep.explain import all_at_once, explain_all

        raise all_at_once(
            [
                InventoryError(msg, path=str(path), line=line_for(lines, loc), field=dotted(loc))
                for msg, loc in explain_all(exc.errors(), model)
            ]
        ) from None


_CATALOG_CACHE: dict[tuple[str, int, int], dict[str, BoardType]] = {}


def load_catalog(directory: Path | None = None) -> dict[str, BoardType]:
    """The board types alone (board-types.yaml of ``directory``, else the settings' inventory), for code
    that needs a type's facts and no lab (a compile image); loaded again only when the file changes."""
    path = (directory or load_settings().inventory_dir) / "board-types.yaml"
    stamp = _stamp(path)
    cached = _CATALOG_CACHE.get(stamp) if stamp is not None else None
    if cached is not None:
        return cached
    catalog, _ = _load(path, Catalog)
    assert isinstance(catalog, Catalog)
    types = dict(catalog.board_types)
    if stamp is not None:
        if len(_CATALOG_CACHE) > 16:
            _CATALOG_CACHE.clear()
        _CATALOG_CACHE[stamp] = types
    return types


def lab_path(directory: Path, lab: str | None = None) -> Path:
    chosen = Path(lab or load_settings().lab or "local.yaml")
    return chosen if chosen.is_absolute() else directory / chosen


def _stamp(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except (OSError, ValueError):  # ValueError: a NUL in FARM_LAB
        return None
    return str(path), st.st_mtime_ns, st.st_size


_CACHE: dict[tuple, Inventory] = {}


def load_inventory(directory: Path, lab: str | None = None) -> Inventory:
    """The catalog (board-types.yaml) and one lab file (FARM_LAB, default local.yaml; absolute or relative).

    Loaded again only when either file changed (path, mtime, size): a worker reads it for every job, and
    an Inventory is immutable, so the parsed one is shared."""
    path = lab_path(directory, lab)
    stamp = (_stamp(directory / "board-types.yaml"), _stamp(path))
    cached = _CACHE.get(stamp) if None not in stamp else None
    if cached is not None:
        return cached
    inventory = _load_inventory(directory, path)
    if None not in stamp:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[stamp] = inventory
    return inventory


def _load_inventory(directory: Path, path: Path) -> Inventory:
    catalog, _ = _load(directory / "board-types.yaml", Catalog)
    lab_data, lines = _load(path, Lab)
    assert isinstance(catalog, Catalog) and isinstance(lab_data, Lab)

    def fail(msg: str, loc: Path_) -> InventoryError:
        return InventoryError(msg, path=str(path), line=line_for(lines, loc), field=dotted(loc))

    seen: set[str] = set()
    emulated_types: dict[str, bool] = {}
    for i, board in enumerate(lab_data.boards):
        if board.type not in catalog.board_types:
            valid = ", ".join(sorted(catalog.board_types))
            raise fail(f"unknown board type {board.type!r} (valid: {valid})", ("boards", i, "type"))
        if board.name in seen:
            raise fail(f"duplicate board name {board.name!r}", ("boards", i, "name"))
        seen.add(board.name)
        emulated = board.emulation is not None
        if emulated and catalog.board_types[board.type].emulation is None:
            raise fail(f"board type {board.type!r} cannot be emulated", ("boards", i, "emulation"))
        if emulated_types.setdefault(board.type, emulated) != emulated:
            raise fail(
                f"boards of type {board.type!r} are both real and emulated in this lab; one lab keeps "
                "measured and emulated results of a type apart, so use one or the other",
                ("boards", i, "emulation"),
            )
    for pool, members in lab_data.pools.items():
        for j, member in enumerate(members):
            if member not in seen:
                raise fail(f"pool {pool!r} names unknown board {member!r}", ("pools", pool, j))
    hosts = [h.name for h in lab_data.docker_hosts]
    counts = Counter(hosts)  # linear: a lab may list many hosts
    for i, name in enumerate(hosts):
        if counts[name] > 1:
            raise fail(f"duplicate docker host name {name!r}", ("docker_hosts", i, "name"))
    board_types = BoardTypes(
        {
            name: (bt.emulated() if emulated_types.get(name) else bt)
            for name, bt in catalog.board_types.items()
        }
    )
    return Inventory(
        board_types=board_types,
        boards=lab_data.boards,
        docker_hosts=lab_data.docker_hosts,
        pools=lab_data.pools,
        base_dir=path.parent,
    )
