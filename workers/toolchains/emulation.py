"""The emulation profile an emulated toolchain writes into its artifact (docs/virtual-lab.md section 2).

Why one helper: the DPU and GPU emulators write the same ``farm.emulation`` metadata key with the same
fields, and the emulated backend reads exactly these.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx

from farm.containers.names import compile_image
from farm.errors import ModelError
from farm.workers.agent import protocol
from farm.workers.toolchains.base import CompileResult, QuantConfig, Toolchain, check_precision

EMULATION_KEY = protocol.PROFILE_KEY  # the emulation profile is part of the farm-agent contract
PROFILE_KEYS = protocol.PROFILE_KEYS


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

    @property
    def container_image(self) -> str:  # type: ignore[override]
        """Farm code like the CPU toolchain it compiles with: the farm's compile image."""
        return compile_image()

    def _resolve(self, board: str):
        """The board type's device description (``farm.perfmodel.target.DpuTarget`` or ``GpuTarget``)."""
        raise NotImplementedError

    def _predict(self, model: onnx.ModelProto, precision: str) -> tuple[dict, dict, list[str]]:
        """(the ``farm.emulation`` profile, extra artifact details, warnings) for this model on the
        target. Raises ModelError for a model the device cannot run (before anything is compiled)."""
        raise NotImplementedError

    def compile(
        self, model: onnx.ModelProto, precision: str, quant: QuantConfig, out_dir: Path
    ) -> CompileResult:
        """Predict the timing, then compile exactly as the CPU toolchain does (real outputs on the
        emulated board), and write the profile into that artifact."""
        from farm.workers.toolchains.onnxruntime_cpu import OnnxRuntimeCpuToolchain

        check_precision(precision, self.precisions)
        if self._target is None:
            raise ModelError(f"{self.name} needs a target board type ({self.name}@<board type>)")
        data, extra, warnings = self._predict(model, precision)
        result = self._inner(OnnxRuntimeCpuToolchain()).compile(model, precision, quant, Path(out_dir))
        write_profile(result.path, data)
        details = {
            **result.details,
            "emulation": data,
            "board": self._target.board,
            "target_arch": self._target.arch,
            **extra,
        }
        return CompileResult(
            path=result.path,
            fidelity=result.fidelity,
            warnings=[*result.warnings, *warnings],
            details=details,
        )

    def _inner(self, toolchain: Toolchain) -> Toolchain:
        """The CPU toolchain that makes the artifact, as this emulator needs it (as it is, by default)."""
        return toolchain

    def catalog_name(self) -> str:
        return f"{self.name}@{self.board}" if self.board else self.name
