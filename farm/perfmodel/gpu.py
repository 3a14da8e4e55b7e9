"""A GPU roofline for emulated GPU boards (e.g. jetson-agx-xavier), fp32 and int8.

Why: the same per-layer reasoning as the DPU (compute vs memory, plus a fixed cost per kernel launch)
prices a GPU from its catalog figures (peak_tops_int8, peak_tflops_fp32, memory bandwidth) so FPGA and GPU
predictions are comparable. No published GPU figures are in the calibration table, so the efficiencies
below are our choice (typical cuDNN/TensorRT fractions of peak at batch 1 on Jetson-class parts) and are
documented in docs/dpu-model.md; only their shape, not their value, is checked by tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from farm.errors import ModelError
from farm.perfmodel.graph import Graph, Layer
from farm.perfmodel.target import HostCpu, board_type

MODEL_VERSION = "farm-gpu-perf/1"
COMPUTE_EFF = {"fp32": 0.55, "int8": 0.35}  # dense conv/gemm kernels at batch 1
DEPTHWISE_EFF = 0.08  # depthwise kernels use a small share of the SMs
MEM_EFF = 0.65
LAUNCH_US = 12.0  # per kernel launch (CUDA on a Jetson, driver + scheduling)
HOST_CYCLES_PER_ELEM = 4.0  # pre/post-processing per input/output element (A53 cycles), as for the DPU
BYTES = {"fp32": 4, "int8": 1}


@dataclass(frozen=True)
class GpuTarget:
    board: str
    device: str
    sms: int
    clock_mhz: float
    peak_ops: dict  # precision -> ops/s
    bandwidth_gbps: float
    host: HostCpu

    @property
    def arch(self) -> str:
        return f"{self.device}x{self.sms}@{self.clock_mhz:g}MHz"


@dataclass(frozen=True)
class GpuPrediction:
    target: str
    precision: str
    batch_size: int
    latency_ms: float
    clock_scaled_ms: float
    fps_st: float
    fps_mt: float
    utilisation_st: float
    utilisation_mt: float
    gpu_ms: float
    host_ms: float
    kernels: int

    def summary(self) -> dict:
        return asdict(self)


def gpu_target(board: str, clock_mhz: float | None = None) -> GpuTarget:
    bt = board_type(board)
    acc = bt.accelerator
    if acc is None or acc.kind != "gpu" or not (acc.peak_tops_int8 and acc.peak_tflops_fp32):
        raise ModelError(f"board type {board!r} has no GPU with peak figures in the catalog")
    if bt.memory is None or bt.host_cpu is None:
        raise ModelError(f"board type {board!r} lacks memory: or host_cpu: in the catalog")
    scale = (clock_mhz / acc.clock_mhz) if (clock_mhz and acc.clock_mhz) else 1.0
    return GpuTarget(
        board=board,
        device=acc.ip or "gpu",
        sms=acc.cores,
        clock_mhz=float(clock_mhz or acc.clock_mhz or 1000.0),
        peak_ops={"int8": acc.peak_tops_int8 * 1e12 * scale, "fp32": acc.peak_tflops_fp32 * 1e12 * scale},
        bandwidth_gbps=bt.memory.bandwidth_gbps,
        host=HostCpu(bt.host_cpu.model, bt.host_cpu.cores, bt.host_cpu.clock_mhz),
    )


def _layer_s(layer: Layer, t: GpuTarget, precision: str) -> tuple[float, float]:
    """(compute s, memory s) of one layer for the whole batch."""
    if layer.kind in ("glue", "concat"):
        return 0.0, 0.0
    eff = DEPTHWISE_EFF if layer.kind == "depthwise" else COMPUTE_EFF[precision]
    ops = layer.ops if layer.macs == 0 else 2 * layer.macs
    compute = ops / (t.peak_ops[precision] * (eff if layer.macs else COMPUTE_EFF[precision]))
    nbytes = (layer.act_in_elems + layer.act_out_elems + layer.weight_elems) * BYTES[precision]
    return compute, nbytes / (t.bandwidth_gbps * 1e9 * MEM_EFF)


def predict_gpu(graph: Graph, t: GpuTarget, precision: str) -> GpuPrediction:
    if precision not in BYTES:
        raise ModelError(f"unknown precision {precision!r}; valid: fp32, int8")
    gpu_s = clock_s = busy_s = 0.0
    kernels = 0
    fused_activation = {"Relu", "Clip", "LeakyRelu"}  # TensorRT fuses these into the producer
    for layer in graph.layers:
        if layer.kind in ("glue", "concat") or (layer.kind == "activation" and layer.op in fused_activation):
            continue
        c, m = _layer_s(layer, t, precision)
        kernels += 1
        busy_s += max(c, m)
        clock_s += c if c >= m else 0.0
    launch_s = kernels * LAUNCH_US * 1e-6
    gpu_s = busy_s + launch_s
    batch = max(1, graph.batch)
    elems = math.prod(graph.input_shape) + (math.prod(graph.output_shape) if graph.output_shape else 0)
    host_s = elems * HOST_CYCLES_PER_ELEM / t.host.cycles_per_s
    latency = gpu_s + host_s
    # Several streams hide launches and host work behind each other; the GPU's busy time bounds it.
    fps_gpu = batch / busy_s if busy_s else math.inf
    fps_host = t.host.cores * batch / host_s
    fps_mt = min(fps_gpu, fps_host)
    return GpuPrediction(
        target=t.arch,
        precision=precision,
        batch_size=batch,
        latency_ms=latency * 1e3,
        clock_scaled_ms=clock_s * 1e3,
        fps_st=batch / latency,
        fps_mt=fps_mt,
        utilisation_st=min(1.0, busy_s / latency),
        utilisation_mt=min(1.0, fps_mt / fps_gpu) if math.isfinite(fps_gpu) else 0.0,
        gpu_ms=gpu_s * 1e3,
        host_ms=host_s * 1e3,
        kernels=kernels,
    )
