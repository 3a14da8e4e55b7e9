"""The emulation profile an emulated toolchain writes into its artifact (docs/virtual-lab.md section 2).

Why one helper: the DPU and GPU emulators write the same ``farm.emulation`` metadata key with the same
fields, and the emulated backend reads exactly these.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx

from workers.toolchains.base import Toolchain

EMULATION_KEY = "farm.emulation"
PROFILE_KEYS = (
    "model_version",
    "kind",
    "device",
    "cores",
    "clock_mhz",
    "batch_size",
    "latency_ms",
    "clock_scaled_ms",
    "fps_mt",
    "utilisation_st",
    "utilisation_mt",
    "subgraphs",
    "cpu_ops",
    "warnings",
)


def profile(**values) -> dict:
    """The profile with exactly the contract's keys (a missing or extra key is a programming error)."""
    missing = [k for k in PROFILE_KEYS if k not in values]
    extra = [k for k in values if k not in PROFILE_KEYS]
    if missing or extra:
        raise ValueError(f"emulation profile: missing {missing}, unexpected {extra}")
    return {k: values[k] for k in PROFILE_KEYS}


def write_profile(path: Path, data: dict) -> None:
    """Adds (or replaces) ``farm.emulation`` in the ONNX file at ``path``."""
    model = onnx.load(str(path))
    for prop in list(model.metadata_props):
        if prop.key == EMULATION_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = EMULATION_KEY
    entry.value = json.dumps(data, sort_keys=True)
    onnx.save(model, str(path))


def read_profile(path: Path) -> dict:
    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == EMULATION_KEY:
            return json.loads(prop.value)
    raise KeyError(f"{path} has no {EMULATION_KEY} metadata")


def digest(data: dict) -> str:
    """A short content hash (calibrated parameters go into the toolchain version, hence the artifact key)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


class EmulatorToolchain(Toolchain):
    """What the DPU and GPU emulators share: built for one board type (``<name>@<board type>``), whose
    catalog entry gives the device the timing is for; ``target_arch`` names that configuration."""

    per_target = True

    def __init__(self, target: str | None = None):
        self.board = target or None
        self._target = self._resolve(self.board) if self.board else None
        self.target_arch = self._target.arch if self._target else self.name.replace("_", "-")

    def _resolve(self, board: str):
        """The board type's device description (``farm.dpu.target.DpuTarget`` or ``GpuTarget``)."""
        raise NotImplementedError

    def catalog_name(self) -> str:
        return f"{self.name}@{self.board}" if self.board else self.name
