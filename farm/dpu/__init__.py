"""The emulated DPU compiler and its calibrated performance model (docs/dpu-model.md).

``graph`` analyses an ONNX model per layer, ``configs`` parses DPU strings, ``rules`` and ``partition``
decide what runs on the DPU, ``perf`` prices it on a ``target`` board, ``calibration`` holds the parameters
fitted on the published Vitis AI Model Zoo figures, ``gpu`` is the GPU roofline. Entry points: ``api``.
"""

from farm.dpu.api import plan_model, predict, predict_board, zoo_graph
from farm.dpu.configs import DpuConfig, parse_dpu
from farm.dpu.perf import MODEL_VERSION, Prediction, predict_plan
from farm.dpu.target import DpuTarget, dpu_target

__all__ = [
    "MODEL_VERSION",
    "DpuConfig",
    "DpuTarget",
    "Prediction",
    "dpu_target",
    "parse_dpu",
    "plan_model",
    "predict",
    "predict_board",
    "predict_plan",
    "zoo_graph",
]
