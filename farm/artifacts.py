"""Content-addressed artifact store: a compiled model is found by what made it, never compiled twice."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MODEL_FILE = "model.onnx"
META_FILE = "meta.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def artifact_key(
    *,
    model_sha256: str,
    precision: str,
    quant_config: dict[str, Any] | None,
    target_arch: str,
    batch_size: int,
    toolchain_version: str,
) -> str:
    """sha256 over everything that shapes the compiled bytes (canonical JSON, sorted keys)."""
    identity = {
        "model_sha256": model_sha256,
        "precision": precision,
        "quant_config": quant_config if precision == "int8" else None,
        "target_arch": target_arch,
        "batch_size": batch_size,
        "toolchain_version": toolchain_version,
    }
    return sha256_bytes(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode())


class ArtifactStore:
    """root/<key[:2]>/<key>/{model.onnx, meta.json}; meta.json is written last, so its presence means complete."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir_for(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not an artifact key: {key!r}")
        return self.root / key[:2] / key

    def model_path(self, key: str) -> Path:
        return self.dir_for(key) / MODEL_FILE

    def has(self, key: str) -> bool:
        return (self.dir_for(key) / META_FILE).is_file() and self.model_path(key).is_file()

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.dir_for(key) / META_FILE).read_text())

    def put(self, key: str, model_file: Path, meta: dict[str, Any]) -> Path:
        """Move a compiled file in atomically; a concurrent put of the same key keeps the first."""
        final = self.dir_for(key)
        if self.has(key):
            return final / MODEL_FILE
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=final.parent))
        try:
            shutil.copyfile(model_file, staging / MODEL_FILE)
            meta = {**meta, "key": key, "file_sha256": sha256_file(staging / MODEL_FILE)}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            try:
                os.rename(staging, final)
            except OSError:
                if not self.has(key):  # a half-written leftover from a crash: replace it
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final / MODEL_FILE
