"""The farm's compile image by name: what the in-farm toolchains declare as their ``container_image``.

One image holds every toolchain that is farm code (ONNX Runtime INT8/FP32 and the DPU, GPU and ARM CPU
emulators). Its tag is the ONNX Runtime version, the dependency that decides what those toolchains produce
(the workers' own version must match for artifact keys to agree). Standard library only: the toolchain
code imports it inside the image too.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["COMPILE_IMAGE_REPOSITORY", "compile_image"]

COMPILE_IMAGE_REPOSITORY = "farm/compile"


def compile_image() -> str:
    """``farm/compile:<onnxruntime version>``."""
    return f"{COMPILE_IMAGE_REPOSITORY}:{metadata.version('onnxruntime')}"
