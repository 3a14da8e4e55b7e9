"""Models for farm: the built-in zoo (built in code, no torch), user ONNX files and PyTorch exports."""

from farm.zoo.builder import count_macs
from farm.zoo.inputs import synthetic_inputs
from farm.zoo.registry import ZooModel, build_zoo_model, get_zoo_model, zoo_names
from farm.zoo.user import OnnxInfo, export_torch_model, inspect_onnx_file, load_onnx_file

__all__ = [
    "OnnxInfo",
    "ZooModel",
    "build_zoo_model",
    "count_macs",
    "export_torch_model",
    "get_zoo_model",
    "inspect_onnx_file",
    "load_onnx_file",
    "synthetic_inputs",
    "zoo_names",
]
