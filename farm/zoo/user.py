"""User models: ONNX files (validated, batch dimension fixed) and PyTorch classes exported to ONNX."""

from __future__ import annotations

import importlib
import inspect
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from farm.errors import ModelError

_TWO_GB = 2**31 - 1
_TARGET_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@dataclass(frozen=True)
class OnnxInfo:
    """What farm needs to know about a user ONNX file before anything is enqueued."""

    path: Path
    input_name: str
    input_shape: tuple[int | None, ...]  # None for a symbolic/unknown dimension (only the batch may be)
    output_names: tuple[str, ...]

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the model, or None when the batch dimension is dynamic."""
        return self.input_shape[0]

    def check_batch_size(self, batch_size: int) -> None:
        """Raises ModelError when the model cannot run ``batch_size`` (its batch dimension is fixed)."""
        _check_batch(self.path, self.input_name, self.fixed_batch, batch_size)


def _check_batch(path: Path, input_name: str, fixed: int | None, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ModelError(f"batch size must be a positive integer, got {batch_size!r}")
    if fixed is not None and fixed != batch_size:
        raise ModelError(
            f"{path}: input '{input_name}' has fixed batch size {fixed} and cannot run batch size "
            f"{batch_size}; export the model with a dynamic batch dimension (or use batch size {fixed})"
        )


def _load(path: Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError, missing external data, ...
        raise ModelError(f"{path}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelError(f"{path}: not a valid ONNX model (no graph or an empty graph)")
    try:
        if model.ByteSize() > _TWO_GB:
            onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(model)
    except Exception as e:
        raise ModelError(f"{path}: the ONNX checker rejected the model: {e}") from None
    return model


def _graph_input(path: Path, model: onnx.ModelProto) -> onnx.ValueInfoProto:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise ModelError(f"{path}: farm needs exactly one graph input, the model has {len(inputs)} ({names})")
    inp = inputs[0]
    if inp.type.WhichOneof("value") != "tensor_type":
        raise ModelError(f"{path}: input '{inp.name}' is not a tensor")
    tt = inp.type.tensor_type
    if tt.elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(tt.elem_type)
        raise ModelError(f"{path}: input '{inp.name}' is {dtype}; farm feeds float32 inputs")
    if not tt.HasField("shape") or len(tt.shape.dim) == 0:
        raise ModelError(f"{path}: input '{inp.name}' has no shape (or is a scalar); farm needs fixed shapes")
    return inp


def _input_shape(path: Path, inp: onnx.ValueInfoProto) -> tuple[int | None, ...]:
    shape: list[int | None] = []
    for i, d in enumerate(inp.type.tensor_type.shape.dim):
        fixed = d.HasField("dim_value") and d.dim_value > 0
        if not fixed and i > 0:
            label = d.dim_param if d.HasField("dim_param") and d.dim_param else "?"
            raise ModelError(
                f"{path}: input '{inp.name}' has dynamic dimension {i} ('{label}'); farm needs fixed shapes: "
                "re-export the model with fixed input dimensions (only dimension 0, the batch, may be dynamic)"
            )
        shape.append(int(d.dim_value) if fixed else None)
    return tuple(shape)


def inspect_onnx_file(path: Path) -> OnnxInfo:
    """Validates an ONNX file and describes its input and outputs (no batch size needed).

    Raises ModelError when the file is missing, not ONNX, rejected by the checker, has more or fewer than
    one input, a non-float32 input, or a dynamic dimension other than the batch.
    """
    path = Path(path)
    model = _load(path)
    inp = _graph_input(path, model)
    return OnnxInfo(
        path=path,
        input_name=inp.name,
        input_shape=_input_shape(path, inp),
        output_names=tuple(o.name for o in model.graph.output),
    )


def load_onnx_file(path: Path, batch_size: int) -> onnx.ModelProto:
    """Loads and validates a user ONNX file and returns it with every input dimension fixed.

    A dynamic batch dimension (dimension 0) is set to ``batch_size``, as is a dynamic dimension 0 of each
    output; shapes inside the graph are then re-inferred. Raises ModelError as ``inspect_onnx_file`` does,
    and when the model's batch dimension is fixed to a different size.
    """
    path = Path(path)
    model = _load(path)
    inp = _graph_input(path, model)
    shape = _input_shape(path, inp)
    _check_batch(path, inp.name, shape[0], batch_size)
    if shape[0] is not None:
        return model

    dim0 = inp.type.tensor_type.shape.dim[0]
    dim0.Clear()
    dim0.dim_value = batch_size
    for out in model.graph.output:
        tt = out.type.tensor_type
        if tt.HasField("shape") and len(tt.shape.dim) > 0:
            d = tt.shape.dim[0]
            if not (d.HasField("dim_value") and d.dim_value > 0):
                d.Clear()
                d.dim_value = batch_size
    del model.graph.value_info[:]  # stale symbolic shapes; re-inferred below
    try:
        if model.ByteSize() <= _TWO_GB:
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:
        raise ModelError(f"{path}: shape inference failed with batch size {batch_size}: {e}") from None
    return model


def _accepts_kwarg(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def export_torch_model(
    target: str, checkpoint: Path | None, input_shape: tuple[int, ...], batch_size: int
) -> onnx.ModelProto:
    """Instantiates ``target`` ("package.module:ClassName", no constructor arguments) and exports it to ONNX.

    ``input_shape`` is the per-sample shape (without the batch dimension); the exported model has the fixed
    input shape ``(batch_size, *input_shape)``, input "input" and output "logits", opset 17. ``checkpoint``
    is an optional state_dict file (``torch.save(model.state_dict(), path)``, or a dict holding it under
    "state_dict" / "model_state_dict"), loaded strictly. Without a checkpoint the weights come from the
    class's own initialisation after ``torch.manual_seed(0)``. torch is imported lazily.
    """
    if not isinstance(target, str) or not _TARGET_RE.match(target.strip()):
        raise ModelError(f"bad PyTorch model target {target!r}: expected 'package.module:ClassName'")
    module_name, class_name = target.strip().split(":", 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ModelError(f"batch size must be a positive integer, got {batch_size!r}")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ModelError(f"{target}: input shape must be positive integers, got {input_shape!r}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ModelError(f"{target}: checkpoint file not found: {checkpoint}")

    try:
        import torch
    except ImportError:
        raise ModelError("PyTorch models need the torch extra: pip install -e '.[torch]'") from None

    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ModelError(f"{target}: cannot import module '{module_name}': {type(e).__name__}: {e}") from None
    obj = module
    for part in class_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ModelError(f"{target}: module '{module_name}' has no attribute '{class_name}'")
    torch.manual_seed(0)
    try:
        model = obj()
    except Exception as e:
        raise ModelError(f"{target}: cannot instantiate {class_name}(): {type(e).__name__}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"{target}: {class_name}() is a {type(model).__name__}, not a torch.nn.Module")

    if checkpoint is not None:
        try:
            state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelError(
                f"{target}: cannot load checkpoint {checkpoint}: {type(e).__name__}: {e}"
            ) from None
        if isinstance(state, dict):
            for key in ("state_dict", "model_state_dict"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not isinstance(state, dict):
            raise ModelError(f"{target}: checkpoint {checkpoint} does not hold a state_dict")
        try:
            model.load_state_dict(state, strict=True)
        except Exception as e:
            raise ModelError(f"{target}: checkpoint {checkpoint} does not match the model: {e}") from None

    model.eval()
    dummy = torch.randn(batch_size, *shape, generator=torch.Generator().manual_seed(0))
    kwargs = {"opset_version": 17, "input_names": ["input"], "output_names": ["logits"]}
    if _accepts_kwarg(torch.onnx.export, "dynamo"):
        kwargs["dynamo"] = False
    with tempfile.TemporaryDirectory(prefix="farm-export-") as tmp:
        out = Path(tmp) / "model.onnx"
        try:
            with torch.no_grad():
                torch.onnx.export(model, (dummy,), str(out), **kwargs)
            exported = onnx.load(str(out))
            onnx.checker.check_model(exported)
        except Exception as e:
            raise ModelError(f"{target}: ONNX export failed: {type(e).__name__}: {e}") from None
    return exported
