"""Backend registry. Each backend lives in its own module and is imported only when asked for,
so a board without, say, VART can still run the ONNX Runtime backend."""

from __future__ import annotations

import importlib

from .base import Backend, InfraError, ModelError, resolve_shape

#: name -> "module:Class" (module relative to this package).
BACKENDS = {
    "onnxruntime_cpu": "onnxruntime_cpu:OnnxRuntimeCpuBackend",
}

__all__ = ["BACKENDS", "Backend", "InfraError", "ModelError", "available", "create", "resolve_shape"]


def available():
    """Sorted names of the registered backends."""
    return sorted(BACKENDS)


def create(name):
    """A new, unloaded backend instance. Unknown names and missing runtimes are :class:`InfraError`."""
    if name not in BACKENDS:
        raise InfraError("unknown backend %r; available backends: %s" % (name, ", ".join(available())))
    module_name, _, class_name = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module("." + module_name, __name__)
    except ImportError as exc:
        raise InfraError("backend %r cannot be imported: %s" % (name, exc)) from exc
    return getattr(module, class_name)()
