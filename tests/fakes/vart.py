"""FAKE ``vart`` (Vitis AI Runtime Python bindings), for tests only.

``vart.Runner.create_runner(subgraph, "run")`` returns a runner with the real methods the agent uses:
``get_input_tensors()``, ``get_output_tensors()``, ``execute_async(inputs, outputs)`` -> ``(job_id, status)``
(as the pybind11 binding returns it) and ``wait(job)`` -> status. Buffers must be C-contiguous int8
numpy arrays of the tensors' dims, as with the real runner.

The "DPU" computes the subgraph's ``kernel`` on the int8 data (fix-point aware):

* ``copy``: output = input, re-scaled from the input's to the output's fix point;
* ``mean_hw``: output[n, c] = mean over H and W of input[n, h, w, c], re-scaled.

``FAKE["create_fails"]`` makes ``create_runner`` raise like a board without a DPU; ``FAKE["calls"]``
counts ``execute_async`` calls.
"""

from __future__ import annotations

import itertools

import numpy as np

__version__ = "0.0-fake"
FAKE = {"create_fails": None, "calls": 0}


class _Runner:
    def __init__(self, subgraph, mode):
        if mode != "run":
            raise ValueError(f"unknown runner mode {mode!r}")
        if FAKE["create_fails"]:
            raise RuntimeError(FAKE["create_fails"])
        if str(subgraph.get_attr("device")).upper() != "DPU":
            raise RuntimeError(f"subgraph {subgraph.get_name()} is not a DPU subgraph")
        self.subgraph = subgraph
        self.kernel = subgraph.get_attr("kernel") if subgraph.has_attr("kernel") else "copy"
        self._jobs = itertools.count(1)
        self._done = {}

    def get_input_tensors(self):
        return list(self.subgraph.inputs)

    def get_output_tensors(self):
        return list(self.subgraph.outputs)

    @staticmethod
    def _check(buffers, tensors, what):
        if len(buffers) != len(tensors):
            raise ValueError(f"{len(buffers)} {what} buffers for {len(tensors)} tensors")
        for buf, tensor in zip(buffers, tensors, strict=False):
            if not isinstance(buf, np.ndarray) or buf.dtype != np.int8 or not buf.flags["C_CONTIGUOUS"]:
                raise ValueError(f"{what} buffer for {tensor.name} must be a C-contiguous int8 array")
            if list(buf.shape) != list(tensor.dims):
                raise ValueError(f"{what} buffer shape {buf.shape} != tensor dims {tensor.dims}")

    def execute_async(self, inputs, outputs):
        self._check(inputs, self.subgraph.inputs, "input")
        self._check(outputs, self.subgraph.outputs, "output")
        FAKE["calls"] += 1
        x = inputs[0].astype(np.float64) * 2.0 ** -self.subgraph.inputs[0].get_attr("fix_point")
        y = x.mean(axis=(1, 2)) if self.kernel == "mean_hw" else x
        out_fp = self.subgraph.outputs[0].get_attr("fix_point")
        outputs[0][...] = (
            np.clip(np.round(y * 2.0**out_fp), -128, 127).astype(np.int8).reshape(outputs[0].shape)
        )
        job = next(self._jobs)
        self._done[job] = 0
        return (job, 0)

    def wait(self, job):
        job_id = job[0] if isinstance(job, tuple) else job
        if job_id not in self._done:
            raise ValueError(f"unknown job {job!r}")
        return self._done.pop(job_id)


class Runner:
    @staticmethod
    def create_runner(subgraph, mode="run"):
        return _Runner(subgraph, mode)
