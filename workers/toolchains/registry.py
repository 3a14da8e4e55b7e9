"""Toolchains by catalog name (inventory/board-types.yaml `toolchain:`), imported lazily.

A toolchain class with ``per_target = True`` compiles for one board type (the DPU and GPU emulators read
the board's accelerator, memory and host CPU from the catalog; Vitis AI picks the board's arch.json). It is
named ``"name@board_type"`` (e.g. ``dpu_emulator@zcu104``): :func:`toolchain_for_target` gives the name a
compile job uses, and :func:`get_toolchain` builds the instance for that target.
"""

from __future__ import annotations

import importlib

from farm.workers.toolchains.base import Toolchain

TOOLCHAINS: dict[str, str] = {
    "onnxruntime_cpu": "farm.workers.toolchains.onnxruntime_cpu:OnnxRuntimeCpuToolchain",
    "onnxruntime_gpu": "farm.workers.toolchains.onnxruntime_gpu:OnnxRuntimeGpuToolchain",
    "dpu_emulator": "farm.workers.toolchains.dpu_emulator:DpuEmulatorToolchain",
    "gpu_emulator": "farm.workers.toolchains.gpu_emulator:GpuEmulatorToolchain",
    "cpu_emulator": "farm.workers.toolchains.cpu_emulator:CpuEmulatorToolchain",
    "vitis_ai": "farm.workers.toolchains.vitis_ai:VitisAiToolchain",
}


def _class(name: str) -> type[Toolchain]:
    if name not in TOOLCHAINS:
        raise KeyError(f"unknown toolchain {name!r}; known: {', '.join(sorted(TOOLCHAINS))}")
    module, cls = TOOLCHAINS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def is_per_target(name: str) -> bool:
    return bool(getattr(_class(name.partition("@")[0]), "per_target", False))


def toolchain_for_target(name: str, target: str) -> str:
    """The name a compile job for board type ``target`` uses: ``name@target`` for per-target toolchains
    (an unknown name is returned as it is: get_toolchain reports it where it is used)."""
    try:
        per_target = is_per_target(name)
    except KeyError:
        return name
    return f"{name}@{target}" if per_target else name


def get_toolchain(name: str) -> Toolchain:
    base, sep, target = name.partition("@")
    cls = _class(base)
    if getattr(cls, "per_target", False):
        return cls(target) if sep else cls()  # type: ignore[call-arg]
    if sep:
        raise KeyError(f"toolchain {base!r} is not per-target: {name!r} names a target it does not take")
    return cls()
