"""The DPU performance model: per-layer roofline, subgraph and host costs, single- and multi-thread.

Why this shape: a DPU layer is one instruction block that streams its weights and feature maps through
DDR while the MAC array works, so its time is the larger of compute and memory time (a roofline) plus a
fixed start-up cost. Compute counts cycles on the real array shape (ceil-rounded channels and pixels, the
depthwise ALU, channel augmentation), so a layer that fills the array badly is slow for the right reason.
Everything the host does (pre/post-processing, runner calls, CPU fallbacks) is priced on the board's host
CPU. Multi-thread throughput is the lesser of what the DPU cores (sharing the memory bus) and the host
cores can sustain. The few efficiencies and overheads are physical quantities, calibrated once on the
published model-zoo figures (farm/perfmodel/calibration.py) and shared by every model and board.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from farm.perfmodel.graph import Layer
from farm.perfmodel.params import CALIBRATED, Params
from farm.perfmodel.partition import Plan
from farm.perfmodel.target import DpuTarget

MODEL_VERSION = "farm-dpu-perf/1"
CPU_MACS_PER_CYCLE = 2.0  # fp32 MACs per A53-equivalent cycle for CPU fallbacks (128-bit NEON, realistic)
HOST_MEMORY_GBPS_CAP = 20.0  # host-side streaming bandwidth cap for CPU fallbacks


@dataclass(frozen=True)
class LayerTime:
    name: str
    op: str
    device: str  # dpu | cpu
    compute_s: float
    memory_s: float
    overhead_s: float
    macs: int
    bytes: int

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s) + self.overhead_s

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


@dataclass(frozen=True)
class Prediction:
    target: str  # e.g. "DPUCZDX8G-B4096x2@300MHz"
    batch_size: int
    latency_ms: float  # one call of the compiled batch, one thread, nominal clock
    clock_scaled_ms: float  # the part of latency_ms that scales with 1/clock
    fps_st: float  # one thread feeding full hardware batches
    fps_mt: float  # all cores busy
    utilisation_st: float
    utilisation_mt: float
    subgraphs: int
    cpu_ops: tuple[str, ...]
    warnings: tuple[str, ...]
    dpu_ms: float  # DPU part of latency_ms
    host_ms: float  # host part (pre/post, runner calls, CPU ops)
    bound_mt: str  # what limits fps_mt: "dpu" or "host"
    layers: tuple[LayerTime, ...] = ()

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("layers")
        d["cpu_ops"] = list(self.cpu_ops)
        d["warnings"] = list(self.warnings)
        return d


def _ceil(a: float, b: float) -> int:
    return int(math.ceil(a / b)) if b else 0


def conv_cycles(layer: Layer, t: DpuTarget) -> float:
    """MAC-array cycles of one image (ceil-rounded to the PP x ICP x OCP array)."""
    d = t.dpu
    n, _, ho, wo = (*layer.out_shape, 1, 1, 1, 1)[:4]
    kh, kw = layer.kernel or (1, 1)
    cin = layer.in_channels // max(1, layer.groups)
    cout = layer.out_channels
    if layer.op == "ConvTranspose":
        util = (cin / (_ceil(cin, d.icp) * d.icp)) * (cout / (_ceil(cout, d.ocp) * d.ocp))
        return layer.macs / max(1, n) / d.macs_per_cycle / max(util, 1e-6)
    if d.channel_augmentation and cin < d.icp:
        cin_steps, taps = _ceil(cin * kw, d.icp), kh
    else:
        cin_steps, taps = _ceil(cin, d.icp), kh * kw
    return ho * _ceil(wo, d.pp) * cin_steps * _ceil(cout, d.ocp) * taps


def depthwise_cycles(layer: Layer, t: DpuTarget) -> float:
    """Depthwise ALU cycles of one image: ``dw_pixels`` x ICP channels, one kh x kw window per pixel and
    cycle (the reading of PG338's "half the pixel parallelism" that the calibration supports: see docs)."""
    d = t.dpu
    _, c, ho, wo = (*layer.out_shape, 1, 1, 1, 1)[:4]
    return ho * _ceil(wo, d.dw_pixels) * _ceil(c, d.icp)


def gemm_cycles(layer: Layer, t: DpuTarget) -> float:
    d = t.dpu
    n_out = layer.out_shape[-1] if layer.out_shape else 1
    k = layer.weight_elems // max(1, n_out) if layer.weight_elems else 1
    rows = max(
        1, layer.act_out_elems // max(1, n_out) // max(1, layer.out_shape[0] if layer.out_shape else 1)
    )
    return rows * _ceil(k, d.icp) * _ceil(n_out, d.ocp)


def _per_image(elems: int, layer: Layer) -> float:
    n = layer.out_shape[0] if layer.out_shape else 1
    return elems / max(1, n)


def _ddr_acts(layer: Layer, onchip: int) -> float:
    """Activation bytes of one image that go through DDR: tensors too big to stay in the on-chip banks."""
    limit = onchip / 2
    total = 0.0
    for shape in layer.in_shapes:
        size = math.prod(shape[1:]) if len(shape) > 1 else 0
        total += size if size > limit else 0
    out = _per_image(layer.act_out_elems, layer)
    return total + (out if out > limit else 0)


def dpu_layer_time(layer: Layer, t: DpuTarget, p: Params, images: int, bandwidth_share: float) -> LayerTime:
    """One layer on one core for ``images`` images side by side on its engines (weights loaded once)."""
    d = t.dpu
    clock = t.clock_mhz * 1e6
    misc_clock = clock * d.misc_clock_ratio
    kind = layer.kind
    if kind == "conv":
        compute = conv_cycles(layer, t) / (clock * p.conv_eff[d.ip])
    elif kind == "depthwise":
        compute = depthwise_cycles(layer, t) / (misc_clock * p.dw_eff)
    elif kind == "gemm":
        compute = gemm_cycles(layer, t) / (clock * p.conv_eff[d.ip])
    elif kind == "pool":
        kh, kw = layer.kernel or (1, 1)
        compute = (
            _per_image(layer.act_out_elems, layer) * kh * kw / (d.dw_pixels * d.icp) / (misc_clock * p.dw_eff)
        )
    else:  # eltwise, standalone activation, resize: one pass over the data on the ALU
        compute = _per_image(layer.act_in_elems, layer) / (d.pp * d.icp) / (misc_clock * p.dw_eff)
    acts = _ddr_acts(layer, d.onchip_feature_bytes)
    nbytes = layer.weight_bytes + images * acts
    bw = t.bandwidth_gbps * 1e9 * p.mem_eff_of(d.ip) * bandwidth_share
    return LayerTime(
        name=layer.name,
        op=layer.op,
        device="dpu",
        compute_s=compute,
        memory_s=nbytes / bw,
        overhead_s=p.layer_overhead_cycles / clock,
        macs=int(_per_image(layer.macs, layer)),
        bytes=int(nbytes),
    )


def cpu_layer_time(layer: Layer, t: DpuTarget, p: Params) -> LayerTime:
    """A fallback op on one host core (fp32), plus converting its int8 inputs/outputs at the boundary."""
    cps = t.host.cycles_per_s
    macs = _per_image(layer.macs, layer)
    elems = _per_image(layer.act_in_elems + layer.act_out_elems, layer)
    compute = (
        macs / (cps * CPU_MACS_PER_CYCLE)
        + (elems + _per_image(layer.ops, layer)) * p.host_cycles_per_elem / cps
    )
    bw = min(t.bandwidth_gbps, HOST_MEMORY_GBPS_CAP) * 1e9 * p.mem_eff
    memory = (4 * elems + 4 * layer.weight_elems) / bw
    return LayerTime(layer.name, layer.op, "cpu", compute, memory, 0.0, int(macs), int(4 * elems))


@dataclass(frozen=True)
class _Pass:
    dpu_s: float  # DPU busy time for one call of ``images`` images on one core
    clock_s: float  # of which scales with 1/clock (compute-bound layers + overheads)
    cpu_s: float  # host CPU time per image for CPU fallback ops
    layers: tuple[LayerTime, ...]


def _dpu_pass(plan: Plan, t: DpuTarget, p: Params, images: int, bandwidth_share: float) -> _Pass:
    times = []
    dpu_s = clock_s = cpu_s = 0.0
    for pl in plan.layers:
        if pl.device == "dpu":
            lt = dpu_layer_time(pl.layer, t, p, images, bandwidth_share)
            dpu_s += lt.seconds
            clock_s += lt.overhead_s + (lt.compute_s if lt.compute_s >= lt.memory_s else 0.0)
            times.append(lt)
        elif pl.device == "cpu":
            lt = cpu_layer_time(pl.layer, t, p)
            cpu_s += lt.seconds
            times.append(lt)
    return _Pass(dpu_s, clock_s, cpu_s, tuple(times))


def host_image_s(plan: Plan, t: DpuTarget, p: Params) -> float:
    """Pre- and post-processing of one image on one host core (resize/normalise/quantise in, softmax out)."""
    g = plan.graph
    n = max(1, g.batch)
    elems = (math.prod(g.input_shape) + (math.prod(g.output_shape) if g.output_shape else 0)) / n
    return elems * p.host_cycles_per_elem / t.host.cycles_per_s


def call_s(t: DpuTarget, p: Params) -> float:
    """Host time of one DPU subgraph call (submit, wait, cache maintenance)."""
    return p.call_overhead_us * 1e-6 * 1e9 / t.host.cycles_per_s


def _call_time(plan: Plan, t: DpuTarget, p: Params, images: int) -> tuple[float, float, float, _Pass]:
    """One thread, one call of ``images`` (<= engines) images: (total s, dpu s, clock-scaled s, pass)."""
    ps = _dpu_pass(plan, t, p, images, 1.0)
    host = images * (host_image_s(plan, t, p) + ps.cpu_s) + plan.subgraphs * call_s(t, p)
    return host + ps.dpu_s, ps.dpu_s, ps.clock_s, ps


def predict_plan(plan: Plan, t: DpuTarget, p: Params | None = None) -> Prediction:
    """Latency (compiled batch, one thread), fps single- and multi-thread for ``plan`` on ``t``."""
    p = p or CALIBRATED
    engines = t.dpu.engines
    batch = max(1, plan.graph.batch)
    # latency_ms: the compiled batch in rounds of at most `engines` images.
    latency = dpu_total = clock_total = 0.0
    remaining = batch
    layers: tuple[LayerTime, ...] = ()
    while remaining > 0:
        n = min(engines, remaining)
        total, dpu, clk, ps = _call_time(plan, t, p, n)
        latency, dpu_total, clock_total = latency + total, dpu_total + dpu, clock_total + clk
        layers = layers or ps.layers
        remaining -= n
    # fps_st: one thread feeding full hardware batches (what the model-zoo test programs do).
    st_total, st_dpu, _, _ = _call_time(plan, t, p, engines)
    fps_st = engines / st_total
    # fps_mt: every core's engines busy, the memory bus shared by all cores; the host cores do the rest.
    mt = _dpu_pass(plan, t, p, engines, 1.0 / t.cores)
    fps_dpu = t.cores * engines / mt.dpu_s if mt.dpu_s > 0 else math.inf
    host_per_image = host_image_s(plan, t, p) + mt.cpu_s + plan.subgraphs * call_s(t, p) / engines
    fps_host = t.host.cores / host_per_image
    fps_mt = min(fps_dpu, fps_host)
    return Prediction(
        target=t.arch,
        batch_size=batch,
        latency_ms=latency * 1e3,
        clock_scaled_ms=clock_total * 1e3,
        fps_st=fps_st,
        fps_mt=fps_mt,
        utilisation_st=min(1.0, st_dpu / st_total) if st_total else 0.0,
        utilisation_mt=min(1.0, fps_mt / fps_dpu) if math.isfinite(fps_dpu) else 0.0,
        subgraphs=plan.subgraphs,
        cpu_ops=plan.cpu_ops,
        warnings=plan.warnings,
        dpu_ms=dpu_total * 1e3,
        host_ms=(latency - dpu_total) * 1e3,
        bound_mt="dpu" if fps_dpu <= fps_host else "host",
        layers=layers,
    )
