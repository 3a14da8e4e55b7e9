"""ONNX Runtime on the CPU (CPUExecutionProvider), full graph optimisation."""

from __future__ import annotations

import numpy as np

from .base import Backend, InfraError, ModelError

# ONNX Runtime input type strings -> numpy dtypes.
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class OnnxRuntimeCpuBackend(Backend):
    name = "onnxruntime_cpu"
    runtime = "onnxruntime"
    provider = "CPUExecutionProvider"

    def __init__(self):
        try:
            import onnxruntime
        except ImportError as exc:
            raise InfraError("onnxruntime is not installed on this machine: %s" % exc) from exc
        self._ort = onnxruntime
        self.session = None
        self.input_name = None
        self.output_names = None
        self._input_shape = None
        self._input_dtype = None

    def session_providers(self, artifact_path):
        """The ``providers`` argument of the session (names, or (name, options) pairs)."""
        return [self.provider]

    def load(self, artifact_path, threads=None):
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only; the agent reports failures itself
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = self.session_providers(artifact_path)  # an InfraError here is not the model's fault
        try:
            session = ort.InferenceSession(artifact_path, sess_options=options, providers=providers)
        except Exception as exc:  # InvalidGraph, NotImplemented, Fail, InvalidProtobuf, ...
            raise ModelError("onnxruntime cannot load the model: %s: %s" % (type(exc).__name__, exc)) from exc
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError("model has %d inputs; the agent feeds exactly one" % len(inputs))
        dtype = _ORT_DTYPES.get(inputs[0].type)
        if dtype is None:
            raise ModelError("unsupported model input type %s" % inputs[0].type)
        self.session = session
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self._input_shape = tuple(d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape)
        self._input_dtype = np.dtype(dtype)

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def input_dtype(self):
        return self._input_dtype

    def predict(self, batch):
        try:
            return self.session.run(self.output_names, {self.input_name: batch})[0]
        except Exception as exc:
            raise ModelError(
                "onnxruntime failed to run the model: %s: %s" % (type(exc).__name__, exc)
            ) from exc

    def versions(self):
        ort = self._ort
        return {
            "runtime": self.runtime,
            "runtime_version": getattr(ort, "__version__", None),
            "runtime_providers": list(ort.get_available_providers()),
            "session_providers": list(self.session.get_providers()) if self.session is not None else [],
        }

    def close(self):
        self.session = None
