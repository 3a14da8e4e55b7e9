"""A timing model for a board's own ARM application CPU running the model with ONNX Runtime (fp32, int8).

Why: the board's CPU is the baseline an FPGA accelerator has to beat (``pynq-z2:cpu`` = the Pynq-Z2's dual
Cortex-A9 @ 650 MHz, ``zcu104:cpu`` = the ZCU104's quad Cortex-A53 @ 1.2 GHz). Targets are named
``<board type>:cpu`` (all cores as threads) or ``<board type>:cpu:<N>`` (N threads).

Per layer (``farm.perfmodel.graph``), on one core::

    compute = MACs / (clock x NEON fp32 MACs/cycle x efficiency[kind] x int8 speedup[kind])
              (pool/eltwise/activation/other: elements / (clock x elements/cycle))
    memory  = (weights + activations beyond the L2) x bytes/element / (DDR bandwidth x MEM_EFF)
    time    = max(compute, memory) + (1 - OVERLAP) x min(compute, memory) + dispatch overhead

With N threads a layer's compute divides by ``1 + (N - 1) x parallel_eff x share[kind]`` (Amdahl-like:
conv/gemm kernels split their output across threads, element-wise kernels only partly, glue not at all);
memory bandwidth is shared (it does not scale) and the per-op dispatch stays serial. Activations that
ONNX Runtime fuses into the producing Conv/Gemm (Relu, Clip, ...) cost nothing.

Sources of every figure (docs/dpu-model.md, "Board CPUs as baselines", has the table):

* Cortex-A9: calibrated to the project's seed figures for MobileNetV2 fp32 under ONNX Runtime on the
  Pynq-Z2 (dual A9 @ 650 MHz, 2.1 GB/s DDR3 16-bit): about 800 ms with 1 thread, 420 ms with 2.
* Cortex-A53: calibrated to the public ncnn benchmark (github.com/Tencent/ncnn, benchmark/README.md,
  "Qualcomm MSM8916 Snapdragon 410 (Cortex-A53 1.2GHz x 4)", fp32 ``mobilenet_v2``): 179.05 ms with 1
  thread, 81.46 ms with 4, priced on that SoC's memory (LPDDR3 32-bit @ 533 MHz, 4.26 GB/s: vendor
  figure, our reading). ncnn is not ONNX Runtime: MobileNetV2 is the calibration model because it is
  pointwise (1x1) convs, plain GEMMs in both runtimes; ncnn's 3x3 convs use Winograd, which ONNX Runtime
  does not, so its resnet18 (498.06 / 178.58 ms) is shown for reference only. No public ONNX Runtime
  figure for an A53 at 1.2 GHz was found; ncnn is typically at least as fast as ONNX Runtime on ARM, so
  treat A53 predictions as optimistic by an unknown margin.
* Cortex-A72: calibrated to the same ncnn README, "Rockchip RK3399 (Cortex-A72 1.8GHz x 2 + ...)",
  fp32 ``mobilenet_v2`` on the big cores: 109.01 ms with 1 thread, 69.44 ms with 2 (RK3399 memory taken as
  12.8 GB/s, dual 32-bit channels: assumption).
* NEON fp32 MACs per cycle (nominal peaks): Cortex-A72 4 (two 64-bit pipes; vfpbench, wlog.flatlib.jp
  2015-10-30, "8 fop" per cycle); Cortex-A9 and Cortex-A53 2 (one 64-bit NEON multiply-accumulate per
  cycle: our reading of their datapaths, an ASSUMPTION). The conv/gemm efficiencies and parallel
  efficiencies are what the calibration needs, not measured fractions; depthwise efficiency is fitted
  with them at a fixed ratio to conv/gemm (our ASSUMPTION, about 0.3-0.4: the depthwise kernels reuse
  little data per load).
* INT8 speedup of conv/gemm over fp32: an ASSUMPTION (A9 1.3x, A53 1.5x, A72 1.6x). ONNX Runtime's ARM
  int8 path (QDQ -> QLinearConv, MLAS U8X8 NEON kernels) has no dot-product instructions on these cores
  (ARMv7-A / ARMv8.0-A), so int8 gains come mostly from 4x narrower data, not 4x more MACs; depthwise gains
  nothing (1.0x). ncnn's own int8 on the MSM8916 is slower than its Winograd fp32, a reminder that this
  factor is uncertain.
* Dispatch overhead per op: ASSUMPTION, 20,000 cycles on A9 (31 us at 650 MHz), 15,000 on A53/A72 (12.5 us
  at 1.2 GHz): ONNX Runtime's per-kernel cost (allocation planning, shape checks) on small in-order cores.
* MEM_EFF 0.6 of the DDR peak and OVERLAP 0.5 of memory time hidden under compute: ASSUMPTIONS for in-order
  cores with simple prefetchers. L2 per CPU: 512 KiB on Zynq-7000 (UG585), 1 MiB on Zynq UltraScale+
  (UG1085) and on the Cortex-A72 boards.
* Power per busy core (for the board power model): ASSUMPTIONS, Cortex-A9 @ 650 MHz on Zynq-7000 0.30 W,
  Cortex-A53 @ 1.2 GHz on ZynqMP 0.35 W, Cortex-A72 @ 1.7-1.8 GHz 0.9 W. ``utilisation`` = busy cores x
  that / the board's ``power.dynamic_w`` (which the catalog gives for the accelerator's full load), clamped
  to [0, 1], so the board power model adds the CPU's dynamic power to the board's static power.
* The DPU clock set by ``farm lab set`` does not change the ARM cores' clock (``clock_scaled_ms`` = 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from farm.errors import ModelError
from farm.perfmodel.graph import Graph, Layer
from farm.targets import parse_board_cpu

MODEL_VERSION = "farm-armcpu-perf/1"
PRECISIONS = ("fp32", "int8")
BYTES = {"fp32": 4, "int8": 1}
MEM_EFF = 0.6  # share of the DDR peak the cores reach (assumption)
OVERLAP = 0.5  # share of the shorter of compute/memory hidden under the longer (assumption)
#: How much of a kind's compute splits across threads (ORT splits conv/gemm outputs; element-wise kernels
#: only above a size threshold; Reshape/Concat copies run on one thread). Assumption.
PARALLEL_SHARE = {
    "conv": 1.0,
    "depthwise": 1.0,
    "gemm": 1.0,
    "pool": 0.5,
    "eltwise": 0.5,
    "activation": 0.5,
    "softmax": 0.5,
    "other": 0.5,
    "concat": 0.0,
    "glue": 0.0,
}
#: Activations ONNX Runtime fuses into the Conv/Gemm that produces their input (ConvActivationFusion in
#: fp32; the QDQ transforms fold Relu/Clip into QLinearConv in int8): they cost nothing.
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid"})
TRANSCENDENTAL = frozenset({"Sigmoid", "Tanh", "Softmax", "HardSwish", "Exp", "Erf", "Log"})


@dataclass(frozen=True)
class CpuParams:
    """One CPU generation under ONNX Runtime (see the module docstring for each figure's source)."""

    model: str
    fp32_macs_per_cycle: float  # nominal NEON peak per core
    dense_eff: float  # conv/gemm share of that peak (calibrated)
    depthwise_eff: float  # depthwise share of that peak (calibrated)
    elems_per_cycle: float  # element-wise/pool elements per cycle per core
    int8_dense_speedup: float  # assumption
    int8_depthwise_speedup: float  # assumption
    op_overhead_cycles: float  # per dispatched op (assumption)
    parallel_eff: float  # extra speedup per extra thread on conv/gemm (calibrated)
    l2_kib: int
    core_active_w: float  # dynamic power of one busy core (assumption)


CPU_PARAMS: dict[str, CpuParams] = {
    "cortex-a9": CpuParams(
        model="Cortex-A9",
        fp32_macs_per_cycle=2.0,
        dense_eff=0.35,
        depthwise_eff=0.10,
        elems_per_cycle=0.5,
        int8_dense_speedup=1.3,
        int8_depthwise_speedup=1.0,
        op_overhead_cycles=20_000,
        parallel_eff=0.94,
        l2_kib=512,
        core_active_w=0.30,
    ),
    "cortex-a53": CpuParams(
        model="Cortex-A53",
        fp32_macs_per_cycle=2.0,
        dense_eff=0.81,
        depthwise_eff=0.32,
        elems_per_cycle=1.0,
        int8_dense_speedup=1.5,
        int8_depthwise_speedup=1.0,
        op_overhead_cycles=15_000,
        parallel_eff=0.45,
        l2_kib=1024,
        core_active_w=0.35,
    ),
    "cortex-a72": CpuParams(
        model="Cortex-A72",
        fp32_macs_per_cycle=4.0,
        dense_eff=0.44,
        depthwise_eff=0.165,
        elems_per_cycle=1.5,
        int8_dense_speedup=1.6,
        int8_depthwise_speedup=1.0,
        op_overhead_cycles=15_000,
        parallel_eff=0.6,
        l2_kib=1024,
        core_active_w=0.9,
    ),
}


def parameters() -> dict:
    """Every figure the model uses (the emulated toolchain's version hashes it, so artifacts follow it)."""
    return {
        "cpus": {k: asdict(v) for k, v in CPU_PARAMS.items()},
        "mem_eff": MEM_EFF,
        "overlap": OVERLAP,
        "parallel_share": PARALLEL_SHARE,
        "fused_activations": sorted(FUSED_ACTIVATIONS),
        "transcendental": sorted(TRANSCENDENTAL),
    }


def cpu_params(model: str) -> CpuParams:
    """The parameters of a catalog ``host_cpu.model`` (e.g. "Cortex-A53"); other CPUs are refused: there
    is nothing to calibrate them on."""
    key = model.strip().lower().replace(" ", "-")
    if key not in CPU_PARAMS:
        known = ", ".join(p.model for p in CPU_PARAMS.values())
        raise ModelError(f"no ARM CPU timing model for {model!r}; known: {known}")
    return CPU_PARAMS[key]


def parse_cpu_target(target: str) -> tuple[str, int | None]:
    """``"pynq-z2:cpu"`` -> ("pynq-z2", None); ``"pynq-z2:cpu:1"`` -> ("pynq-z2", 1) (farm/targets.py)."""
    parsed = parse_board_cpu(target)
    if parsed is None:
        raise ModelError(
            f"bad CPU target {target!r}: expected '<board type>:cpu' or '<board type>:cpu:<threads>' "
            "(threads a whole number >= 1), e.g. 'pynq-z2:cpu:1'"
        )
    return parsed


@dataclass(frozen=True)
class CpuTarget:
    board: str  # the target string as given, e.g. "pynq-z2:cpu:1"
    board_type: str
    model: str
    cores: int
    clock_mhz: float
    threads: int
    bandwidth_gbps: float | None = None  # None: the board type's memory.bandwidth_gbps
    dynamic_w: float | None = None  # None: the board type's power.dynamic_w (utilisation's denominator)

    @property
    def arch(self) -> str:
        """The artifact's target_arch, e.g. "cortex-a9x2@650MHz-t1"."""
        return f"{self.model.lower()}x{self.cores}@{self.clock_mhz:g}MHz-t{self.threads}"


@dataclass(frozen=True)
class CpuPrediction:
    target: str
    precision: str
    batch_size: int
    threads: int
    latency_ms: float  # one batch with ``threads`` threads
    latency_ms_1t: float  # one batch with one thread
    fps_mt: float  # batches back to back with ``threads`` threads (Offline)
    utilisation_st: float
    utilisation_mt: float
    compute_ms: float  # at ``threads`` threads, before overlap with memory
    memory_ms: float
    overhead_ms: float  # dispatch
    ops: int  # dispatched ONNX Runtime kernels

    def summary(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reference:
    """A figure the model is calibrated on (``calibrated``) or compared with (the module docstring)."""

    label: str
    target: CpuTarget
    model: str  # zoo model name
    precision: str
    latency_ms: float
    source: str
    calibrated: bool


NCNN_README = "github.com/Tencent/ncnn benchmark/README.md"
MSM8916_GBPS = 4.26  # Snapdragon 410: LPDDR3 32-bit @ 533 MHz (vendor figure, our reading)
RK3399_GBPS = 12.8  # RK3399: two 32-bit channels (assumption)


def references() -> list[Reference]:
    """The calibration points and the comparison figures (the seed figures use the catalog's Pynq-Z2)."""
    seed = "project seed figure (ONNX Runtime)"
    msm = "ncnn, Snapdragon 410 (" + NCNN_README + ")"
    rk = "ncnn, RK3399 big cores (" + NCNN_README + ")"

    def a53(n: int) -> CpuTarget:
        return CpuTarget(f"msm8916:cpu:{n}", "msm8916", "Cortex-A53", 4, 1200.0, n, MSM8916_GBPS, None)

    def a72(n: int) -> CpuTarget:
        return CpuTarget(f"rk3399:cpu:{n}", "rk3399", "Cortex-A72", 2, 1800.0, n, RK3399_GBPS, None)

    return [
        Reference(
            "Cortex-A9 x1, Pynq-Z2", cpu_target("pynq-z2:cpu:1"), "mobilenet_v2", "fp32", 800.0, seed, True
        ),
        Reference(
            "Cortex-A9 x2, Pynq-Z2", cpu_target("pynq-z2:cpu"), "mobilenet_v2", "fp32", 420.0, seed, True
        ),
        Reference("Cortex-A53 x1 @1.2 GHz", a53(1), "mobilenet_v2", "fp32", 179.05, msm, True),
        Reference("Cortex-A53 x4 @1.2 GHz", a53(4), "mobilenet_v2", "fp32", 81.46, msm, True),
        Reference("Cortex-A53 x1 @1.2 GHz", a53(1), "resnet18", "fp32", 498.06, msm + ", Winograd", False),
        Reference("Cortex-A53 x4 @1.2 GHz", a53(4), "resnet18", "fp32", 178.58, msm + ", Winograd", False),
        Reference("Cortex-A72 x1 @1.8 GHz", a72(1), "mobilenet_v2", "fp32", 109.01, rk, True),
        Reference("Cortex-A72 x2 @1.8 GHz", a72(2), "mobilenet_v2", "fp32", 69.44, rk, True),
    ]


def calibration_errors() -> list[tuple[Reference, float]]:
    """Each calibration point (``Reference.calibrated``) and the model's |error| (%) on it: the expected error
    `farm lab predict` states (in-sample). Each zoo graph is built once."""
    from farm.perfmodel.graph import analyse
    from farm.zoo.registry import build_zoo_model

    graphs: dict[str, Graph] = {}
    out = []
    for ref in references():
        if ref.calibrated:
            if ref.model not in graphs:
                graphs[ref.model] = analyse(build_zoo_model(ref.model, 1))
            ours = predict_cpu(graphs[ref.model], ref.target, ref.precision).latency_ms
            out.append((ref, abs(ours - ref.latency_ms) / ref.latency_ms * 100))
    return out


def cpu_target(target: str) -> CpuTarget:
    """The CPU target ``<board type>:cpu[:<threads>]`` from the catalog's ``host_cpu`` (threads default to
    every core; more threads than cores is refused)."""
    from farm.perfmodel.target import board_type

    name, threads = parse_cpu_target(target)
    bt = board_type(name)
    if bt.host_cpu is None:
        raise ModelError(f"board type {name!r} has no host_cpu: in the catalog")
    if bt.memory is None:
        raise ModelError(f"board type {name!r} lacks memory: in the catalog")
    try:
        params = cpu_params(bt.host_cpu.model)
    except ModelError as exc:
        raise ModelError(f"{name}: {exc}") from None
    cores = int(bt.host_cpu.cores)
    n = cores if threads is None else threads
    if n > cores:
        raise ModelError(f"{target!r} asks for {n} threads; {name}'s {params.model} has {cores} cores")
    return CpuTarget(
        board=target,
        board_type=name,
        model=params.model,
        cores=cores,
        clock_mhz=float(bt.host_cpu.clock_mhz),
        threads=n,
        bandwidth_gbps=float(bt.memory.bandwidth_gbps),
        dynamic_w=float(bt.power.dynamic_w) if bt.power else None,
    )


def _board_figures(t: CpuTarget) -> tuple[float, float | None]:
    """(bandwidth GB/s, dynamic W) of ``t``: the catalog's, where the target does not give a bandwidth."""
    if t.bandwidth_gbps is not None:
        return float(t.bandwidth_gbps), t.dynamic_w
    from farm.perfmodel.target import board_type

    bt = board_type(t.board_type)
    if bt.memory is None:
        raise ModelError(f"board type {t.board_type!r} lacks memory: in the catalog")
    dyn = t.dynamic_w if t.dynamic_w is not None else (bt.power.dynamic_w if bt.power else None)
    return float(bt.memory.bandwidth_gbps), dyn


def _fused(graph: Graph) -> set[str]:
    """Names of the activation layers ONNX Runtime folds into their producing Conv/Gemm."""
    producers = {
        out for layer in graph.layers if layer.kind in ("conv", "depthwise", "gemm") for out in layer.outputs
    }
    return {
        layer.name
        for layer in graph.layers
        if layer.kind == "activation"
        and layer.op in FUSED_ACTIVATIONS
        and len(layer.inputs) == 1
        and layer.inputs[0] in producers
    }


def _compute_cycles(layer: Layer, p: CpuParams, precision: str) -> float:
    """Cycles of one core for the layer's arithmetic."""
    int8 = precision == "int8"
    if layer.kind in ("conv", "gemm") and layer.macs:
        rate = p.fp32_macs_per_cycle * p.dense_eff * (p.int8_dense_speedup if int8 else 1.0)
        return layer.macs / rate
    if layer.kind == "depthwise":
        rate = p.fp32_macs_per_cycle * p.depthwise_eff * (p.int8_depthwise_speedup if int8 else 1.0)
        return layer.macs / rate
    if layer.kind in ("glue", "concat"):
        return 0.0
    work = layer.ops or layer.macs or layer.act_out_elems
    slow = 4.0 if layer.op in TRANSCENDENTAL else 1.0
    return work * slow / p.elems_per_cycle


def _memory_bytes(layer: Layer, p: CpuParams, precision: str) -> float:
    """DRAM bytes: the weights, and the activations that do not fit the L2."""
    if layer.kind == "glue":
        return 0.0
    b = BYTES[precision]
    act = (layer.act_in_elems + layer.act_out_elems) * b
    return max(0.0, act - p.l2_kib * 1024) + layer.weight_elems * b


def _latency_s(graph: Graph, t: CpuTarget, p: CpuParams, precision: str, threads: int, bw: float):
    """(latency, compute, memory, overhead, ops) in seconds for one batch at ``threads`` threads."""
    clock = t.clock_mhz * 1e6
    fused = _fused(graph)
    total = compute_s = memory_s = overhead_s = 0.0
    ops = 0
    for layer in graph.layers:
        if layer.name in fused or layer.kind == "glue":
            continue  # fused into the producer, or removed/metadata-only (Identity, Flatten, Q/DQ pairs)
        speedup = 1.0 + (threads - 1) * p.parallel_eff * PARALLEL_SHARE.get(layer.kind, 0.5)
        c = _compute_cycles(layer, p, precision) / clock / speedup
        m = _memory_bytes(layer, p, precision) / (bw * 1e9 * MEM_EFF)
        o = p.op_overhead_cycles / clock
        total += max(c, m) + (1.0 - OVERLAP) * min(c, m) + o
        compute_s, memory_s, overhead_s, ops = compute_s + c, memory_s + m, overhead_s + o, ops + 1
    if precision == "int8":  # QuantizeLinear on the input, DequantizeLinear on the output
        elems = math.prod(graph.input_shape) + (math.prod(graph.output_shape) if graph.output_shape else 0)
        c = elems / p.elems_per_cycle / clock
        o = 2 * p.op_overhead_cycles / clock
        total += c + o
        compute_s, overhead_s, ops = compute_s + c, overhead_s + o, ops + 2
    return total, compute_s, memory_s, overhead_s, ops


def utilisation(t: CpuTarget, threads: int, dynamic_w: float | None) -> float:
    """Busy cores' dynamic power as a share of the board's ``power.dynamic_w`` (0 without one)."""
    if not dynamic_w:
        return 0.0
    p = cpu_params(t.model)
    return min(1.0, max(0.0, p.core_active_w * threads / dynamic_w))


def predict_cpu(graph: Graph, t: CpuTarget, precision: str) -> CpuPrediction:
    """Latency of one batch of ``graph`` on ``t`` with ``t.threads`` threads (and with one)."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if t.threads < 1 or t.threads > t.cores:
        raise ModelError(f"threads must be 1..{t.cores}, got {t.threads}")
    p = cpu_params(t.model)
    bw, dyn = _board_figures(t)
    latency, compute, memory, overhead, ops = _latency_s(graph, t, p, precision, t.threads, bw)
    latency_1t = _latency_s(graph, t, p, precision, 1, bw)[0] if t.threads > 1 else latency
    batch = max(1, graph.batch)
    util = utilisation(t, t.threads, dyn)
    return CpuPrediction(
        target=t.arch,
        precision=precision,
        batch_size=batch,
        threads=t.threads,
        latency_ms=latency * 1e3,
        latency_ms_1t=latency_1t * 1e3,
        fps_mt=batch / latency,
        utilisation_st=util,
        utilisation_mt=util,
        compute_ms=compute * 1e3,
        memory_ms=memory * 1e3,
        overhead_ms=overhead * 1e3,
        ops=ops,
    )
