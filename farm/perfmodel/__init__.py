"""The emulated DPU compiler and its calibrated performance model (docs/dpu-model.md).

``graph`` analyses an ONNX model per layer, ``configs`` parses DPU strings, ``rules`` and ``partition``
decide what runs on the DPU, ``perf`` prices it on a ``target`` board, ``calibration`` holds the parameters
fitted on the published Vitis AI Model Zoo figures, ``gpu`` is the GPU roofline. Entry points: ``api``.
"""

from farm.perfmodel.api import plan_model, predict, predict_board, zoo_graph
from farm.perfmodel.configs import DpuConfig, parse_dpu
from farm.perfmodel.perf import MODEL_VERSION, Prediction, predict_plan
from farm.perfmodel.target import DpuTarget, dpu_target

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
