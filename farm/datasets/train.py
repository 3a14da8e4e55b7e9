"""``shapes_net``: a small convolutional classifier trained on the shapes set (farm/datasets/shapes.py) with
plain numpy, deterministically, in a few seconds, and exported as a fixed-shape ONNX model.

Architecture (NCHW, 3x32x32 in, 8 logits out)::

    Conv 5x5/2 (3->12) ReLU -> Conv 3x3/2 (12->24) ReLU -> Conv 3x3/1 (24->24) ReLU
    -> GlobalAveragePool -> Flatten -> Gemm (24->8)

Every op is one a DPU runs (the emulated DPU targets plan it fully on the DPU). Inputs are preprocessed
like torchvision's ImageNet models: RGB, pixel / 255, minus mean (0.485, 0.456, 0.406), divided by std
(0.229, 0.224, 0.225), so a sweep's default preprocessing fits it.

Training: mini-batch SGD with momentum (0.9), cross-entropy, He-normal initial weights from a fixed seed,
a fixed shuffling order, float32 arithmetic, BLAS on one thread. The same machine gives the same weights every time; the
weights are cached on disk and per process (:func:`trained_weights`): every compile job builds the model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from farm.datasets.shapes import CLASSES, HELDOUT_SEED_OFFSET, IMAGE_SIZE, generate

MEAN = np.array((0.485, 0.456, 0.406), dtype=np.float32)
STD = np.array((0.229, 0.224, 0.225), dtype=np.float32)
TRAIN_PER_CLASS = 200
HELDOUT_PER_CLASS = 50
EPOCHS = 12
BATCH = 50
LR = 0.05
MOMENTUM = 0.9
SEED = 7
VERSION = "1"
#: (out channels, kernel, stride, pad) of the three convolutions.
CONVS = ((12, 5, 2, 2), (24, 3, 2, 1), (24, 3, 1, 1))


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W), ImageNet-normalised."""
    x = images.astype(np.float32) / np.float32(255.0)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- layers (numpy)


def _cols(x: np.ndarray, k: int, s: int, p: int) -> tuple[np.ndarray, int, int]:
    """im2col: (N, C, H, W) -> (N, C*k*k, OH*OW)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i : i + s * oh : s, j : j + s * ow : s]
    return cols.reshape(n, c * k * k, oh * ow), oh, ow


def _uncols(dcols: np.ndarray, shape: tuple, k: int, s: int, p: int, oh: int, ow: int) -> np.ndarray:
    n, c, h, w = shape
    dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dcols.dtype)
    d = dcols.reshape(n, c, k, k, oh, ow)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + s * oh : s, j : j + s * ow : s] += d[:, :, i, j]
    return dxp[:, :, p : p + h, p : p + w]


@dataclass
class Weights:
    convs: list[tuple[np.ndarray, np.ndarray]]  # (W (Co, Ci, k, k), b (Co,))
    fc: tuple[np.ndarray, np.ndarray]  # (W (classes, C), b (classes,))


def _init(rng: np.random.Generator) -> Weights:
    convs, cin = [], 3
    for cout, k, _, _ in CONVS:
        std = np.sqrt(2.0 / (cin * k * k))
        convs.append(
            (
                (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32),
                np.zeros(cout, dtype=np.float32),
            )
        )
        cin = cout
    fc_w = (rng.standard_normal((len(CLASSES), cin)) * np.sqrt(1.0 / cin)).astype(np.float32)
    return Weights(convs, (fc_w, np.zeros(len(CLASSES), dtype=np.float32)))


def forward(weights: Weights, x: np.ndarray, keep: bool = False):
    """Logits (N, classes); with ``keep``, also what the backward pass needs."""
    cache = []
    h = x
    for (w, b), (cout, k, s, p) in zip(weights.convs, CONVS, strict=True):
        cols, oh, ow = _cols(h, k, s, p)
        z = np.matmul(w.reshape(cout, -1), cols) + b[:, None]
        a = np.maximum(z, 0.0).reshape(h.shape[0], cout, oh, ow)
        cache.append((h.shape, cols, z, oh, ow))
        h = a
    pooled = h.mean(axis=(2, 3))
    logits = pooled @ weights.fc[0].T + weights.fc[1]
    return (logits, (cache, h, pooled)) if keep else logits


def _step(weights: Weights, velocity: Weights, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    logits, (cache, last, pooled) = forward(weights, x, keep=True)
    n = x.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = float(-np.log(probs[np.arange(n), y] + 1e-12).mean())
    dlogits = probs
    dlogits[np.arange(n), y] -= 1.0
    dlogits /= n
    grads_fc = (dlogits.T @ pooled, dlogits.sum(axis=0))
    dpooled = dlogits @ weights.fc[0]
    dh = np.broadcast_to(dpooled[:, :, None, None] / (last.shape[2] * last.shape[3]), last.shape)
    grads_conv = [None] * len(CONVS)
    for idx in range(len(CONVS) - 1, -1, -1):
        (w, _), (cout, k, s, p) = weights.convs[idx], CONVS[idx]
        shape, cols, z, oh, ow = cache[idx]
        dz = dh.reshape(n, cout, oh * ow) * (z > 0)
        dw = dz.transpose(1, 0, 2).reshape(cout, -1) @ cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])
        dw = dw.reshape(w.shape)
        grads_conv[idx] = (dw, dz.sum(axis=(0, 2)))
        if idx:
            dcols = np.matmul(w.reshape(cout, -1).T, dz)
            dh = _uncols(dcols, shape, k, s, p, oh, ow)
    pairs = [*zip(weights.convs, velocity.convs, grads_conv, strict=True)]
    pairs.append((weights.fc, velocity.fc, grads_fc))
    for params, vel, grads in pairs:
        for param, v, g in zip(params, vel, grads, strict=True):
            v *= MOMENTUM
            v -= np.float32(lr) * g.astype(np.float32)
            param += v
    return loss


@contextlib.contextmanager
def _single_thread_blas():
    """OpenBLAS on one thread while training: the same summation order every time (deterministic weights),
    and no thread thrashing on a busy machine (13 s instead of ~100 s on 2 loaded cores). Best effort:
    numpy's bundled OpenBLAS is found by its exported setter; without it, training runs as it is."""
    import ctypes
    import glob

    setter = getter = None
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(glob.glob(str(libs / "*openblas*.so*"))):
        with contextlib.suppress(OSError):
            handle = ctypes.CDLL(lib)
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", "_64_", ""):
                    if hasattr(handle, f"{prefix}_set_num_threads{suffix}"):
                        setter = getattr(handle, f"{prefix}_set_num_threads{suffix}")
                        getter = getattr(handle, f"{prefix}_get_num_threads{suffix}", None)
                        break
                if setter:
                    break
        if setter:
            break
    if setter is None:
        yield
        return
    before = getter() if getter else None
    setter(1)
    try:
        yield
    finally:
        if before:
            setter(before)


def train(epochs: int = EPOCHS, per_class: int = TRAIN_PER_CLASS, seed: int = SEED) -> Weights:
    """Trains on ``generate(per_class, seed=0)``; deterministic."""
    with _single_thread_blas():
        return _train(epochs, per_class, seed)


def _train(epochs: int, per_class: int, seed: int) -> Weights:
    images, labels = generate(per_class, seed=0)
    x = preprocess(images)
    rng = np.random.default_rng(seed)
    weights = _init(rng)
    velocity = Weights(
        [(np.zeros_like(w), np.zeros_like(b)) for w, b in weights.convs],
        (np.zeros_like(weights.fc[0]), np.zeros_like(weights.fc[1])),
    )
    for epoch in range(epochs):
        lr = LR * (0.1 if epoch >= epochs - 2 else 1.0)
        order = rng.permutation(len(labels))
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            _step(weights, velocity, x[idx], labels[idx], lr)
    return weights


def _cache_file() -> Path | None:
    """``<farm data dir>/cache/shapes_net/<sha256 of the training code, numpy version>.npz``."""
    try:
        from farm.config import load_settings

        root = load_settings().data_dir / "cache" / "shapes_net"
    except Exception:  # no settings: train every time
        return None
    here = resources.files("farm.datasets")  # the installed sources: a changed trainer is a new cache key
    digest = hashlib.sha256()
    for name in ("train.py", "shapes.py"):
        digest.update(here.joinpath(name).read_bytes())
    digest.update(np.__version__.encode())
    return root / f"{digest.hexdigest()}.npz"


def _save(weights: Weights, path: Path) -> None:
    arrays = {
        f"conv{i}_{k}": a for i, pair in enumerate(weights.convs) for k, a in zip("wb", pair, strict=True)
    }
    arrays.update(fc_w=weights.fc[0], fc_b=weights.fc[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def _load(path: Path) -> Weights:
    with np.load(path) as z:
        convs = [(z[f"conv{i}_w"], z[f"conv{i}_b"]) for i in range(len(CONVS))]
        return Weights(convs, (z["fc_w"], z["fc_b"]))


@functools.lru_cache(maxsize=1)
def trained_weights() -> Weights:
    """The trained weights: trained once per machine (cached under the farm's data dir by the training
    code's hash and the numpy version), then once per process."""
    path = _cache_file()
    if path is not None and path.is_file():
        with contextlib.suppress(Exception):
            return _load(path)
    weights = train()
    if path is not None:
        with contextlib.suppress(OSError):
            _save(weights, path)
    return weights


def heldout_set(per_class: int = HELDOUT_PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """Images never seen in training (another seed): preprocessed inputs and labels."""
    images, labels = generate(per_class, seed=HELDOUT_SEED_OFFSET)
    return preprocess(images), labels


def accuracy(weights: Weights, x: np.ndarray, labels: np.ndarray) -> float:
    return float((forward(weights, x).argmax(axis=1) == labels).mean())


# ----------------------------------------------------------------------------- ONNX export


def export_onnx(weights: Weights, batch_size: int, name: str = "shapes_net") -> onnx.ModelProto:
    """The trained network as an ONNX model: input "input" [batch, 3, 32, 32], output "logits" [batch, 8]."""
    nodes, inits = [], []
    h = "input"
    for i, ((w, b), (_, k, s, p)) in enumerate(zip(weights.convs, CONVS, strict=True)):
        inits += [numpy_helper.from_array(w, f"conv{i}.w"), numpy_helper.from_array(b, f"conv{i}.b")]
        nodes.append(
            helper.make_node(
                "Conv",
                [h, f"conv{i}.w", f"conv{i}.b"],
                [f"conv{i}"],
                name=f"conv{i}",
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[p, p, p, p],
            )
        )
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}"))
        h = f"relu{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1))
    inits += [numpy_helper.from_array(weights.fc[0], "fc.w"), numpy_helper.from_array(weights.fc[1], "fc.b")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch_size, 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch_size, len(CLASSES)])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
        producer_name="farm.datasets",
        producer_version=VERSION,
        doc_string=(
            f"{name} version {VERSION}: trained with numpy on the procedural shapes set "
            f"(farm/datasets/shapes.py; classes {', '.join(CLASSES)}), ImageNet-normalised RGB input."
        ),
    )
    helper.set_model_props(
        model, {"farm.zoo.name": name, "farm.zoo.version": VERSION, "farm.classes": ",".join(CLASSES)}
    )
    return model


def build_shapes_net(batch_size: int) -> onnx.ModelProto:
    """The zoo builder: trains once per process, then exports for ``batch_size``."""
    return export_onnx(trained_weights(), batch_size)
