"""Toolchains by catalog name (inventory/board-types.yaml `toolchain:`), imported lazily."""

from __future__ import annotations

import importlib

from workers.toolchains.base import Toolchain

TOOLCHAINS: dict[str, str] = {
    "onnxruntime_cpu": "workers.toolchains.onnxruntime_cpu:OnnxRuntimeCpuToolchain",
}


def get_toolchain(name: str) -> Toolchain:
    if name not in TOOLCHAINS:
        raise KeyError(f"unknown toolchain {name!r}; known: {', '.join(sorted(TOOLCHAINS))}")
    module, cls = TOOLCHAINS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
