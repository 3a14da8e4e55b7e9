"""PyTorch on an NVIDIA GPU: the artifact's ONNX graph converted to a ``torch.fx`` module with onnx2torch
and run with CUDA, in fp32, fp16 or bf16.

Packages: ``torch`` (a CUDA build), ``onnx`` and ``onnx2torch``, all imported when the backend is
constructed (a missing one is an infra error, so the registry says which backends *can* run). Nothing from
the farm.

Config (all optional; the defaults are shown)::

    "gpu": {"device": "cuda", "device_id": 0, "dtype": "fp32", "cudnn_benchmark": true, "tf32": false,
            "warmup": 3}

* ``dtype``: ``fp32``, ``fp16`` or ``bf16``. fp16/bf16 cast the model's floating-point weights and
  buffers and its floating-point inputs (the inputs once, when they are staged, not in the timed call);
  outputs come back to numpy as float32 (numpy has no bfloat16). bf16 needs a GPU for which
  ``torch.cuda.is_bf16_supported()``; on another it is an infra error.
* ``tf32``: off by default, so an fp32 result is an fp32 result (PyTorch lets cuDNN convolutions use TF32
  on Ampere and later unless told not to); both TF32 switches are recorded.
* ``cudnn_benchmark``: ``torch.backends.cudnn.benchmark`` (cuDNN picks the fastest convolution algorithm
  for the input shape on its first call; the warm-up in :meth:`load` pays that, not the test).
* ``warmup``: forward passes on zeros of the job's input shape at the end of :meth:`load` (before LoadGen
  starts; the LoadGen driver's own warm-up queries come after them). A model that converts but cannot
  run (an op without fp16 kernels, say) fails there, as a model error.
* ``device: "cpu"``: the same code path on the CPU, for tests and for a host without CUDA when asked for
  explicitly. The default is CUDA, and with no CUDA device the backend fails (infra error
  ``no CUDA device: torch.cuda.is_available() is False (...)``); it never falls back to the CPU silently.

Timing: :meth:`prepare` stages every distinct input batch once, in the compute dtype, in pinned (page-
locked) host memory; :meth:`predict` copies it to the GPU with ``non_blocking=True``, runs the module under
``torch.inference_mode()``, **synchronises the device** and copies the first output back, so the time
the driver measures around ``predict`` is the query's real latency (host-to-device copy included). A
batch that was never staged is converted in the call (slower, but correct).

Errors: an op onnx2torch has no converter for (e.g. QuantizeLinear/DequantizeLinear of an INT8 QDQ
artifact) is a **model** error naming every such op; so is a graph onnx2torch fails on, and a converted
module that fails to run.

torchvision: onnx2torch imports it when it is imported, but uses it only for NonMaxSuppression and
RoiAlign. Where torchvision cannot be imported (it is not installable everywhere torch is), a stand-in
module named ``torchvision`` (with ``torchvision.ops``) whose functions raise "torchvision is needed ..."
is put in ``sys.modules`` just for onnx2torch's import and taken out again right after it, so
classification models convert; a model with NonMaxSuppression or RoiAlign is then a model error saying
torchvision is needed. ``versions()`` records ``torchvision: null`` and ``torchvision_note: "absent
(NMS/RoiAlign unsupported)"``. Where torchvision imports, no stand-in is used.

``versions()`` records: ``runtime: "torch_cuda"``, ``runtime_version`` (= ``torch_version``),
``runtime_providers`` / ``session_providers`` (the devices torch has / the one the module runs on),
``cuda_version``, ``cudnn_version``, ``cuda_available``, ``device``, ``device_name``,
``device_capability``, ``cuda_device`` (name and driver, from NVML or nvidia-smi), ``dtype``,
``cudnn_benchmark``, ``tf32`` switches, ``torch_threads`` / ``torch_interop_threads``,
``onnx2torch_version``, ``onnx_version``, ``torchvision`` (+ ``torchvision_note``), ``pinned_inputs``,
``warmup_iterations``.

Importing onnx2torch (the torchvision stand-in) and what it can convert: torch_convert.py, beside this file.
"""

from __future__ import annotations

import numpy as np

from .base import Backend, InfraError, ModelError, resolve_shape
from .onnxruntime_gpu import cuda_device
from .torch_convert import first_output_path, import_onnx2torch, unconvertible_ops

DTYPES = ("fp32", "fp16", "bf16")
DEVICES = ("cuda", "cpu")
DEFAULT_WARMUP = 3

#: ONNX TensorProto element types -> numpy dtypes (the model input types the agent can feed).
_ONNX_DTYPES = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
}


class TorchCudaBackend(Backend):
    name = "torch_cuda"
    runtime = "torch_cuda"

    def __init__(self):
        try:
            import torch
        except ImportError as exc:
            raise InfraError("torch is not installed on this machine: %s" % exc) from exc
        try:
            import onnx
        except ImportError as exc:
            raise InfraError(
                "onnx (needed by onnx2torch) is not installed on this machine: %s" % exc
            ) from exc
        self._torch = torch
        self._onnx = onnx
        self._onnx2torch, self._torchvision, self._torchvision_note = import_onnx2torch()
        self.device = "cuda"
        self.device_id = 0
        self.dtype = "fp32"
        self.cudnn_benchmark = True
        self.tf32 = False
        self.warmup = DEFAULT_WARMUP
        self.batch_size = 1
        self.model = None
        self._device = None
        self._compute = None
        self._pinned = False
        self._staged = {}
        self._input_shape = None
        self._input_dtype = None
        self._output_path = (False, None)
        self.warmup_done = 0

    # ------------------------------------------------------------------ config

    def configure(self, config):
        gpu = config.get("gpu") or {}
        if not isinstance(gpu, dict):
            raise InfraError("torch_cuda: gpu must be an object, got %r" % (gpu,))
        self.device = str(gpu.get("device", "cuda"))
        if self.device not in DEVICES:
            raise InfraError(
                "torch_cuda gpu.device must be one of %s, got %r" % (", ".join(DEVICES), self.device)
            )
        dtype = gpu.get("dtype")
        if dtype is None and gpu.get("fp16"):  # onnxruntime_gpu's spelling
            dtype = "fp16"
        self.dtype = str(dtype or "fp32")
        if self.dtype not in DTYPES:
            raise InfraError(
                "torch_cuda gpu.dtype must be one of %s, got %r" % (", ".join(DTYPES), self.dtype)
            )
        try:
            self.device_id = int(gpu.get("device_id", 0))
            self.warmup = int(gpu.get("warmup", DEFAULT_WARMUP))
        except (TypeError, ValueError) as exc:
            raise InfraError("torch_cuda gpu.device_id / gpu.warmup must be integers: %s" % exc) from exc
        if self.device_id < 0 or self.warmup < 0:
            raise InfraError("torch_cuda gpu.device_id and gpu.warmup must be >= 0")
        self.cudnn_benchmark = bool(gpu.get("cudnn_benchmark", True))
        self.tf32 = bool(gpu.get("tf32", False))
        self.batch_size = int(config.get("batch_size") or 1)

    def _torch_device(self):
        """The torch device to run on; an infra error when CUDA is asked for and cannot be had."""
        torch = self._torch
        if self.device == "cpu":
            if self.dtype == "bf16" and not _cpu_bf16(torch):
                raise InfraError("this torch build has no bfloat16 support on the CPU")
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise InfraError(
                "no CUDA device: torch.cuda.is_available() is False (torch %s, built with CUDA %s)"
                % (torch.__version__, torch.version.cuda or "none: a CPU-only build")
            )
        count = torch.cuda.device_count()
        if self.device_id >= count:
            raise InfraError("gpu.device_id %d but torch sees %d CUDA device(s)" % (self.device_id, count))
        device = torch.device("cuda", self.device_id)
        if self.dtype == "bf16":
            with torch.cuda.device(device):
                supported = torch.cuda.is_bf16_supported()
            if not supported:
                raise InfraError(
                    "bf16 is not supported on %s (compute capability %s); use fp16 or fp32"
                    % (torch.cuda.get_device_name(device), _capability(torch, device))
                )
        return device

    # ------------------------------------------------------------------ load

    def load(self, artifact_path, threads=None):
        torch = self._torch
        if threads:
            torch.set_num_threads(int(threads))
        device = self._torch_device()  # an InfraError here is not the model's fault
        try:
            proto = self._onnx.load(artifact_path)
        except Exception as exc:
            raise ModelError("onnx cannot load the model: %s: %s" % (type(exc).__name__, exc)) from exc
        self._read_input(proto.graph)
        self._output_path = first_output_path(proto.graph)
        from onnx2torch.node_converters import get_converter

        bad = unconvertible_ops(proto, get_converter, self._torchvision is not None)
        if bad:
            raise ModelError(
                "onnx2torch %s cannot convert op(s): %s"
                % (getattr(self._onnx2torch, "__version__", ""), ", ".join(bad))
            )
        try:
            module = self._onnx2torch.convert(proto)
        except (
            Exception
        ) as exc:  # NotImplementedError (an attribute it does not handle), shape inference, ...
            raise ModelError(
                "onnx2torch cannot convert the model: %s: %s" % (type(exc).__name__, exc)
            ) from exc
        compute = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.dtype]
        try:
            module = module.eval().to(device)
            if compute is not torch.float32:
                module = module.to(compute)  # floating-point parameters and buffers only
        except Exception as exc:
            raise ModelError(
                "cannot move the converted model to %s: %s: %s" % (device, type(exc).__name__, exc)
            ) from exc
        # process-wide switches, set on the CPU path too so that what versions() records is what was asked
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        self.model = module
        self._device = device
        self._compute = compute
        self._pinned = device.type == "cuda"
        self._staged = {}
        self._warm_up()

    def _read_input(self, graph):
        initializers = set(i.name for i in graph.initializer)
        inputs = [i for i in graph.input if i.name not in initializers]
        if len(inputs) != 1:
            raise ModelError("model has %d inputs; the agent feeds exactly one" % len(inputs))
        tensor = inputs[0].type.tensor_type
        dtype = _ONNX_DTYPES.get(tensor.elem_type)
        if dtype is None:
            raise ModelError("unsupported model input element type %d" % tensor.elem_type)
        dims = []
        for dim in tensor.shape.dim:
            dims.append(int(dim.dim_value) if dim.HasField("dim_value") and dim.dim_value > 0 else None)
        self._input_shape = tuple(dims)
        self._input_dtype = np.dtype(dtype)

    def _warm_up(self):
        """``warmup`` forward passes on zeros of the job's shape (cuDNN's algorithm search, CUDA context and
        allocator): before LoadGen starts. A module that cannot run fails here."""
        self.warmup_done = 0
        if not self.warmup:
            return
        try:
            shape = resolve_shape(self._input_shape, self.batch_size)
        except ModelError:
            return  # the LoadGen driver reports the shape problem
        zeros = np.zeros(shape, self._input_dtype)
        for _ in range(self.warmup):
            self.predict(zeros)
            self.warmup_done += 1

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def input_dtype(self):
        return self._input_dtype

    # ------------------------------------------------------------------ inputs and the timed call

    def _host_tensor(self, batch, pin):
        """``batch`` as a host tensor in the compute dtype (floating inputs only), pinned if ``pin``."""
        torch = self._torch
        array = np.ascontiguousarray(batch)
        if not array.flags.writeable:
            array = array.copy()
        tensor = torch.from_numpy(array)
        if tensor.is_floating_point() and tensor.dtype != self._compute:
            tensor = tensor.to(self._compute)
        return tensor.pin_memory() if pin else tensor

    def prepare(self, batches):
        """Stage each distinct batch once (in the compute dtype, pinned when the device is CUDA); keyed by
        the batch object, which the driver reuses for the whole test."""
        staged = {}
        for batch in batches:
            if id(batch) not in staged:
                staged[id(batch)] = (batch, self._host_tensor(batch, self._pinned))
        self._staged = staged

    def predict(self, batch):
        torch = self._torch
        entry = self._staged.get(id(batch))
        host = entry[1] if entry is not None and entry[0] is batch else None
        try:
            if host is None:
                host = self._host_tensor(batch, False)
            with torch.inference_mode():
                x = host.to(self._device, non_blocking=self._pinned)
                if x.is_floating_point() and x.dtype != self._compute:
                    x = x.to(self._compute)
                out = self._first_output(self.model(x))
                if out.dtype in (torch.float16, torch.bfloat16):
                    out = out.float()
                if self._device.type == "cuda":
                    torch.cuda.synchronize(self._device)  # the query's latency is the device's
                return out.cpu().numpy()
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError("torch failed to run the model: %s: %s" % (type(exc).__name__, exc)) from exc

    def _first_output(self, out):
        several, index = self._output_path
        if several and isinstance(out, (tuple, list)):
            out = out[0]
        if index is not None and isinstance(out, (tuple, list)):
            out = out[index]
        while isinstance(out, (tuple, list)):  # a shape the mapping above did not foresee
            out = out[0]
        return out

    # ------------------------------------------------------------------ provenance

    def versions(self):
        torch = self._torch
        cuda_ok = _safe(torch.cuda.is_available, False)
        device = self._device
        if device is None:
            device = torch.device("cpu") if self.device == "cpu" else torch.device("cuda", self.device_id)
        on_cuda = device.type == "cuda" and cuda_ok
        out = {
            "runtime": self.runtime,
            "runtime_version": torch.__version__,
            "runtime_providers": (["cuda"] if cuda_ok else []) + ["cpu"],
            "session_providers": [str(self._device)] if self.model is not None else [],
            "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda,
            "cudnn_version": _safe(torch.backends.cudnn.version),
            "cuda_available": cuda_ok,
            "device": str(device),
            "device_name": _safe(lambda: torch.cuda.get_device_name(device)) if on_cuda else "cpu",
            "device_capability": _safe(lambda: _capability(torch, device)) if on_cuda else None,
            "cuda_device": cuda_device(self.device_id) if self.device == "cuda" else None,
            "dtype": self.dtype,
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": _safe(torch.get_num_interop_threads),
            "onnx2torch_version": getattr(self._onnx2torch, "__version__", None)
            or _dist_version("onnx2torch"),
            "onnx_version": getattr(self._onnx, "__version__", None),
            "torchvision": self._torchvision,
            "pinned_inputs": self._pinned,
            "warmup_iterations": self.warmup_done,
        }
        if self._torchvision_note:
            out["torchvision_note"] = self._torchvision_note
        return out

    def close(self):
        self.model = None
        self._staged = {}
        if self._device is not None and self._device.type == "cuda":
            _safe(self._torch.cuda.empty_cache)


def _capability(torch, device):
    major, minor = torch.cuda.get_device_capability(device)
    return "%d.%d" % (major, minor)


def _cpu_bf16(torch):
    try:
        torch.zeros(1, dtype=torch.bfloat16) + 1
        return True
    except Exception:
        return False


def _dist_version(name):
    try:
        from importlib.metadata import version
    except ImportError:  # pragma: no cover (Python < 3.8)
        return None
    try:
        return version(name)
    except Exception:
        return None


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:
        return default
