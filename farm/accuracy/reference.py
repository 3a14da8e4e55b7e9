"""FP32 reference outputs for INT8 agreement: the inputs an INT8 run will feed (the agent's own generator,
same shape, count and seed), run through the FP32 model with ONNX Runtime on this machine, once per content
key, packed as ``.npz`` for the board (docs/accuracy.md).

The pack holds, per distinct input batch, the sha256 of its bytes (the agent matches the run's batches by
it, so a change in how the agent makes inputs shows up as "unmatched", never as a wrong figure), the FP32
top-1 per image and the FP32 outputs (for SQNR).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from farm.artifacts import sha256_file
from farm.datasets.imagefolder import save_npz_entry
from farm.workers.agent.images import make_batches

REFERENCE_FORMAT = 1
REFERENCE_FILE = "reference.npz"


def run_inputs(shape: list[int], count: int, seed: int) -> list[np.ndarray]:
    """The distinct input batches of a run (float32 ``shape``, ``count`` samples, ``seed``), in order."""
    batches = make_batches(tuple(int(d) for d in shape), np.float32, int(count), int(seed))
    seen, distinct = set(), []
    for b in batches:
        if id(b) not in seen:
            seen.add(id(b))
            distinct.append(b)
    return distinct


def batch_sha256(batch: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(batch).tobytes()).hexdigest()


@dataclass(frozen=True)
class Reference:
    key: str
    path: Path
    file_sha256: str
    batches: int


def reference_pack(
    model_sha256: str,
    build_fp32: Callable[[], onnx.ModelProto],
    shape: list[int],
    count: int,
    seed: int,
    cache_dir: Path,
    dataset: tuple[str, Path] | None = None,
) -> Reference:
    """The reference for a run's inputs; ``build_fp32`` is called only when the cache lacks it.

    With ``dataset`` (the dataset pack's content key and file), the FP32 top-1 of every dataset image too
    (``dataset_top1``), so the agent can also report agreement on real images."""
    batches = run_inputs(shape, count, seed)
    hashes = [batch_sha256(b) for b in batches]
    ident = {
        "format": REFERENCE_FORMAT,
        "model_sha256": model_sha256,
        "inputs": hashes,
        "dataset": dataset[0] if dataset else None,
    }
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    final = Path(cache_dir) / key[:2] / key
    path = final / REFERENCE_FILE
    if not path.is_file():
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            build_fp32().SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        logits = []
        for batch in batches:
            out = np.asarray(session.run(None, {name: batch})[0], dtype=np.float32)
            logits.append(out.reshape(out.shape[0], -1))
        stacked = np.stack(logits)
        extra = {}
        if dataset is not None:
            with np.load(dataset[1]) as z:
                images = z["inputs"]
            b = int(shape[0])
            top1 = []
            for start in range(0, images.shape[0], b):
                chunk = images[start : start + b]
                padded = np.concatenate([chunk, np.repeat(chunk[-1:], b - chunk.shape[0], axis=0)])
                out = np.asarray(session.run(None, {name: padded.astype(np.float32)})[0])
                top1.append(out.reshape(b, -1).argmax(axis=1)[: chunk.shape[0]])
            extra["dataset_top1"] = np.concatenate(top1).astype(np.int64)
        save_npz_entry(
            final,
            REFERENCE_FILE,
            input_sha256=np.array(hashes),
            top1=stacked.argmax(axis=2).astype(np.int64),
            logits=stacked,
            **extra,
        )
    return Reference(key, path, sha256_file(path), len(batches))
