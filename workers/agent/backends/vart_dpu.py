"""Xilinx/AMD DPUs through VART (Vitis AI Runtime): Zynq UltraScale+ (DPUCZDX8G), Versal (DPUCVDX8G),
Alveo (DPUCAHX8H).

The artifact is a compiled ``.xmodel``. Loading follows the Vitis AI examples:
``xir.Graph.deserialize(path)`` -> ``graph.get_root_subgraph()`` -> its children in topological order
(``toposort_child_subgraph``) -> the ONE child whose ``device`` attribute is ``"DPU"`` ->
``vart.Runner.create_runner(subgraph, "run")``. A model the compiler split into several DPU subgraphs
(CPU ops between them) is refused with the count: running it needs the graph runner and CPU code for
the ops in between.

Tensors: ``runner.get_input_tensors()`` / ``get_output_tensors()``, ``tensor.dims`` in NHWC, and the
``fix_point`` attribute: a float x is ``x * 2**fix_point`` as int8 on input, an int8 q is
``q * 2**-fix_point`` on output. The harness feeds NCHW float32 batches (the ONNX layout every other
backend takes), so ``predict`` transposes to NHWC, scales, rounds and clips to int8, runs
``execute_async(inputs, outputs)`` -> job id, ``wait(job_id)``, and returns the first output as float32
(in the DPU's NHWC layout for 4-D outputs).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np

from .base import Backend, InfraError, ModelError


def _attr(obj, name, default=None):
    try:
        if obj.has_attr(name):
            return obj.get_attr(name)
    except Exception:
        pass
    return default


def dpu_subgraph(graph):
    """The single DPU subgraph of a deserialised xir graph (ModelError if there is none or several)."""
    root = graph.get_root_subgraph()
    if root is None:
        raise ModelError("the xmodel has no root subgraph")
    children = root.toposort_child_subgraph() if not root.is_leaf else []
    dpus = [s for s in children if str(_attr(s, "device", "")).upper() == "DPU"]
    if len(dpus) != 1:
        devices = sorted(set(str(_attr(s, "device", "?")) for s in children))
        raise ModelError(
            "the xmodel has %d DPU subgraphs (of %d subgraphs; devices: %s); the vart_dpu backend runs "
            "models compiled to exactly one DPU subgraph"
            % (len(dpus), len(children), ", ".join(devices) or "none")
        )
    return dpus[0]


def xdputil_query(timeout_s=10.0):
    """``xdputil query`` as JSON (the board's DPU: arch, frequency, fingerprint), or None."""
    exe = shutil.which("xdputil")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, "query"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            universal_newlines=True,
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def find_key(doc, key):
    """The first value of ``key`` anywhere in a JSON document (depth first), or None."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        values = doc.values()
    elif isinstance(doc, list):
        values = doc
    else:
        return None
    for value in values:
        found = find_key(value, key)
        if found is not None:
            return found
    return None


def _fingerprint(value):
    if value is None:
        return None
    if isinstance(value, int):
        return "0x%x" % value
    return str(value)


class VartDpuBackend(Backend):
    name = "vart_dpu"
    runtime = "vart"

    def __init__(self):
        try:
            import vart
            import xir
        except ImportError as exc:
            raise InfraError(
                "VART is not installed on this board (import xir/vart failed: %s)" % exc
            ) from exc
        self._vart = vart
        self._xir = xir
        self.graph = None
        self.subgraph = None
        self.runner = None
        self.in_tensor = None
        self.out_tensors = None
        self.in_scale = None
        self.out_scales = None
        self._inputs = None
        self._outputs = None
        self._model_fingerprint = None

    def load(self, artifact_path, threads=None):
        try:
            self.graph = self._xir.Graph.deserialize(artifact_path)
        except Exception as exc:
            raise ModelError("xir cannot read the xmodel: %s: %s" % (type(exc).__name__, exc)) from exc
        self.subgraph = dpu_subgraph(self.graph)
        self._model_fingerprint = _fingerprint(_attr(self.subgraph, "dpu_fingerprint"))
        try:
            self.runner = self._vart.Runner.create_runner(self.subgraph, "run")
        except Exception as exc:  # no DPU, driver not loaded, fingerprint mismatch
            raise InfraError(
                "VART cannot create a DPU runner for subgraph %s: %s: %s"
                % (self.subgraph.get_name(), type(exc).__name__, exc)
            ) from exc
        inputs = self.runner.get_input_tensors()
        outputs = self.runner.get_output_tensors()
        if len(inputs) != 1:
            raise ModelError("the DPU subgraph has %d inputs; the agent feeds exactly one" % len(inputs))
        if not outputs:
            raise ModelError("the DPU subgraph has no outputs")
        self.in_tensor = inputs[0]
        self.out_tensors = list(outputs)
        dims = tuple(int(d) for d in self.in_tensor.dims)
        if len(dims) != 4:
            raise ModelError("the DPU input is %d-D %s; the agent feeds NHWC images" % (len(dims), dims))
        self.in_scale = 2.0 ** int(self.in_tensor.get_attr("fix_point"))
        self.out_scales = [2.0 ** -int(t.get_attr("fix_point")) for t in self.out_tensors]
        self._inputs = [np.empty(dims, dtype=np.int8, order="C")]
        self._outputs = [
            np.empty(tuple(int(d) for d in t.dims), dtype=np.int8, order="C") for t in self.out_tensors
        ]

    @property
    def input_shape(self):
        n, h, w, c = (int(d) for d in self.in_tensor.dims)
        return (n, c, h, w)  # what the harness feeds: NCHW

    @property
    def input_dtype(self):
        return np.dtype(np.float32)

    def quantize(self, batch):
        """NCHW float -> NHWC int8 at the input tensor's fix point."""
        nhwc = np.transpose(np.asarray(batch, dtype=np.float32), (0, 2, 3, 1))
        return np.clip(np.round(nhwc * self.in_scale), -128, 127).astype(np.int8)

    def predict(self, batch):
        self._inputs[0][...] = self.quantize(batch)
        try:
            job_id = self.runner.execute_async(self._inputs, self._outputs)
            self.runner.wait(job_id)
        except Exception as exc:
            raise ModelError("the DPU failed to run the model: %s: %s" % (type(exc).__name__, exc)) from exc
        return self._outputs[0].astype(np.float32) * np.float32(self.out_scales[0])

    def versions(self):
        out = {
            "runtime": self.runtime,
            "runtime_version": getattr(self._vart, "__version__", None),
            "runtime_providers": ["DPU"],
            "xir_version": getattr(self._xir, "__version__", None),
            "model_dpu_fingerprint": self._model_fingerprint,
        }
        if self.subgraph is not None:
            out["dpu_subgraph"] = self.subgraph.get_name()
        query = xdputil_query()
        if query is not None:
            out["dpu_fingerprint"] = _fingerprint(find_key(query, "fingerprint"))
            out["dpu_arch"] = find_key(query, "DPU Arch")
            out["dpu_frequency_mhz"] = find_key(query, "DPU Frequency (MHz)")
        return out

    def close(self):
        self.runner = None
        self.graph = None
