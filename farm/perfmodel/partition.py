"""Partitioning: which layers run on the DPU, how many DPU subgraphs that makes, and whether it fits.

Why: Vitis AI's compiler cuts the graph wherever an operator falls back to the CPU; each cut is another
DPU subgraph (another runner call, another trip of a tensor through DDR and the host). A model-zoo CNN is
one subgraph; anything else deserves a warning before anyone plans a deployment on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.errors import ModelError
from farm.perfmodel.configs import DpuConfig
from farm.perfmodel.graph import Graph, Layer
from farm.perfmodel.rules import unsupported_reason

#: Layers an activation folds into (the DPU applies ReLU/ReLU6/LeakyReLU on the way out of these).
_FUSE_INTO = frozenset({"conv", "depthwise", "gemm", "eltwise", "pool"})


@dataclass(frozen=True)
class PlannedLayer:
    layer: Layer
    device: str  # "dpu" (runs as its own DPU instruction block), "fused" (free on the DPU), "cpu"
    subgraph: int | None  # DPU subgraph index (0-based) for dpu/fused layers
    reason: str | None = None  # why it runs on the CPU


@dataclass(frozen=True)
class Plan:
    graph: Graph
    dpu: DpuConfig
    layers: tuple[PlannedLayer, ...]
    subgraphs: int
    cpu_ops: tuple[str, ...]  # "OpType name" of every layer that falls back to the CPU
    warnings: tuple[str, ...]
    weight_bytes: int  # int8 weights + int32 biases of the DPU layers
    workspace_bytes: int  # peak live activation bytes of one batch (the compiler reuses buffers)

    def dpu_layers(self) -> list[PlannedLayer]:
        return [p for p in self.layers if p.device == "dpu"]

    def cpu_layers(self) -> list[PlannedLayer]:
        return [p for p in self.layers if p.device == "cpu"]

    def memory_bytes(self, images_in_flight: int = 1) -> int:
        """DDR the deployment needs: weights once, plus a workspace per batch in flight."""
        return self.weight_bytes + self.workspace_bytes * max(1, images_in_flight)


def _consumers(graph: Graph) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, layer in enumerate(graph.layers):
        for name in layer.inputs:
            out.setdefault(name, []).append(i)
    return out


def _workspace(graph: Graph) -> int:
    """Peak bytes of live int8 activations over the layer order (graph inputs included)."""
    consumers = _consumers(graph)
    last_use = {name: max(idx) for name, idx in consumers.items()}
    sizes: dict[str, int] = {}
    for layer in graph.layers:
        for name, shape in zip(layer.inputs, layer.in_shapes, strict=False):
            if shape:
                size = 1
                for d in shape:
                    size *= d
                sizes.setdefault(name, size)
    live = {n: sizes.get(n, 0) for n in graph.inputs}
    peak = sum(live.values())
    for i, layer in enumerate(graph.layers):
        if layer.kind not in ("glue",):
            for out in layer.outputs:
                live[out] = layer.act_out_elems if out == layer.outputs[0] else 0
        peak = max(peak, sum(live.values()))
        for name in list(live):
            if last_use.get(name, -1) <= i and name not in graph.outputs and name not in graph.inputs:
                del live[name]
    return int(peak)


def plan(graph: Graph, dpu: DpuConfig) -> Plan:
    """Assigns every layer to the DPU or the CPU and groups the DPU layers into subgraphs.

    Subgraphs: DPU layers connected through DPU layers, split so that no subgraph feeds itself through a
    CPU op (a layer's "CPU depth" = most CPU ops on any path from the input; one subgraph per connected
    group and depth)."""
    layers = graph.layers
    producer: dict[str, int] = {}
    for i, layer in enumerate(layers):
        for out in layer.outputs:
            producer[out] = i
    consumers = _consumers(graph)
    reasons = [unsupported_reason(layer, dpu) for layer in layers]
    on_cpu = [r is not None for r in reasons]

    device: list[str] = []
    for i, layer in enumerate(layers):
        if on_cpu[i]:
            device.append("cpu")
        elif layer.kind in ("glue", "concat"):
            device.append("fused")  # no data moves: folded by the compiler (concat: written in place)
        elif layer.kind == "activation":
            src = producer.get(layer.inputs[0]) if layer.inputs else None
            fusable = (
                src is not None
                and not on_cpu[src]
                and layers[src].kind in _FUSE_INTO
                and len(consumers.get(layers[src].outputs[0], [])) == 1
            )
            device.append("fused" if fusable else "dpu")
        elif layer.op in ("BatchNormalization", "Pad"):
            device.append("fused")
        else:
            device.append("dpu")

    # CPU depth and union-find over DPU-to-DPU edges.
    depth = [0] * len(layers)
    parent = list(range(len(layers)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, layer in enumerate(layers):
        for name in layer.inputs:
            p = producer.get(name)
            if p is None:
                continue
            depth[i] = max(depth[i], depth[p] + (1 if device[p] == "cpu" else 0))
        if device[i] == "cpu":
            continue
        for name in layer.inputs:
            p = producer.get(name)
            if p is not None and device[p] != "cpu" and depth[p] == depth[i]:
                parent[find(i)] = find(p)

    groups: dict[int, int] = {}
    has_work: set[int] = set()
    for i in range(len(layers)):
        if device[i] == "dpu":
            has_work.add(find(i))
    for i in range(len(layers)):
        root = find(i)
        if device[i] != "cpu" and root in has_work and root not in groups:
            groups[root] = len(groups)
    planned = []
    for i, layer in enumerate(layers):
        sg = groups.get(find(i)) if device[i] != "cpu" else None
        dev = device[i]
        if dev != "cpu" and sg is None:
            dev = "fused"  # glue outside any DPU subgraph (e.g. an Identity after a CPU op)
        planned.append(PlannedLayer(layer, dev, sg, reasons[i]))

    cpu_ops = tuple(f"{p.layer.op} {p.layer.name}" for p in planned if p.device == "cpu")
    warnings: list[str] = []
    if not groups:
        warnings.append(f"no layer of this model runs on {dpu.name}: the whole model runs on the host CPU")
    elif len(groups) > 1:
        warnings.append(
            f"{len(groups)} DPU subgraphs on {dpu.name} (one expected): CPU fallbacks split the graph"
        )
    seen: set[str] = set()
    for p in planned:
        if p.device == "cpu" and p.layer.kind != "softmax":
            key = f"{p.layer.op}: {p.reason}"
            if key not in seen:
                seen.add(key)
                warnings.append(f"{p.layer.op} runs on the CPU ({p.reason})")
    weight_bytes = sum(p.layer.weight_bytes for p in planned if p.device != "cpu")
    return Plan(
        graph=graph,
        dpu=dpu,
        layers=tuple(planned),
        subgraphs=len(groups),
        cpu_ops=cpu_ops,
        warnings=tuple(warnings),
        weight_bytes=int(weight_bytes),
        workspace_bytes=_workspace(graph),
    )


def check_memory(plan_: Plan, capacity_bytes: float, images_in_flight: int, where: str) -> None:
    """Raises ModelError when the deployment cannot fit in ``capacity_bytes`` of DPU-usable memory."""
    need = plan_.memory_bytes(images_in_flight)
    if need > capacity_bytes:
        raise ModelError(
            f"the model does not fit {where}: it needs {need / 2**20:.0f} MiB (weights "
            f"{plan_.weight_bytes / 2**20:.1f} MiB + activations {plan_.workspace_bytes / 2**20:.1f} MiB x "
            f"{images_in_flight} in flight) but {capacity_bytes / 2**20:.0f} MiB is usable by the DPU"
        )
