"""ONNX Runtime on the host CPU: the CPU baseline target.

fp32: ONNX Runtime's "extended" graph optimisations (constant folding, Conv+activation fusion, ...) saved as
an ONNX file. The "all" level is deliberately not used: it writes hardware-specific layouts (NCHWc) that
are only valid on the machine that produced them.

int8: static quantisation in QDQ format (QuantizeLinear/DequantizeLinear pairs around float ops, which ORT
fuses into integer kernels when the model is loaded), after ORT's ``quant_pre_process``. Calibration runs
ORT's own calibrators on ``synthetic_inputs``, or on real inputs when the sweep names a calibration dataset
(``QuantConfig.calibration_data``; in chunks: farm.workers.toolchains.onnxruntime_calibration, which holds
the readers and the calibration), and ``quantize_static`` then reads the ranges from ORT's calibration cache
file. Weights are QInt8 (per channel when asked) and
activations QUInt8: unsigned-activation x signed-weight (U8S8) is the combination ORT's x86 MLAS kernels
are built around (VPMADDUBSW on AVX2, VPDPBUSD on VNNI; S8S8 models are converted to it internally), and
asymmetric uint8 keeps the full 8-bit range for post-ReLU activations.

On x86 weights are quantised to 7 bits (``reduce_range``). Without VNNI, VPMADDUBSW adds pairs of u8 x s8
products into a saturating int16, and full-range weights saturate it: on an AVX2-only host that cost
resnet18 ~8 dB of output SQNR (12.8 dB instead of 20.6). Deciding by the architecture (not by the host's
CPU flags) keeps the artifact a function of the target (``target_arch``), so it can be cached by content;
on VNNI hosts it costs ~3.5 dB against full-range weights (24.2 dB, simulated). Other architectures (ARM)
use full 8-bit weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

from farm.containers.names import compile_image
from farm.errors import ModelError
from farm.workers.toolchains.base import (
    CompileResult,
    QuantConfig,
    Toolchain,
    check_precision,
)
from farm.workers.toolchains.onnxruntime_calibration import (
    QuietOrtQuantization,
    calibrate,
    calibration_method,
    calibration_reader,
    op_types_to_quantize,
)
from farm.zoo.inputs import synthetic_inputs

MODEL_FILE = "model.onnx"
FIDELITY_SAMPLES = 32
QUANT_CACHE_FORMAT = 1  # bump when _quantise_int8 changes what it writes
FIDELITY_SEED_OFFSET = 1000
SQNR_CAP_DB = 999.0
_TWO_GB = 2**31 - 1
_X86 = ("x86_64", "amd64", "x86", "i386", "i686")


def _quant_cache_dir() -> Path:
    """Where quantised models are kept by content: FARM_QUANT_CACHE, else <farm data dir>/cache/int8."""
    explicit = os.environ.get("FARM_QUANT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    from farm.config import load_settings

    return load_settings().data_dir / "cache" / "int8"


def _default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, n)


def _model_input(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    """The single graph input's name and fixed shape (batch first)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"the onnxruntime toolchain needs exactly one model input, got {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in dims)
    if not shape or any(d < 1 for d in shape):
        raise ModelError(f"input '{inputs[0].name}' must have a fixed shape, got {_fmt_dims(dims)}")
    return inputs[0].name, shape


def _fmt_dims(dims) -> str:
    return (
        "["
        + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
        + "]"
    )


def _op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def _ort_error(what: str, e: Exception) -> ModelError:
    msg = str(e).strip().splitlines()
    text = " ".join(line.strip() for line in msg if line.strip())[:2000] or type(e).__name__
    return ModelError(f"onnxruntime could not {what}: {text}")


class OnnxRuntimeCpuToolchain(Toolchain):
    name = "onnxruntime"
    catalog = "onnxruntime_cpu"
    #: INT8 activations: unsigned asymmetric for the CPU's U8S8 kernels (see the module docstring).
    activation_type = "QUInt8"
    symmetric_activations = False

    def __init__(self, threads: int | None = None):
        machine = platform.machine().lower()
        self.target_arch = machine + "-cpu"
        self.reduce_range = machine in _X86  # see the module docstring
        self.threads = int(threads) if threads else _default_threads()

    def version(self) -> str:
        import onnxruntime

        return f"onnxruntime-{onnxruntime.__version__}"

    @property
    def container_image(self) -> str:  # type: ignore[override]
        """The farm's compile image for this ORT version (farm/containers/image.py builds it; on a Docker
        host, workers/toolchains/docker/onnxruntime.Dockerfile does)."""
        return compile_image()

    # -- sessions -----------------------------------------------------------------------------------
    def _session_options(self):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        return so

    def _session(self, model: onnx.ModelProto | Path, what: str):
        import onnxruntime as ort

        src = str(model) if isinstance(model, Path) else model.SerializeToString()
        try:
            return ort.InferenceSession(src, self._session_options(), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise _ort_error(what, e) from None

    # -- compile ------------------------------------------------------------------------------------
    def compile(
        self, model: onnx.ModelProto, precision: str, quant: QuantConfig, out_dir: Path
    ) -> CompileResult:
        check_precision(precision, self.precisions)
        if model.ByteSize() > _TWO_GB:
            raise ModelError("the onnxruntime toolchain does not handle models over 2 GB")
        input_name, shape = _model_input(model)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if precision == "fp32":
            return self._compile_fp32(model, out_dir)
        return self._compile_int8(model, input_name, shape, quant, out_dir)

    def _compile_fp32(self, model: onnx.ModelProto, out_dir: Path) -> CompileResult:
        import onnxruntime as ort

        out = out_dir / MODEL_FILE
        so = self._session_options()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(out)
        try:
            ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise _ort_error("optimise the model", e) from None
        if not out.is_file():
            raise ModelError("onnxruntime did not write the optimised model")
        optimised = onnx.load(str(out))
        details = {
            "precision": "fp32",
            "optimization_level": "extended",
            "onnxruntime": ort.__version__,
            "nodes_before": len(model.graph.node),
            "nodes_after": len(optimised.graph.node),
            "op_counts": _op_counts(optimised),
        }
        return CompileResult(path=out, fidelity=None, warnings=[], details=details)

    def _compile_int8(
        self,
        model: onnx.ModelProto,
        input_name: str,
        shape: tuple[int, ...],
        quant: QuantConfig,
        out_dir: Path,
    ) -> CompileResult:
        """INT8 through the quantisation cache: the emulated DPU and GPU targets and the CPU quantise the same
        model the same way, so one calibration serves them all (it is most of a compile's time)."""
        import onnxruntime as ort

        quant.validate()
        ident = {
            "model_sha256": hashlib.sha256(model.SerializeToString()).hexdigest(),
            "quant": quant.as_dict(),
            "onnxruntime": ort.__version__,
            "reduce_range": self.reduce_range,
            "activation_type": self.activation_type,
            "symmetric_activations": self.symmetric_activations,
            "format": QUANT_CACHE_FORMAT,
        }
        entry = _quant_cache_dir() / hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        out = out_dir / MODEL_FILE
        if (entry / "result.json").is_file() and (entry / MODEL_FILE).is_file():
            cached = json.loads((entry / "result.json").read_text())
            shutil.copyfile(entry / MODEL_FILE, out)
            details = {**cached["details"], "quantisation_cache": "hit"}
            return CompileResult(
                path=out, fidelity=cached["fidelity"], warnings=cached["warnings"], details=details
            )
        result = self._quantise_int8(model, input_name, shape, quant, out_dir)
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
            entry.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=entry.parent))
            shutil.copyfile(result.path, staging / MODEL_FILE)
            doc = {"fidelity": result.fidelity, "warnings": result.warnings, "details": result.details}
            (staging / "result.json").write_text(json.dumps(doc))
            try:
                staging.rename(entry)  # atomic; a concurrent writer that got there first wins
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        return CompileResult(
            path=result.path,
            fidelity=result.fidelity,
            warnings=result.warnings,
            details={**result.details, "quantisation_cache": "miss"},
        )

    def _quantise_int8(
        self,
        model: onnx.ModelProto,
        input_name: str,
        shape: tuple[int, ...],
        quant: QuantConfig,
        out_dir: Path,
    ) -> CompileResult:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        quant.validate()
        warnings = quant.warnings()
        out = out_dir / MODEL_FILE
        batch = shape[0]
        reader, calibration_warnings = calibration_reader(input_name, shape, quant)
        warnings.extend(calibration_warnings)

        with tempfile.TemporaryDirectory(prefix="farm-ort-int8-") as tmp:
            src = Path(tmp) / "fp32.onnx"
            onnx.save(model, str(src))
            pre = Path(tmp) / "preprocessed.onnx"
            preprocessed = True
            try:
                from onnxruntime.quantization.shape_inference import quant_pre_process

                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                if not pre.is_file():
                    raise RuntimeError("no output written")
            except Exception as e:  # pre-processing is an optimisation: quantise the model as given
                preprocessed = False
                pre = src
                warnings.append(f"quant_pre_process failed, quantising the model as given: {e}")
            quiet = QuietOrtQuantization()
            logging.getLogger().addFilter(quiet)  # quantize_static logs advice on the root logger
            try:
                cache = calibrate(pre, reader, quant.method, Path(tmp))
                quantize_static(
                    str(pre),
                    str(out),
                    None,
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=op_types_to_quantize(),
                    per_channel=quant.per_channel,
                    reduce_range=self.reduce_range,
                    activation_type=getattr(QuantType, self.activation_type),
                    weight_type=QuantType.QInt8,
                    calibrate_method=calibration_method(quant.method),
                    extra_options={"ActivationSymmetric": True} if self.symmetric_activations else {},
                    calibration_cache_path=str(cache),
                )
            except ModelError:
                raise
            except Exception as e:
                raise _ort_error("quantise the model to int8", e) from None
            finally:
                logging.getLogger().removeFilter(quiet)
        if not out.is_file():
            raise ModelError("onnxruntime did not write the quantised model")

        fidelity = self._fidelity(model, out, input_name, shape, quant.seed + FIDELITY_SEED_OFFSET)
        quantised = onnx.load(str(out))
        details = {
            "precision": "int8",
            "quant_format": "QDQ",
            "activation_type": self.activation_type,
            "symmetric_activations": self.symmetric_activations,
            "weight_type": "QInt8",
            "per_channel": quant.per_channel,
            "reduce_range": self.reduce_range,
            "calibration_method": quant.method,
            "calibration_samples": reader.num_batches * batch,
            "calibration_data": "synthetic" if quant.calibration_sha256 is None else "dataset",
            "calibration_sha256": quant.calibration_sha256,
            "preprocessed": preprocessed,
            "onnxruntime": ort.__version__,
            "nodes_before": len(model.graph.node),
            "nodes_after": len(quantised.graph.node),
            "op_counts": _op_counts(quantised),
        }
        return CompileResult(path=out, fidelity=fidelity, warnings=warnings, details=details)

    def _fidelity(
        self, model: onnx.ModelProto, int8_path: Path, input_name: str, shape: tuple[int, ...], seed: int
    ) -> dict:
        """fp32 vs int8 on the same synthetic inputs: top-1 agreement and SQNR (dB) of the outputs."""
        ref_sess = self._session(model, "run the fp32 model")
        q_sess = self._session(int8_path, "load the int8 model")
        batch = shape[0]
        ref_out, q_out = [], []
        for start in range(0, math.ceil(FIDELITY_SAMPLES / batch) * batch, batch):
            x = synthetic_inputs(shape[1:], batch, seed, start=start)
            try:
                ref_out.append(ref_sess.run(None, {input_name: x})[0])
                q_out.append(q_sess.run(None, {input_name: x})[0])
            except Exception as e:
                raise _ort_error("run the model for the fidelity check", e) from None
        ref = np.concatenate(ref_out).astype(np.float64)
        q = np.concatenate(q_out).astype(np.float64)
        ref2, q2 = ref.reshape(ref.shape[0], -1), q.reshape(q.shape[0], -1)
        top1 = float(np.mean(ref2.argmax(axis=1) == q2.argmax(axis=1)))
        noise = float(np.sum((ref - q) ** 2))
        signal = float(np.sum(ref**2))
        # Capped at +-999 dB (identical outputs / all-zero reference) so the figure stays JSON-safe.
        if noise == 0.0:
            sqnr = SQNR_CAP_DB
        elif signal == 0.0:
            sqnr = -SQNR_CAP_DB
        else:
            sqnr = max(-SQNR_CAP_DB, min(SQNR_CAP_DB, 10.0 * math.log10(signal / noise)))
        return {"top1_agreement": top1, "sqnr_db": round(sqnr, 4), "samples": int(ref.shape[0])}
