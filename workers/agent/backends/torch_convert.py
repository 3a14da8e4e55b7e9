"""onnx2torch for the torch_cuda backend: importing it (with a stand-in for a torchvision that cannot be
imported, removed again right after), which ops of a graph it cannot convert, and where the graph's first
output is in what the converted module returns.

Apart from the backend (torch_cuda.py), which runs the converted module on the device: this is the part
that knows onnx2torch's quirks. Python 3.8, numpy-free; onnx2torch, torch and torchvision are imported only
when asked for.
"""

from __future__ import annotations

import sys
import types

from .base import InfraError, ModelError

#: onnx2torch's converters that call torchvision.
TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign")
TORCHVISION_ABSENT = "absent (NMS/RoiAlign unsupported)"
STAND_IN_MARK = "_farm_agent_torchvision_stand_in"


def torchvision_stand_in(reason):
    """A module object that passes for torchvision at import time; every ``torchvision.ops`` function
    raises, saying torchvision is needed."""

    def missing(name):
        def fn(*args, **kwargs):
            raise ModelError(
                "torchvision is needed for onnx2torch's NonMaxSuppression/RoiAlign (torchvision.ops.%s) "
                "and is not importable here: %s" % (name, reason)
            )

        fn.__name__ = name
        return fn

    tv = types.ModuleType(
        "torchvision", "farm agent stand-in for a missing torchvision (backends/torch_convert.py)"
    )
    ops = types.ModuleType("torchvision.ops", "farm agent stand-in for a missing torchvision.ops")
    for name in ("nms", "batched_nms", "box_convert", "roi_align"):
        setattr(ops, name, missing(name))

    def other(name):  # PEP 562: any other public torchvision.ops.X (never a dunder: inspect probes those)
        if name.startswith("_"):
            raise AttributeError(name)
        return missing(name)

    ops.__getattr__ = other
    tv.ops = ops
    tv.__version__ = None
    setattr(tv, STAND_IN_MARK, True)
    setattr(ops, STAND_IN_MARK, True)
    return tv


def import_onnx2torch():
    """``(onnx2torch, torchvision version or None, note or None)``. Without an importable torchvision,
    onnx2torch is imported with the stand-in in ``sys.modules``, which is removed again afterwards."""
    stand_in = None
    try:
        import torchvision

        tv_version, note = getattr(torchvision, "__version__", "unknown"), None
    except Exception as exc:  # ImportError, or a torchvision built for another torch
        tv_version, note = None, TORCHVISION_ABSENT
        stand_in = torchvision_stand_in("%s: %s" % (type(exc).__name__, exc))
        sys.modules["torchvision"] = stand_in
        sys.modules["torchvision.ops"] = stand_in.ops
    try:
        import onnx2torch
        from onnx2torch.node_converters import get_converter  # noqa: F401 (the registry must import)
    except Exception as exc:
        raise InfraError(
            "onnx2torch is not importable on this machine (pip install --no-deps onnx2torch): %s: %s"
            % (type(exc).__name__, exc)
        ) from exc
    finally:
        if stand_in is not None:
            for name in ("torchvision", "torchvision.ops"):
                if getattr(sys.modules.get(name), STAND_IN_MARK, False):
                    del sys.modules[name]
    return onnx2torch, tv_version, note


def unconvertible_ops(model, get_converter, torchvision_present=True):
    """Sorted names of the graph's ops onnx2torch cannot convert (``domain:Op`` outside the ONNX domain;
    NonMaxSuppression / RoiAlign too when torchvision is absent)."""
    opsets = dict((o.domain or "", o.version) for o in model.opset_import)
    opsets.setdefault("", opsets.get("ai.onnx"))
    bad = set()
    for node in model.graph.node:
        domain = node.domain or ""
        name = "%s:%s" % (domain, node.op_type) if domain else node.op_type
        version = opsets.get(domain)
        if version is None:
            bad.add(name)
            continue
        try:
            get_converter(operation_type=node.op_type, version=version, domain=domain)
        except (NotImplementedError, KeyError):
            bad.add(name)
            continue
        if not torchvision_present and node.op_type in TORCHVISION_OPS and not domain:
            bad.add("%s (needs torchvision)" % name)
    return sorted(bad)


def first_output_path(graph):
    """How to take the graph's first output from what the onnx2torch module returns: ``(several, k)``:
    whether the module returns a tuple over the output-producing nodes (first is index 0), and the index
    of the output among its node's outputs (``None`` when the node has one)."""
    producers = []
    first_node = None
    by_output = {}
    for node in graph.node:
        for out in node.output:
            by_output[out] = node
    for value in graph.output:
        node = by_output.get(value.name)
        if node is not None and all(node is not p for p in producers):
            producers.append(node)
    if graph.output:
        first_node = by_output.get(graph.output[0].name)
    several = len(producers) > 1
    if first_node is None or len([o for o in first_node.output if o]) <= 1:
        return several, None
    return several, list(first_node.output).index(graph.output[0].name)
