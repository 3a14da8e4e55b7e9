"""The real Vitis AI toolchain: runs only inside its Docker image on a compile host (``runner: docker``).

Flow inside ``xilinx/vitis-ai-pytorch-cpu:3.5.0`` (conda env ``vitis-ai-pytorch``), per UG1414; a board
type whose DPU that release dropped names its own image and version in the catalog (``toolchain_image:``,
the U50: Vitis AI 2.5), and the image's version goes into the artifact key:

1. ONNX -> PyTorch module (``onnx2torch``; the image must have it: build a thin image ``FROM`` the pinned
   one with ``pip install onnx2torch`` and list that tag under the host's ``images``, or use this one if
   your copy already has it. Without it the job fails with that reason, never silently).
2. ``vai_q_pytorch``: ``torch_quantizer("calib", ...)`` over ``calibration_samples`` inputs (the sweep's
   calibration dataset, as UG1414 asks for, or deterministic synthetic ones when it names none), ``export_quant_config()``, then ``torch_quantizer("test", ...)`` on one input and
   ``export_xmodel()`` -> ``quantized.xmodel``. (``vai_q_onnx`` makes a QDQ ONNX for the ONNX Runtime
   Vitis AI EP, not an xmodel, so it cannot feed ``vai_c_xir``.)
3. ``vai_c_xir -x quantized.xmodel -a /opt/vitis_ai/compiler/arch/<IP>/<BOARD>/arch.json -o <out> -n model``
   -> ``<out>/model.xmodel``, the artifact.

The driver (``workers/toolchains/vitis_ai_driver.py``) is uploaded into the job's input folder and run from
there; it writes ``<out>/result.json`` exactly as ``farm.workers.toolchains.cli`` does (exit 0 / 2 model error /
1 anything else). Per target (``vitis_ai@<board type>``): the arch.json comes from the board type. In this
process ``compile()`` refuses with a clear error: there is no Vitis AI here.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import onnx

from farm.errors import FarmError, ModelError
from farm.workers.toolchains import vitis_ai_driver
from farm.workers.toolchains.base import CompileResult, QuantConfig, Toolchain, check_precision

IMAGE = "xilinx/vitis-ai-pytorch-cpu:3.5.0"
VERSION = "vitis-ai-3.5.0"
ARCH_ROOT = "/opt/vitis_ai/compiler/arch"
CONDA_ENV = "vitis-ai-pytorch"
#: Board type -> (DPU IP, arch.json folder) of the arch.json files the image ships.
ARCH_JSON: dict[str, tuple[str, str]] = {
    "zcu104": ("DPUCZDX8G", "ZCU104"),
    "zcu102": ("DPUCZDX8G", "ZCU102"),
    "kv260": ("DPUCZDX8G", "KV260"),
    "vck190": ("DPUCVDX8G", "VCK190"),
    "u50": ("DPUCAHX8H", "U50"),
}
_NO_ARCH = {
    "pynq-z2": "a Zynq-7020 needs the older DPU IP (DNNDK / DPU v3.x or a PYNQ-DPU port); Vitis AI 3.5 has no "
    "target for it",
    "ultra96-v2": "Vitis AI ships no arch.json for Ultra96-V2's B1600 build: compile with the arch.json "
    "(fingerprint) of your own DPU TRD",
}

# Runs as `bash -c SHELL DRIVER_FILE ARGS...`: $0 is the driver's path in the container, "$@" its arguments.
SHELL = f'source /opt/vitis_ai/conda/etc/profile.d/conda.sh && conda activate {CONDA_ENV} && exec python3 "$0" "$@"'

#: The in-container driver (a program of its own: the image's python3, no farm inside), uploaded into the
#: job's input folder beside the model (:meth:`VitisAiToolchain.container_inputs`) and run from there.
DRIVER_PATH = Path(vitis_ai_driver.__file__)
DRIVER_NAME = DRIVER_PATH.name


def image_for(board: str | None) -> tuple[str, str]:
    """``(image, version)`` a compile for ``board`` runs in: the catalog type's ``toolchain_image`` (the
    U50 needs an older Vitis AI than the ZCU104 and VCK190), else :data:`IMAGE` and :data:`VERSION`."""
    if board:
        from farm.inventory import load_catalog

        pinned = getattr(load_catalog().get(board), "toolchain_image", None)
        if pinned is not None:
            return pinned.image, pinned.version
    return IMAGE, VERSION


def arch_json(board: str) -> str:
    """The arch.json inside the image for a board type; FarmError with the reason where none ships."""
    if board in ARCH_JSON:
        ip, folder = ARCH_JSON[board]
        return f"{ARCH_ROOT}/{ip}/{folder}/arch.json"
    reason = _NO_ARCH.get(board, "no arch.json is known for this board type")
    raise FarmError(f"vitis_ai cannot compile for {board!r}: {reason}")


class VitisAiToolchain(Toolchain):
    name = "vitis_ai"
    precisions = ("int8",)
    per_target = True
    container_image = IMAGE

    def __init__(self, target: str | None = None):
        self.board = target or None
        self.container_image, self._version = image_for(self.board)
        if self.board in ARCH_JSON:
            ip, folder = ARCH_JSON[self.board]
            self.target_arch = f"{ip}/{folder}"
        else:
            self.target_arch = f"vitis-ai/{self.board or 'any'}"

    def catalog_name(self) -> str:
        return f"vitis_ai@{self.board}" if self.board else "vitis_ai"

    def version(self) -> str:
        return self._version

    def container_command(self, in_path: str, out_dir: str, precision: str, quant: QuantConfig) -> list[str]:
        check_precision(precision, self.precisions)
        if not self.board:
            raise FarmError("vitis_ai needs a target board type (vitis_ai@<board type>)")
        quant_json = json.dumps(quant.as_dict(), sort_keys=True, separators=(",", ":"))
        return [
            "bash",
            "-c",
            SHELL,
            posixpath.join(posixpath.dirname(in_path), DRIVER_NAME),  # uploaded beside the model
            in_path,
            out_dir,
            arch_json(self.board),
            quant_json,
            self.catalog_name(),
            self.version(),
            self.target_arch,
            quant.calibration_data or "",
        ]

    def container_inputs(self) -> dict[str, Path]:
        return {DRIVER_NAME: DRIVER_PATH}

    def container_version_command(self) -> list[str]:
        info = {"name": self.name, "version": self.version(), "target_arch": self.target_arch}
        return ["echo", json.dumps(info, sort_keys=True)]

    def compile(
        self, model: onnx.ModelProto, precision: str, quant: QuantConfig, out_dir: Path
    ) -> CompileResult:
        check_precision(precision, self.precisions)
        raise FarmError(
            "vitis_ai runs only inside its Docker image "
            f"({self.container_image}) on a compile host with `runner: docker` listing that image; there is no Vitis AI "
            "in this process. Use the board type's emulation (dpu_emulator) for a virtual lab."
        )


__all__ = ["VitisAiToolchain", "ModelError"]
