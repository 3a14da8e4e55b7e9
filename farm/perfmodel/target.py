"""What a prediction is for: a DPU configuration on a board (cores, clock, memory, host CPU).

Why: the same model runs very differently on a B512 behind 16-bit DDR3 and on two B4096 cores; the
catalog (inventory/board-types.yaml) says which board has what, and the CLI may override any of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from farm.errors import ModelError
from farm.perfmodel.configs import DpuConfig, dpu_config, parse_dpu

#: Host CPU speed per cycle relative to a Cortex-A53 (in-order, dual issue). Public sources give no single
#: figure; these are our choice from typical SPEC/Geekbench per-clock ratios.
HOST_IPC: dict[str, float] = {
    "cortex-a9": 0.8,
    "cortex-a53": 1.0,
    "cortex-a72": 1.8,
    "carmel": 2.2,
    "x86-64": 3.0,
}
#: Share of the board's DDR that DPU buffers may use where Linux shares it (CMA and friends); an Alveo
#: card's HBM is the DPU's own.
SHARED_MEMORY_FRACTION = 0.5
DEDICATED_MEMORY_FRACTION = 0.9


@dataclass(frozen=True)
class HostCpu:
    model: str
    cores: int
    clock_mhz: float

    @property
    def ipc(self) -> float:
        key = self.model.lower()
        for name, ipc in HOST_IPC.items():
            if name in key:
                return ipc
        return 1.0

    @property
    def cycles_per_s(self) -> float:
        """A53-equivalent cycles per second of one core."""
        return self.clock_mhz * 1e6 * self.ipc


@dataclass(frozen=True)
class DpuTarget:
    board: str
    dpu: DpuConfig
    cores: int
    clock_mhz: float
    bandwidth_gbps: float
    capacity_mib: float
    host: HostCpu

    @property
    def arch(self) -> str:
        """The artifact's target_arch, e.g. "DPUCZDX8G-B4096x2@300MHz"."""
        return f"{self.dpu.name}x{self.cores}@{self.clock_mhz:g}MHz"

    @property
    def usable_bytes(self) -> float:
        frac = DEDICATED_MEMORY_FRACTION if self.dpu.ip == "DPUCAHX8H" else SHARED_MEMORY_FRACTION
        return self.capacity_mib * 2**20 * frac

    @property
    def peak_tops(self) -> float:
        return self.dpu.peak_tops(self.clock_mhz, self.cores)


def catalog_path() -> Path:
    """The catalog of the inventory the settings name (FARM_INVENTORY, else the built-in one)."""
    from farm.config import load_settings

    return load_settings().inventory_dir / "board-types.yaml"


def load_catalog(path: Path | None = None):
    """The board-type catalog (boards in the lab do not matter here); cached per file and mtime."""
    p = (path or catalog_path()).resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise ModelError(f"board-type catalog not found: {p}") from None
    return _load_catalog(p, mtime)


@functools.lru_cache(maxsize=8)
def _load_catalog(path: Path, mtime_ns: int):
    from farm.inventory import Catalog

    data = yaml.safe_load(path.read_text())
    return Catalog.model_validate(data).board_types


def board_type(name: str, path: Path | None = None):
    types = load_catalog(path)
    if name not in types:
        raise ModelError(f"unknown board type {name!r}; valid: {', '.join(sorted(types))}")
    return types[name]


def dpu_target(
    board: str,
    *,
    dpu: str | None = None,
    cores: int | None = None,
    clock_mhz: float | None = None,
    catalog: Path | None = None,
) -> DpuTarget:
    """The DPU target of catalog board type ``board``, with optional overrides."""
    bt = board_type(board, catalog)
    acc = bt.accelerator
    if acc is None or acc.kind != "dpu":
        raise ModelError(f"board type {board!r} has no DPU (accelerator: {acc.kind if acc else None})")
    if bt.memory is None or bt.host_cpu is None:
        raise ModelError(f"board type {board!r} lacks memory: or host_cpu: in the catalog")
    cfg = parse_dpu(dpu) if dpu else dpu_config(acc.ip or "", acc.config or "")
    n_cores = cores or cfg.config_cores or acc.cores  # "2x3E" fixes its cores; else the catalog's
    if n_cores < 1:
        raise ModelError("cores must be at least 1")
    clock = float(clock_mhz or acc.clock_mhz or 300.0)
    if clock <= 0:
        raise ModelError("clock must be positive")
    host = HostCpu(bt.host_cpu.model, bt.host_cpu.cores, bt.host_cpu.clock_mhz)
    return DpuTarget(
        board=board,
        dpu=cfg,
        cores=int(n_cores),
        clock_mhz=clock,
        bandwidth_gbps=bt.memory.bandwidth_gbps,
        capacity_mib=bt.memory.capacity_mib,
        host=host,
    )


def with_overrides(t: DpuTarget, **kw) -> DpuTarget:
    return replace(t, **kw)
