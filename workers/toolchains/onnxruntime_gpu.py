"""ONNX Runtime for NVIDIA GPUs (the `gpu` board type and real Jetsons): the CUDA and TensorRT execution
providers run what this writes (workers/agent/backends/onnxruntime_gpu.py).

fp32: the same hardware-neutral "extended" graph optimisation as the CPU toolchain (no NCHWc layouts), so
the CUDA/TensorRT providers take it as they take any ONNX model.

int8: QDQ with SYMMETRIC signed activations and weights (QInt8, zero point 0) and full 8-bit weights:
TensorRT only builds explicit-quantisation engines from symmetric QDQ pairs, and GPU int8 kernels have no
U8S8 saturation to dodge (no ``reduce_range``). Calibration, fidelity and the quantisation cache are the
CPU toolchain's.
"""

from __future__ import annotations

from farm.workers.toolchains.onnxruntime_cpu import OnnxRuntimeCpuToolchain

CONTAINER_REPOSITORY = "farm/toolchain-onnxruntime-gpu"


class OnnxRuntimeGpuToolchain(OnnxRuntimeCpuToolchain):
    name = "onnxruntime_gpu"
    catalog = "onnxruntime_gpu"
    activation_type = "QInt8"
    symmetric_activations = True

    def __init__(self, threads: int | None = None):
        super().__init__(threads)
        self.target_arch = "cuda-gpu"  # the artifact does not depend on the compiling host
        self.reduce_range = False

    @property
    def container_image(self) -> str:  # type: ignore[override]
        import onnxruntime

        return f"{CONTAINER_REPOSITORY}:{onnxruntime.__version__}"
