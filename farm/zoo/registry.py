"""The built-in model zoo: names, input shapes and deterministic ONNX builders."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import onnx

from farm.errors import ModelError
from farm.zoo import googlenet, inception, mobilenet, resnet, squeezenet, vgg
from farm.zoo.builder import GraphBuilder


@dataclass(frozen=True)
class ZooModel:
    name: str  # canonical name
    input_shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    builder: Callable[[int], onnx.ModelProto]  # batch_size -> model
    version: str  # bump when the graph or the weights change


def _build(
    family: Callable[[GraphBuilder, int], str],
    name: str,
    version: str,
    seed: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
    batch_size: int,
) -> onnx.ModelProto:
    b = GraphBuilder(seed, batch_size, input_shape)
    out = family(b, num_classes)
    return b.finish(out, num_classes, name, version)


def _zoo_model(name, family, seed, input_shape=(3, 224, 224), num_classes=1000, version="1") -> ZooModel:
    builder = functools.partial(_build, family, name, version, seed, input_shape, num_classes)
    return ZooModel(name, input_shape, num_classes, builder, version)


_MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        _zoo_model("resnet18", resnet.resnet18, seed=18),
        _zoo_model("resnet50", resnet.resnet50, seed=50),
        _zoo_model("mobilenet_v2", mobilenet.mobilenet_v2, seed=2),
        _zoo_model("squeezenet1_1", squeezenet.squeezenet1_1, seed=11),
        _zoo_model("googlenet", googlenet.googlenet, seed=1),
        _zoo_model("inception_v3", inception.inception_v3, seed=3, input_shape=(3, 299, 299)),
        # Architectures of the Vitis AI Model Zoo tables (the DPU model's validation set), at the zoo's inputs.
        _zoo_model("resnet101", resnet.resnet101, seed=101),
        _zoo_model("resnet152", resnet.resnet152, seed=152),
        _zoo_model("resnet50_v2", resnet.resnet50_v2, seed=250, input_shape=(3, 299, 299)),
        _zoo_model("resnet101_v2", resnet.resnet101_v2, seed=2101, input_shape=(3, 299, 299)),
        _zoo_model("resnet152_v2", resnet.resnet152_v2, seed=2152, input_shape=(3, 299, 299)),
        _zoo_model("vgg16", vgg.vgg16, seed=16),
        _zoo_model("vgg19", vgg.vgg19, seed=19),
        _zoo_model("mobilenet_v1", mobilenet.mobilenet_v1, seed=1001),
        _zoo_model("mobilenet_v1_0.5", mobilenet.mobilenet_v1_050, seed=1005, input_shape=(3, 160, 160)),
        _zoo_model("mobilenet_v1_0.25", mobilenet.mobilenet_v1_025, seed=1025, input_shape=(3, 128, 128)),
        _zoo_model("mobilenet_v2_1.4", mobilenet.mobilenet_v2_140, seed=214),
        # Trained (numpy, in code) on the procedural shapes set: accuracy figures mean something for it.
        ZooModel("shapes_net", (3, 32, 32), 8, lambda batch: _shapes_net(batch), "1"),
    )
}
_ALIASES: dict[str, str] = {"inception_v1": "googlenet"}


def _shapes_net(batch_size: int) -> onnx.ModelProto:
    from farm.datasets.train import build_shapes_net  # trains on first use (seconds), cached on disk

    return build_shapes_net(batch_size)


def zoo_names() -> list[str]:
    """Canonical names and aliases, sorted."""
    return sorted([*_MODELS, *_ALIASES])


def get_zoo_model(name: str) -> ZooModel:
    """The zoo entry for ``name`` (a canonical name or an alias; case and '-' vs '_' do not matter)."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    try:
        return _MODELS[key]
    except KeyError:
        raise ModelError(f"unknown zoo model {name!r}; valid names: {', '.join(zoo_names())}") from None


def build_zoo_model(name: str, batch_size: int) -> onnx.ModelProto:
    """Builds the ONNX model (input "input" [batch, C, H, W], output "logits" [batch, classes])."""
    model = get_zoo_model(name)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ModelError(f"batch size must be a positive integer, got {batch_size!r}")
    return model.builder(batch_size)
