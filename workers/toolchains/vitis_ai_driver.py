"""The Vitis AI compile driver: runs INSIDE the Vitis AI image, where farm is not installed.

The Docker runner uploads this file into the job's input folder beside the model and runs it there with
the image's python3 (conda env ``vitis-ai-pytorch``)::

    python3 /work/in/vitis_ai_driver.py in.onnx out_dir arch.json quant_json toolchain version target_arch
        calibration.npz            ("" for seeded synthetic calibration inputs)

It quantises with vai_q_pytorch (ONNX -> PyTorch with onnx2torch), compiles with ``vai_c_xir`` and writes
``<out_dir>/result.json`` by the ``farm.workers.toolchains.cli`` contract: exit 0, 2 (model error) or 1
(anything else). See ``workers/toolchains/vitis_ai.py`` for the flow and why. Rules: Python 3.8, only the
standard library at import time (numpy, onnx, torch and the vendor's packages are the image's, imported
when the job runs), never anything of farm.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import traceback

#: The arguments, in order.
ARGS = ("model", "out", "arch", "quant", "toolchain", "version", "target_arch", "calibration")
RESULT_FILE = "result.json"
EXIT_OK, EXIT_INTERNAL, EXIT_MODEL = 0, 1, 2
ARTIFACT = "model.xmodel"


def parse_args(argv: list[str]) -> dict:
    """The job from the command line (``argv`` without the program); a wrong count exits 1 (no result
    can be written without knowing where)."""
    if len(argv) != len(ARGS):
        sys.stderr.write("usage: vitis_ai_driver.py " + " ".join(ARGS) + f"\n(got {len(argv)} arguments)\n")
        sys.exit(EXIT_INTERNAL)
    job = {name: argv[i] for i, name in enumerate(ARGS)}
    job["quant"] = json.loads(job["quant"])
    return job


def result(out: str, data: dict, rc: int) -> None:
    """Write ``<out>/result.json`` (atomically, schema 1) and exit with ``rc``."""
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, ".result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(dict(schema=1, **data), f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(out, RESULT_FILE))
    sys.exit(rc)


def fail(out: str, kind: str, msg: str) -> None:
    """A failed job: its reason on stderr and in result.json; exit 2 for a model error, else 1."""
    print(("model error: " if kind == "model" else "error: ") + msg, file=sys.stderr)
    result(out, dict(ok=False, error_kind=kind, error=msg), EXIT_MODEL if kind == "model" else EXIT_INTERNAL)


def calibration_batches(np, job: dict, dims: list[int], rng) -> list:
    """The quantizer's calibration batches (each of the model's batch size): from the sweep's calibration
    pack (its sha256 checked, shuffled by the seed, at most as many as it holds), else seeded noise."""
    out, quant, calib = job["out"], job["quant"], job["calibration"]
    n = max(1, int(quant.get("calibration_samples", 200)) // max(1, dims[0]))
    if not calib:
        return [rng.standard_normal(dims).astype("float32") for _ in range(n)]
    with open(calib, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != quant.get("calibration_sha256"):
        fail(out, "model", "calibration data does not match its calibration_sha256")
    inputs = np.load(io.BytesIO(data), allow_pickle=False)["inputs"]
    if list(inputs.shape[1:]) != dims[1:]:
        fail(
            out,
            "model",
            f"calibration inputs are {list(inputs.shape[1:])} per sample; the model takes {dims[1:]}",
        )
    inputs = inputs[np.random.default_rng(int(quant.get("seed", 0))).permutation(len(inputs))]
    n = max(1, min(n, len(inputs) // max(1, dims[0])))
    return [inputs[i * dims[0] : (i + 1) * dims[0]] for i in range(n)]


def compile_job(job: dict, started: float) -> None:
    """Quantise and compile; exits through :func:`result` or :func:`fail`."""
    import numpy as np
    import onnx
    import torch

    inp, out, arch, quant = job["model"], job["out"], job["arch"], job["quant"]
    try:
        from onnx2torch import convert
    except ImportError:
        fail(
            out,
            "internal",
            "onnx2torch is not installed in this image (needed to hand an ONNX model to vai_q_pytorch)",
        )
    from pytorch_nndct.apis import torch_quantizer

    m = onnx.load(inp)
    try:
        module = convert(m).eval()
    except Exception as e:
        fail(out, "model", f"ONNX -> PyTorch conversion failed: {e}")
    dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(int(quant.get("seed", 0)))
    x = torch.from_numpy(rng.standard_normal(dims).astype("float32"))
    qdir = os.path.join(out, "quantize_result")
    q = torch_quantizer("calib", module, (x,), output_dir=qdir, device=torch.device("cpu"))
    batches = calibration_batches(np, job, dims, rng)
    with torch.no_grad():
        for b in batches:
            q.quant_model(torch.from_numpy(np.ascontiguousarray(b, dtype="float32")))
    q.export_quant_config()
    q = torch_quantizer("test", module, (x[:1],), output_dir=qdir, device=torch.device("cpu"))
    with torch.no_grad():
        q.quant_model(x[:1])
    q.export_xmodel(output_dir=qdir, deploy_check=False)
    xmodels = [f for f in os.listdir(qdir) if f.endswith("_int.xmodel")]
    if not xmodels:
        fail(out, "internal", "vai_q_pytorch wrote no *_int.xmodel")
    quantized = os.path.join(out, "quantized.xmodel")
    os.replace(os.path.join(qdir, xmodels[0]), quantized)
    p = subprocess.run(
        ["vai_c_xir", "-x", quantized, "-a", arch, "-o", out, "-n", "model"], capture_output=True, text=True
    )
    sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
    art = os.path.join(out, ARTIFACT)
    if p.returncode != 0 or not os.path.isfile(art):
        fail(
            out, "model", f"vai_c_xir failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-1500:]}"
        )
    with open(art, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    details = {"arch_json": arch, "quantizer": "vai_q_pytorch", "compiler": "vai_c_xir"}
    result(
        out,
        dict(
            ok=True,
            toolchain=job["toolchain"],
            name="vitis_ai",
            version=job["version"],
            target_arch=job["target_arch"],
            precision="int8",
            quant=quant,
            artifact=ARTIFACT,
            artifact_sha256=digest,
            size_bytes=os.path.getsize(art),
            fidelity=None,
            warnings=[],
            details=details,
            seconds=round(time.time() - started, 3),
        ),
        EXIT_OK,
    )


def main(argv: list[str]) -> None:
    job = parse_args(argv)
    started = time.time()
    try:
        compile_job(job, started)
    except SystemExit:
        raise
    except Exception as e:
        traceback.print_exc()
        fail(job["out"], "internal", f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
