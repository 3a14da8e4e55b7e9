"""The real Vitis AI toolchain: runs only inside its Docker image on a compile host (``runner: docker``).

Flow inside ``xilinx/vitis-ai-pytorch-cpu:3.5.0`` (conda env ``vitis-ai-pytorch``), per UG1414:

1. ONNX -> PyTorch module (``onnx2torch``; the image must have it: build a thin image ``FROM`` the pinned
   one with ``pip install onnx2torch`` and list that tag under the host's ``images``, or use this one if
   your copy already has it. Without it the job fails with that reason, never silently).
2. ``vai_q_pytorch``: ``torch_quantizer("calib", ...)`` over ``calibration_samples`` inputs (the sweep's
   calibration dataset, as UG1414 asks for, or deterministic synthetic ones when it names none), ``export_quant_config()``, then ``torch_quantizer("test", ...)`` on one input and
   ``export_xmodel()`` -> ``quantized.xmodel``. (``vai_q_onnx`` makes a QDQ ONNX for the ONNX Runtime
   Vitis AI EP, not an xmodel, so it cannot feed ``vai_c_xir``.)
3. ``vai_c_xir -x quantized.xmodel -a /opt/vitis_ai/compiler/arch/<IP>/<BOARD>/arch.json -o <out> -n model``
   -> ``<out>/model.xmodel``, the artifact.

It writes ``<out>/result.json`` exactly as ``workers.toolchains.cli`` does (exit 0 / 2 model error /
1 anything else). Per target (``vitis_ai@<board type>``): the arch.json comes from the board type. In this
process ``compile()`` refuses with a clear error: there is no Vitis AI here.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from farm.errors import FarmError, ModelError
from workers.toolchains.base import CompileResult, QuantConfig, Toolchain, check_precision

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

# Runs as `bash -c SHELL PYSCRIPT ARGS...`: $0 is the Python program, "$@" its arguments.
SHELL = f'source /opt/vitis_ai/conda/etc/profile.d/conda.sh && conda activate {CONDA_ENV} && exec python3 -c "$0" "$@"'

# The in-container driver (Python 3 of the image; no farm inside). argv: in.onnx out_dir arch.json
# quant_json toolchain_name version target_arch calibration.npz ("" for synthetic inputs).
DRIVER = r"""
import hashlib, io, json, os, subprocess, sys, time, traceback
inp, out, arch, quant, tc, version, target_arch, calib = sys.argv[1:9]
quant = json.loads(quant)
t0 = time.time()
def result(data, rc):
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, ".result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(dict(schema=1, **data), f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(out, "result.json"))
    sys.exit(rc)
def fail(kind, msg):
    print(("model error: " if kind == "model" else "error: ") + msg, file=sys.stderr)
    result(dict(ok=False, error_kind=kind, error=msg), 2 if kind == "model" else 1)
try:
    import numpy as np, onnx, torch
    try:
        from onnx2torch import convert
    except ImportError:
        fail("internal", "onnx2torch is not installed in this image (needed to hand an ONNX model to vai_q_pytorch)")
    from pytorch_nndct.apis import torch_quantizer
    m = onnx.load(inp)
    try:
        module = convert(m).eval()
    except Exception as e:
        fail("model", "ONNX -> PyTorch conversion failed: %s" % e)
    dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(int(quant.get("seed", 0)))
    x = torch.from_numpy(rng.standard_normal(dims).astype("float32"))
    qdir = os.path.join(out, "quantize_result")
    q = torch_quantizer("calib", module, (x,), output_dir=qdir, device=torch.device("cpu"))
    n = max(1, int(quant.get("calibration_samples", 200)) // max(1, dims[0]))
    if calib:  # real calibration inputs (a dataset pack): check its hash, shuffle by the seed
        data = open(calib, "rb").read()
        if hashlib.sha256(data).hexdigest() != quant.get("calibration_sha256"):
            fail("model", "calibration data does not match its calibration_sha256")
        inputs = np.load(io.BytesIO(data), allow_pickle=False)["inputs"]
        if list(inputs.shape[1:]) != dims[1:]:
            fail("model", "calibration inputs are %s per sample; the model takes %s" % (list(inputs.shape[1:]), dims[1:]))
        inputs = inputs[np.random.default_rng(int(quant.get("seed", 0))).permutation(len(inputs))]
        n = max(1, min(n, len(inputs) // max(1, dims[0])))
        batches = [inputs[i * dims[0]:(i + 1) * dims[0]] for i in range(n)]
    else:
        batches = [rng.standard_normal(dims).astype("float32") for _ in range(n)]
    with torch.no_grad():
        for b in batches:
            q.quant_model(torch.from_numpy(np.ascontiguousarray(b, dtype="float32")))
    q.export_quant_config()
    one = [1] + dims[1:]
    q = torch_quantizer("test", module, (x[:1],), output_dir=qdir, device=torch.device("cpu"))
    with torch.no_grad():
        q.quant_model(x[:1])
    q.export_xmodel(output_dir=qdir, deploy_check=False)
    xmodels = [f for f in os.listdir(qdir) if f.endswith("_int.xmodel")]
    if not xmodels:
        fail("internal", "vai_q_pytorch wrote no *_int.xmodel")
    quantized = os.path.join(out, "quantized.xmodel")
    os.replace(os.path.join(qdir, xmodels[0]), quantized)
    p = subprocess.run(["vai_c_xir", "-x", quantized, "-a", arch, "-o", out, "-n", "model"],
                       capture_output=True, text=True)
    sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
    art = os.path.join(out, "model.xmodel")
    if p.returncode != 0 or not os.path.isfile(art):
        fail("model", "vai_c_xir failed (exit %d): %s" % (p.returncode, (p.stderr or p.stdout).strip()[-1500:]))
    h = hashlib.sha256(open(art, "rb").read()).hexdigest()
    result(dict(ok=True, toolchain=tc, name="vitis_ai", version=version, target_arch=target_arch,
                precision="int8", quant=quant, artifact="model.xmodel", artifact_sha256=h,
                size_bytes=os.path.getsize(art), fidelity=None, warnings=[],
                details={"arch_json": arch, "quantizer": "vai_q_pytorch", "compiler": "vai_c_xir"},
                seconds=round(time.time() - t0, 3)), 0)
except SystemExit:
    raise
except Exception as e:
    traceback.print_exc()
    fail("internal", "%s: %s" % (type(e).__name__, e))
"""


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
        if self.board in ARCH_JSON:
            ip, folder = ARCH_JSON[self.board]
            self.target_arch = f"{ip}/{folder}"
        else:
            self.target_arch = f"vitis-ai/{self.board or 'any'}"

    def catalog_name(self) -> str:
        return f"vitis_ai@{self.board}" if self.board else "vitis_ai"

    def version(self) -> str:
        return VERSION

    def container_command(self, in_path: str, out_dir: str, precision: str, quant: QuantConfig) -> list[str]:
        check_precision(precision, self.precisions)
        if not self.board:
            raise FarmError("vitis_ai needs a target board type (vitis_ai@<board type>)")
        quant_json = json.dumps(quant.as_dict(), sort_keys=True, separators=(",", ":"))
        return [
            "bash",
            "-c",
            SHELL,
            DRIVER,
            in_path,
            out_dir,
            arch_json(self.board),
            quant_json,
            self.catalog_name(),
            self.version(),
            self.target_arch,
            quant.calibration_data or "",
        ]

    def container_version_command(self) -> list[str]:
        info = {"name": self.name, "version": self.version(), "target_arch": self.target_arch}
        return ["echo", json.dumps(info, sort_keys=True)]

    def compile(
        self, model: onnx.ModelProto, precision: str, quant: QuantConfig, out_dir: Path
    ) -> CompileResult:
        check_precision(precision, self.precisions)
        raise FarmError(
            "vitis_ai runs only inside its Docker image "
            f"({IMAGE}) on a compile host with `runner: docker` listing that image; there is no Vitis AI "
            "in this process. Use the board type's emulation (dpu_emulator) for a virtual lab."
        )


__all__ = ["VitisAiToolchain", "ModelError"]
