"""Backend registry. Each backend lives in its own module and is imported only when asked for,
so a board without, say, VART can still run the ONNX Runtime backend."""

from __future__ import annotations

import contextlib
import importlib

from .base import Backend, InfraError, ModelError, resolve_shape

#: name -> "module:Class" (module relative to this package).
BACKENDS = {
    "onnxruntime_cpu": "onnxruntime_cpu:OnnxRuntimeCpuBackend",
    "onnxruntime_gpu": "onnxruntime_gpu:OnnxRuntimeGpuBackend",
    "torch_cuda": "torch_cuda:TorchCudaBackend",
    "vart_dpu": "vart_dpu:VartDpuBackend",
    "emulated": "emulated:EmulatedBackend",
}

__all__ = ["BACKENDS", "Backend", "InfraError", "ModelError", "available", "create", "resolve_shape"]


def available():
    """Sorted names of the registered backends."""
    return sorted(BACKENDS)


def create(name):
    """A new, unloaded backend instance. Unknown names and missing runtimes are :class:`InfraError`."""
    if name not in BACKENDS:
        raise InfraError("unknown backend %r; available backends: %s" % (name, ", ".join(available())))
    try:
        return _construct(name)
    except InfraError as exc:
        usable = [other for other in available() if other != name and _usable(other)]
        raise InfraError(
            "backend %r cannot run on this board: %s; available backends: %s"
            % (name, exc, ", ".join(usable) or "none")
        ) from exc


def _construct(name):
    module_name, _, class_name = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module("." + module_name, __name__)
    except ImportError as exc:
        raise InfraError("backend %r cannot be imported: %s" % (name, exc)) from exc
    return getattr(module, class_name)()


def _usable(name):
    """Whether the backend's runtime imports here (its constructor succeeds)."""
    try:
        backend = _construct(name)
    except Exception:
        return False
    with contextlib.suppress(Exception):
        backend.close()
    return True
