"""The entry points others use: plan and predict a model for a board, by name or by configuration.

``plan_model(model, target)`` -> Plan; ``predict(model, target)`` -> Prediction;
``predict_board(model, board, dpu=None, cores=None, clock_mhz=None)`` does the catalog look-up too.
``model`` is an ``onnx.ModelProto``, a zoo model name, or a path to an ``.onnx`` file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import onnx

from farm.errors import ModelError
from farm.perfmodel.graph import Graph, analyse
from farm.perfmodel.params import Params
from farm.perfmodel.partition import Plan, check_memory, plan
from farm.perfmodel.perf import Prediction, predict_plan
from farm.perfmodel.target import DpuTarget, dpu_target


def resize_input(model: onnx.ModelProto, h: int, w: int) -> onnx.ModelProto:
    """``model`` with its input's spatial size set to ``h`` x ``w`` and the other shapes cleared (fully
    convolutional CNNs with a global pool before the classifier take any size)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name for i in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in inits)
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ModelError("--input HxW needs a 4-D (NCHW) model input")
    dims[2].dim_value, dims[3].dim_value = int(h), int(w)
    del m.graph.value_info[:]
    return m


def load_model(model: onnx.ModelProto | str | Path, batch_size: int = 1) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    text = str(model)
    if text.endswith(".onnx") or Path(text).is_file():
        from farm.zoo.user import load_onnx_file

        return load_onnx_file(Path(text), batch_size)
    from farm.zoo.registry import build_zoo_model

    return build_zoo_model(text, batch_size)


@functools.lru_cache(maxsize=32)
def zoo_graph(name: str, batch_size: int = 1, input_hw: tuple[int, int] | None = None) -> Graph:
    """The analysed graph of a zoo model (cached: building resnet50's weights takes seconds)."""
    from farm.zoo.registry import build_zoo_model, get_zoo_model

    zm = get_zoo_model(name)
    m = build_zoo_model(zm.name, batch_size)
    if input_hw and tuple(input_hw) != tuple(zm.input_shape[1:]):
        m = resize_input(m, *input_hw)
    return analyse(m)


def plan_model(model: onnx.ModelProto, target: DpuTarget, *, check_fit: bool = True) -> Plan:
    """Partition ``model`` for ``target``; ModelError when it cannot fit the board's memory."""
    p = plan(analyse(model), target.dpu)
    if check_fit:
        check_memory(
            p, target.usable_bytes, target.cores * target.dpu.engines, f"{target.board} ({target.arch})"
        )
    return p


def predict(
    model: onnx.ModelProto, target: DpuTarget, params: Params | None = None
) -> tuple[Plan, Prediction]:
    p = plan_model(model, target)
    return p, predict_plan(p, target, params)


def predict_board(
    model: onnx.ModelProto | str | Path,
    board: str,
    *,
    dpu: str | None = None,
    cores: int | None = None,
    clock_mhz: float | None = None,
    input_hw: tuple[int, int] | None = None,
    batch_size: int = 1,
) -> tuple[Plan, Prediction]:
    target = dpu_target(board, dpu=dpu, cores=cores, clock_mhz=clock_mhz)
    m = load_model(model, batch_size)
    if input_hw:
        m = resize_input(m, *input_hw)
    return predict(m, target)
