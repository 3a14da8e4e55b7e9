"""The toolchain interface: turn an ONNX model into a compiled artifact for one target, fp32 or int8."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from farm.errors import ModelError

PRECISIONS = ("fp32", "int8")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
FEW_CALIBRATION_SAMPLES = 100


@dataclass
class QuantConfig:
    """How to quantise to int8; ``as_dict()`` is part of the compiled artifact's content address."""

    calibration_samples: int = 200
    method: str = "minmax"  # "minmax" | "entropy" | "percentile"
    per_channel: bool = True
    seed: int = 0
    # Real calibration inputs instead of synthetic ones: an .npz whose ``inputs`` array holds preprocessed
    # samples (N, *input shape without the batch) -- a dataset pack (farm/datasets/imagefolder.py). The
    # path is where this process reads it (runners rewrite it for a compile host); its sha256 is what
    # enters the content address.
    calibration_data: str | None = None
    calibration_sha256: str | None = None

    def as_dict(self) -> dict:
        """Canonical form: fixed keys, plain JSON types (the calibration data by its hash, when given:
        artifacts calibrated on synthetic inputs keep the key they always had)."""
        out = {
            "calibration_samples": int(self.calibration_samples),
            "method": str(self.method),
            "per_channel": bool(self.per_channel),
            "seed": int(self.seed),
        }
        if self.calibration_sha256 is not None:
            out["calibration_sha256"] = str(self.calibration_sha256)
        return dict(sorted(out.items()))

    def validate(self) -> None:
        """Raises ModelError for settings no toolchain can use (also called by ``compile``)."""
        n = self.calibration_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ModelError(f"calibration_samples must be a positive integer, got {n!r}")
        if self.method not in CALIBRATION_METHODS:
            raise ModelError(
                f"unknown calibration method {self.method!r}; valid: {', '.join(CALIBRATION_METHODS)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ModelError(f"quantisation seed must be a non-negative integer, got {self.seed!r}")
        sha = self.calibration_sha256
        if (self.calibration_data is None) != (sha is None):
            raise ModelError("calibration data needs both its file and its sha256")
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise ModelError(f"calibration_sha256 is not a sha256 hex digest: {sha!r}")

    def warnings(self) -> list[str]:
        """Non-fatal problems with these settings."""
        return few_samples_warnings(self.calibration_samples)


def few_samples_warnings(n: int) -> list[str]:
    """The warning for calibrating on ``n`` samples, when that is too few for good INT8 scales."""
    if n < FEW_CALIBRATION_SAMPLES:
        return [f"only {n} calibration samples (< {FEW_CALIBRATION_SAMPLES}): INT8 scales may be poor"]
    return []


@dataclass
class CompileResult:
    path: Path  # compiled model file written inside out_dir
    fidelity: dict | None  # int8 only: {"top1_agreement": 0..1, "sqnr_db": float, "samples": int}
    warnings: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # e.g. optimisation level, quant format, node counts


def check_precision(precision: str, supported=PRECISIONS) -> None:
    if precision not in supported:
        raise ModelError(f"unknown precision {precision!r}; valid: {', '.join(supported)}")


class Toolchain(ABC):
    """A compiler for one target.

    Out of process (``workers/toolchains/runners``) a toolchain runs through ``python -m
    workers.toolchains.cli``, either installed on a compile host (``runner: host``) or inside the image
    it declares (``container_image``, ``runner: docker``) as ``container_command`` with the job folder
    mounted at ``/work``. A toolchain whose image has no farm in it (e.g. Vitis AI's
    ``xilinx/vitis-ai-pytorch-cpu`` with vai_q_pytorch / vai_c_xir) overrides ``container_command`` to
    write the same ``<out_dir>/result.json`` + artifact contract (see ``farm.workers.toolchains.cli``).
    """

    name: str  # e.g. "onnxruntime"
    target_arch: str  # e.g. "x86_64-cpu"
    precisions: tuple[str, ...] = PRECISIONS
    #: The Docker image that holds this toolchain (None: no image; it runs in-process or on a host).
    container_image: str | None = None

    #: The name this toolchain has in the catalog (``farm.workers.toolchains.registry.TOOLCHAINS``); per-target
    #: toolchains override :meth:`catalog_name` to add their board type.
    catalog: str = ""

    def catalog_name(self) -> str:
        if not self.catalog:
            raise KeyError(f"{type(self).__qualname__} has no catalog name")
        return self.catalog

    def container_command(self, in_path: str, out_dir: str, precision: str, quant: QuantConfig) -> list[str]:
        """argv run inside ``container_image`` (paths are the container's, under ``/work``). It must write
        ``<out_dir>/result.json`` and the artifact and exit 0, 2 (model error) or 1 (anything else)."""
        return compile_argv("python3", self.catalog_name(), in_path, precision, quant, out_dir)

    def container_inputs(self) -> dict[str, Path]:
        """Local files ``container_command`` needs beside the model: the Docker runner uploads each into the
        job's input folder (the model's folder in the container) under its name."""
        return {}

    def container_version_command(self) -> list[str]:
        """argv run inside ``container_image`` that prints ``{"name", "version", "target_arch"}`` as JSON."""
        return version_argv("python3", self.catalog_name())

    @abstractmethod
    def version(self) -> str:
        """Toolchain name and version, e.g. "onnxruntime-1.32.0" (part of the content address)."""

    @abstractmethod
    def compile(
        self, model: onnx.ModelProto, precision: str, quant: QuantConfig, out_dir: Path
    ) -> CompileResult:
        """Compiles ``model`` for ``precision`` into ``out_dir``; raises ModelError when it cannot."""


#: How a toolchain is run as a program (workers/toolchains/cli.py), on a compile host or in a container.
def compile_argv(python: str, toolchain: str, model: str, precision: str, quant, out_dir: str) -> list[str]:
    """The ``compile`` command line (one argument per word, for ``quote_argv`` or ``docker run``)."""
    return [
        python,
        "-m",
        "farm.workers.toolchains.cli",
        "compile",
        "--toolchain",
        toolchain,
        "--model",
        model,
        "--precision",
        precision,
        "--quant-json",
        json.dumps(quant.as_dict(), sort_keys=True, separators=(",", ":")),
        "--out-dir",
        out_dir,
        *(["--calibration-data", quant.calibration_data] if quant.calibration_data else []),
    ]


def version_argv(python: str, toolchain: str) -> list[str]:
    return [python, "-m", "farm.workers.toolchains.cli", "version", "--toolchain", toolchain]
