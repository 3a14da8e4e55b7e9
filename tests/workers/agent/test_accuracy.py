"""The agent's accuracy pass (workers/agent/accuracy.py): top-1/top-5 through LoadGen AccuracyOnly on the CPU
and the emulated backend, and INT8 vs FP32 agreement on the run's own inputs against a farm-built reference."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from farm.accuracy.reference import reference_pack
from tests.conftest import tiny_model
from tests.workers.agent import agent_modules
from tests.workers.agent.test_backend_emulated import PROFILE, board_root

CLASSES = 10


@pytest.fixture(scope="module")
def agent():
    with agent_modules.imported() as ns:
        ns.accuracy = agent_modules.module("accuracy")
        yield ns


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(path, batch=1, profile=None, seed=0):
    model = tiny_model(batch=batch, seed=seed)
    if profile is not None:
        helper.set_model_props(model, {"farm.emulation": json.dumps(dict(profile, batch_size=batch))})
    onnx.save(model, str(path))
    return str(path)


def fp32_predictions(inputs, seed=0):
    sess = ort.InferenceSession(
        tiny_model(batch=1, seed=seed).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return np.array([sess.run(None, {"input": x[None]})[0][0] for x in inputs])


def dataset_pack(tmp_path, n=13, labels=None):
    """Inputs with labels that are the tiny model's own top-1 (so a correct pass scores 1.0)."""
    rng = np.random.default_rng(5)
    inputs = rng.standard_normal((n, 3, 16, 16)).astype(np.float32)
    logits = fp32_predictions(inputs)
    if labels is None:
        labels = logits.argmax(axis=1)
    path = tmp_path / "dataset.npz"
    np.savez(
        path,
        inputs=inputs,
        labels=np.asarray(labels, dtype=np.int64),
        classes=np.array([f"c{i}" for i in range(CLASSES)]),
    )
    return path, logits


def config(artifact, tmp_path, backend="onnxruntime_cpu", batch=1, **extra):
    cfg = {
        "artifact": artifact,
        "backend": backend,
        "scenario": "SingleStream",
        "batch_size": batch,
        "loadgen": {"min_duration_ms": 100, "min_query_count": 8},
        "warmup_queries": 1,
        "sample_count": 6,
        "log_dir": str(tmp_path / "lg"),
    }
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize("batch", [1, 4])
def test_dataset_accuracy_on_cpu_through_loadgen_accuracy_log(agent, tmp_path, batch):
    path, logits = dataset_pack(tmp_path)
    artifact = save(tmp_path / "m.onnx", batch=batch)
    doc, code = agent.harness.run(
        config(artifact, tmp_path, batch=batch, dataset={"path": str(path), "sha256": sha(path)})
    )
    assert code == 0, doc["error"]
    data = doc["accuracy"]["dataset"]
    assert data["top1"] == 1.0 and data["top5"] == 1.0
    assert data["samples"] == 13 and data["loadgen_mode"] == "AccuracyOnly"
    assert data["loadgen_samples"] == -(-13 // batch)  # the last batch padded, padding not scored
    logged = agent.accuracy.read_accuracy_log(data["log"])
    assert sorted(logged) == list(range(data["loadgen_samples"]))
    assert doc["accuracy"]["int8_fp32"] is None  # no reference asked for


def test_dataset_top5_counts_the_second_choice(agent, tmp_path):
    _, logits = dataset_pack(tmp_path)
    second = np.argsort(-logits, axis=1)[:, 1]
    sixth = np.argsort(-logits, axis=1)[:, 5]
    labels = np.concatenate([second[:6], sixth[6:]])
    path, _ = dataset_pack(tmp_path, labels=labels)
    doc, code = agent.harness.run(
        config(save(tmp_path / "m.onnx"), tmp_path, dataset={"path": str(path), "sha256": None})
    )
    assert code == 0, doc["error"]
    data = doc["accuracy"]["dataset"]
    assert data["top1"] == 0.0
    assert data["top5"] == pytest.approx(6 / 13)


def test_dataset_accuracy_on_the_emulated_backend(agent, tmp_path):
    path, _ = dataset_pack(tmp_path)
    root = board_root(tmp_path)
    artifact = save(tmp_path / "m.onnx", profile=PROFILE)
    cfg = config(
        artifact,
        tmp_path,
        backend="emulated",
        emulation={"root": str(root), "time_scale": 0.1},
        dataset={"path": str(path), "sha256": sha(path)},
    )
    doc, code = agent.harness.run(cfg)
    assert code == 0, doc["error"]
    assert doc["accuracy"]["dataset"]["top1"] == 1.0
    # the accuracy pass takes the backend's memoised outputs: each run input and each image computed once
    assert doc["emulation"]["outputs_computed"] == 6 + 13


def test_dataset_pack_with_a_wrong_sha256_is_an_infra_error(agent, tmp_path):
    path, _ = dataset_pack(tmp_path)
    doc, code = agent.harness.run(
        config(save(tmp_path / "m.onnx"), tmp_path, dataset={"path": str(path), "sha256": "0" * 64})
    )
    assert code == 1 and "sha256 mismatch" in doc["error"]["message"]


def test_dataset_of_another_image_size_is_a_model_error(agent, tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.zeros((3, 3, 8, 8), np.float32), labels=np.zeros(3, np.int64))
    doc, code = agent.harness.run(config(save(tmp_path / "m.onnx"), tmp_path, dataset={"path": str(path)}))
    assert code == 2 and "[3, 8, 8]" in doc["error"]["message"]


def _reference(tmp_path, cfg, model_seed=0, batch=1):
    ref = reference_pack(
        "test-model",
        lambda: tiny_model(batch=batch, seed=model_seed),
        [batch, 3, 16, 16],
        cfg["sample_count"],
        cfg.get("seed", 0),
        tmp_path / "refcache",
    )
    return {"path": str(ref.path), "sha256": ref.file_sha256}, ref


@pytest.mark.parametrize("backend", ["onnxruntime_cpu", "emulated"])
def test_agreement_with_the_same_model_is_total(agent, tmp_path, backend):
    extra = {}
    profile = None
    if backend == "emulated":
        extra["emulation"] = {"root": str(board_root(tmp_path)), "time_scale": 0.1}
        profile = PROFILE
    cfg = config(save(tmp_path / "m.onnx", profile=profile), tmp_path, backend=backend, **extra)
    cfg["reference"], ref = _reference(tmp_path, cfg)
    doc, code = agent.harness.run(cfg)
    assert code == 0, doc["error"]
    agree = doc["accuracy"]["int8_fp32"]
    assert agree["top1_agreement"] == 1.0 and agree["sqnr_db"] == 999.0
    assert agree["samples"] == ref.batches == agree["distinct_batches"] == 6
    assert agree["unmatched_batches"] == 0


def test_agreement_with_another_model_counts_disagreements(agent, tmp_path):
    cfg = config(save(tmp_path / "m.onnx", batch=2), tmp_path, batch=2)
    cfg["sample_count"] = 32
    cfg["reference"], ref = _reference(tmp_path, cfg, model_seed=1, batch=2)
    doc, code = agent.harness.run(cfg)
    assert code == 0, doc["error"]
    agree = doc["accuracy"]["int8_fp32"]
    # recompute what the agreement must be, from both models' outputs on the same inputs
    with np.load(ref.path) as z:
        fp32_top1 = z["top1"]
    from farm.accuracy.reference import run_inputs

    sess = ort.InferenceSession(
        tiny_model(batch=2, seed=0).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    ours = np.stack(
        [sess.run(None, {"input": b})[0].argmax(axis=1) for b in run_inputs([2, 3, 16, 16], 32, 0)]
    )
    assert agree["samples"] == 64
    assert agree["top1_agreement"] == pytest.approx(float((ours == fp32_top1).mean()))
    assert agree["top1_agreement"] < 1.0 and agree["sqnr_db"] < 999.0


def test_reference_for_other_inputs_matches_nothing(agent, tmp_path):
    cfg = config(save(tmp_path / "m.onnx"), tmp_path)
    cfg["reference"], _ = _reference(tmp_path, dict(cfg, seed=3))  # another seed: other input bytes
    doc, code = agent.harness.run(cfg)
    assert code == 0, doc["error"]
    agree = doc["accuracy"]["int8_fp32"]
    assert agree["top1_agreement"] is None and agree["unmatched_batches"] == 6
    assert "none of the run's" in agree["note"]


def test_no_accuracy_object_without_reference_or_dataset(agent, tmp_path):
    doc, code = agent.harness.run(config(save(tmp_path / "m.onnx"), tmp_path))
    assert code == 0, doc["error"]
    assert doc["accuracy"] is None


def test_bad_accuracy_config_is_an_infra_error(agent, tmp_path):
    doc, code = agent.harness.run(config(save(tmp_path / "m.onnx"), tmp_path, dataset="x.npz"))
    assert code == 1 and "config dataset" in doc["error"]["message"]


def test_agreement_on_the_dataset_images_when_the_reference_has_them(agent, tmp_path):
    path, _ = dataset_pack(tmp_path)
    cfg = config(
        save(tmp_path / "m.onnx", seed=1), tmp_path, dataset={"path": str(path), "sha256": sha(path)}
    )
    ref = reference_pack(
        "test-model", lambda: tiny_model(batch=1, seed=0), [1, 3, 16, 16], 6, 0, tmp_path / "rc", ("k", path)
    )
    cfg["reference"] = {"path": str(ref.path), "sha256": ref.file_sha256}
    doc, code = agent.harness.run(cfg)
    assert code == 0, doc["error"]
    data = doc["accuracy"]["dataset"]
    # labels are model 0's top-1 and the reference is model 0: agreement and accuracy are the same figure
    assert data["int8_fp32_top1_agreement"] == pytest.approx(data["top1"])
    assert 0.0 <= data["top1"] < 1.0


@pytest.mark.parametrize("scenario", ["Offline", "MultiStream"])
def test_agreement_in_other_scenarios(agent, tmp_path, scenario):
    path, _ = dataset_pack(tmp_path)
    cfg = config(save(tmp_path / "m.onnx"), tmp_path, scenario=scenario, dataset={"path": str(path)})
    cfg["reference"], _ = _reference(tmp_path, cfg)
    doc, code = agent.harness.run(cfg)
    assert code == 0, doc["error"]
    assert doc["accuracy"]["int8_fp32"]["top1_agreement"] == 1.0
    assert doc["accuracy"]["dataset"]["top1"] == 1.0
