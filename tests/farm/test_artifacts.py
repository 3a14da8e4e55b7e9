"""The content-addressed store: keys depend on every input that shapes the bytes, puts are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.artifacts import ArtifactStore, artifact_key, sha256_file

BASE = dict(
    model_sha256="a" * 64,
    precision="int8",
    quant_config={"calibration_samples": 200, "method": "minmax"},
    target_arch="x86_64-cpu",
    batch_size=1,
    toolchain_version="onnxruntime-1.0",
)


def test_key_is_stable_and_sensitive_to_each_input() -> None:
    key = artifact_key(**BASE)
    assert key == artifact_key(**dict(BASE))
    changes = {
        "model_sha256": "b" * 64,
        "precision": "fp32",
        "quant_config": {"calibration_samples": 100, "method": "minmax"},
        "target_arch": "aarch64-cpu",
        "batch_size": 2,
        "toolchain_version": "onnxruntime-1.1",
    }
    keys = {artifact_key(**{**BASE, field: value}) for field, value in changes.items()}
    assert key not in keys and len(keys) == len(changes)


def test_fp32_key_ignores_quant_config() -> None:
    fp32 = {**BASE, "precision": "fp32"}
    assert artifact_key(**fp32) == artifact_key(**{**fp32, "quant_config": {"calibration_samples": 5}})


def test_put_has_meta(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    src = tmp_path / "m.onnx"
    src.write_bytes(b"model-bytes")
    key = artifact_key(**BASE)
    assert not store.has(key)
    path = store.put(key, src, {"model": "m"})
    assert store.has(key) and path.read_bytes() == b"model-bytes"
    assert store.meta(key)["file_sha256"] == sha256_file(src) and store.meta(key)["model"] == "m"
    src.write_bytes(b"other")
    assert store.put(key, src, {"model": "m"}).read_bytes() == b"model-bytes"  # first put wins
    assert [p.name for p in path.parent.parent.iterdir()] == [key]  # no staging leftovers


def test_half_written_entry_is_replaced(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    key = artifact_key(**BASE)
    store.dir_for(key).mkdir(parents=True)
    (store.dir_for(key) / "model.onnx").write_bytes(b"trunc")  # crash before meta.json
    assert not store.has(key)
    src = tmp_path / "m.onnx"
    src.write_bytes(b"full")
    assert store.put(key, src, {}).read_bytes() == b"full" and store.has(key)


def test_rejects_non_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ArtifactStore(tmp_path).dir_for("../../etc")
