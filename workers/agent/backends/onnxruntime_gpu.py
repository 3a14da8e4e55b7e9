"""ONNX Runtime on an NVIDIA GPU: the TensorRT execution provider and/or the CUDA one (package
onnxruntime-gpu).

Providers, in order of preference: ``TensorrtExecutionProvider`` (INT8 on for QDQ models, whose
QuantizeLinear/DequantizeLinear nodes carry the scales TensorRT needs, so no calibration table; FP16 off
unless the config asks for it, so an FP32 result stays FP32; engines cached next to the model), then
``CUDAExecutionProvider`` for whatever TensorRT leaves, then nothing else: a GPU result never silently
falls back to the CPU. With neither provider available the backend fails with the providers that are.

The config may set ``gpu: {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider"],
"fp16": false, "device_id": 0}``; the defaults are as above.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .base import InfraError
from .onnxruntime_cpu import OnnxRuntimeCpuBackend

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
GPU_PROVIDERS = (TRT, CUDA)


def is_qdq_model(path):
    """Whether the model has QuantizeLinear/DequantizeLinear nodes. The agent has no ``onnx`` package, so
    this looks for the op type in the protobuf bytes (op types are stored as plain strings)."""
    with open(path, "rb") as fh:
        return b"QuantizeLinear" in fh.read()


def cuda_device(device_id=0):
    """``{"name", "driver_version"}`` of the GPU from NVML when pynvml is there, else nvidia-smi."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(device_id))
            name = pynvml.nvmlDeviceGetName(handle)
            driver = pynvml.nvmlSystemGetDriverVersion()
            return {
                "name": name.decode() if isinstance(name, bytes) else name,
                "driver_version": driver.decode() if isinstance(driver, bytes) else driver,
            }
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader", "-i", str(int(device_id))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=10,
            universal_newlines=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = [f.strip() for f in proc.stdout.strip().split(",")] if proc.returncode == 0 else []
    return {"name": fields[0], "driver_version": fields[1]} if len(fields) == 2 else None


class OnnxRuntimeGpuBackend(OnnxRuntimeCpuBackend):
    name = "onnxruntime_gpu"
    runtime = "onnxruntime"

    def __init__(self):
        super(OnnxRuntimeGpuBackend, self).__init__()
        self.wanted = list(GPU_PROVIDERS)
        self.fp16 = False
        self.device_id = 0
        self.providers = None
        self.int8 = None

    def configure(self, config):
        gpu = config.get("gpu") or {}
        self.wanted = list(gpu.get("providers") or GPU_PROVIDERS)
        unknown = [p for p in self.wanted if p not in GPU_PROVIDERS]
        if unknown:
            raise InfraError(
                "onnxruntime_gpu providers must be among %s, got %s" % (", ".join(GPU_PROVIDERS), unknown)
            )
        self.fp16 = bool(gpu.get("fp16", False))
        self.device_id = int(gpu.get("device_id", 0))

    def session_providers(self, artifact_path):
        """The provider list for the session: what is wanted and available, with options."""
        available = list(self._ort.get_available_providers())
        usable = [p for p in self.wanted if p in available]
        if not usable:
            raise InfraError(
                "onnxruntime has none of the GPU providers %s (available: %s); install onnxruntime-gpu "
                "with CUDA (and TensorRT) libraries that match it"
                % (", ".join(self.wanted), ", ".join(available))
            )
        self.int8 = is_qdq_model(artifact_path)
        out = []
        self.providers = usable
        for provider in usable:
            if provider == TRT:
                cache = os.path.join(os.path.dirname(os.path.abspath(artifact_path)), "trt-cache")
                out.append(
                    (
                        TRT,
                        {
                            "device_id": self.device_id,
                            "trt_int8_enable": self.int8,
                            "trt_fp16_enable": self.fp16,
                            "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": cache,
                        },
                    )
                )
            else:
                out.append((CUDA, {"device_id": self.device_id}))
        return out

    def load(self, artifact_path, threads=None):
        super(OnnxRuntimeGpuBackend, self).load(artifact_path, threads)
        used = self.session.get_providers()
        if not any(p in used for p in GPU_PROVIDERS):
            raise InfraError("onnxruntime created the session without a GPU provider (providers: %s)" % used)

    def versions(self):
        out = super(OnnxRuntimeGpuBackend, self).versions()
        out["trt_int8"] = self.int8
        out["trt_fp16"] = self.fp16
        out["cuda_device"] = cuda_device(self.device_id)
        return out
