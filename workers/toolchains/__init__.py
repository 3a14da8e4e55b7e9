"""Toolchains turn ONNX models into artifacts a worker can run (one module per target)."""

from farm.workers.toolchains.base import CompileResult, QuantConfig, Toolchain

__all__ = ["CompileResult", "QuantConfig", "Toolchain"]
