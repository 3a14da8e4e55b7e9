"""A sweep's model as an ONNX graph: from the built-in zoo, a user's ONNX file, or a user's PyTorch module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx

from farm.sweep.schema import ModelRef


def build_model(ref: ModelRef, batch_size: int) -> onnx.ModelProto:
    if ref.zoo:
        from farm.zoo.registry import build_zoo_model

        return build_zoo_model(ref.zoo, batch_size)
    if ref.onnx:
        from farm.zoo.user import load_onnx_file

        return load_onnx_file(Path(ref.onnx), batch_size)
    from farm.zoo.user import export_torch_model

    assert ref.torch and ref.input_shape
    ckpt = Path(ref.checkpoint) if ref.checkpoint else None
    with _on_sys_path(ref.python_path):
        return export_torch_model(ref.torch, ckpt, tuple(ref.input_shape), batch_size)


@contextmanager
def _on_sys_path(folder: str | None) -> Iterator[None]:
    """The user's torch module is imported from the sweep's folder (or python_path), then forgotten, so a
    long-running worker exports the module as it is now, not as it was at the first sweep."""
    if not folder:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(folder + "/"):
                del sys.modules[name]


def input_shape(model: onnx.ModelProto) -> list[int]:
    inits = {i.name for i in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in inits)
    return [d.dim_value for d in inp.type.tensor_type.shape.dim]
