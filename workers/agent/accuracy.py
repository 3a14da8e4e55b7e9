"""Accuracy on the board: INT8 vs FP32 agreement on the run's own inputs, and top-1 / top-5 on a labelled
dataset through LoadGen's AccuracyOnly mode (docs/accuracy.md).

Both inputs come from the farm as ``.npz`` files shipped like artifacts (sha256 checked here again):

* ``reference`` (int8 runs): for each distinct input batch of the performance test, the sha256 of its
  bytes (``input_sha256``), the FP32 model's top-1 per image (``top1``) and its outputs (``logits``).
  The harness captures the batches the LoadGen driver hands to ``backend.prepare`` (the very objects
  the test then feeds to ``predict``); after the timed test each distinct batch's output is taken from
  the backend (the emulated backend's memoised output, i.e. the exact array its ``predict`` returned;
  on other backends the same session runs the batch once more, untimed) and compared with the FP32
  reference of the batch with the same bytes. Nothing is added to the timed path.
* ``dataset``: ``inputs`` (N, C, H, W) already preprocessed by the farm, ``labels`` (N,), ``classes``.
  The QSL holds the dataset (one LoadGen sample = one batch of ``batch_size`` images, the last batch
  padded with copies of the last image, which are not scored), LoadGen runs AccuracyOnly (every sample
  once; Offline scenario, the outputs do not depend on the scenario), the SUT answers each sample with its
  images' top-5 class indices (int32) as the response data, and the figures are computed from LoadGen's
  ``mlperf_log_accuracy.json``, the way MLPerf's accuracy scripts do.

Stdlib + numpy + mlperf_loadgen only (Python 3.8).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os

import numpy as np
from backends.base import InfraError, ModelError, verified_file

log = logging.getLogger("farm-agent")

TOP_K = 5
SQNR_CAP_DB = 999.0


def load_pack(entry, what):
    """The .npz behind a config entry, its sha256 checked; a dict of arrays."""
    path = verified_file(entry["path"], entry.get("sha256"), "%s pack" % what)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return dict((k, npz[k]) for k in npz.files)
    except Exception as exc:  # a truncated or foreign file
        raise InfraError("cannot read %s pack %s: %s" % (what, path, exc)) from exc


# --------------------------------------------------------------------------- outputs


class Capture(object):
    """Stands in for the backend during the LoadGen test and remembers the input batches the driver hands
    to ``prepare`` (in sample-index order). ``predict`` is the backend's own bound method, so the timed path
    is exactly the backend's."""

    def __init__(self, backend):
        self._backend = backend
        self.predict = backend.predict
        self.batches = None

    def prepare(self, batches):
        self.batches = list(batches)
        inner = getattr(self._backend, "prepare", None)
        if inner is not None:
            inner(batches)

    def __getattr__(self, name):
        return getattr(self._backend, name)


def output_of(backend, batch):
    """The model's output for ``batch``, unpaced: the emulated backend's memoised output (computed once per
    distinct batch with ONNX Runtime, the array its ``predict`` returns), else ``predict`` itself."""
    memo = getattr(backend, "_output", None)
    out = memo(batch) if callable(memo) else backend.predict(batch)
    out = np.asarray(out)
    return out.reshape(out.shape[0], -1) if out.ndim > 1 else out.reshape(1, -1)


def batch_sha256(batch):
    return hashlib.sha256(np.ascontiguousarray(batch).tobytes()).hexdigest()


def sqnr_db(reference, test):
    ref = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((ref - np.asarray(test, dtype=np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return SQNR_CAP_DB
    if signal == 0.0:
        return -SQNR_CAP_DB
    return max(-SQNR_CAP_DB, min(SQNR_CAP_DB, 10.0 * math.log10(signal / noise)))


# --------------------------------------------------------------------------- INT8 vs FP32


def agreement(backend, batches, pack):
    """Top-1 agreement and SQNR of this run's outputs against the FP32 reference pack, on the same inputs."""
    if not batches:
        return {"top1_agreement": None, "note": "the LoadGen driver handed no input batches to the backend"}
    index = dict((str(h), i) for i, h in enumerate(pack["input_sha256"]))
    ref_top1, ref_logits = pack["top1"], pack.get("logits")
    seen = set()
    agree = total = unmatched = 0
    refs, outs = [], []
    for batch in batches:
        if id(batch) in seen:
            continue
        seen.add(id(batch))
        i = index.get(batch_sha256(batch))
        if i is None:
            unmatched += 1
            continue
        out = output_of(backend, batch)
        top1 = out.argmax(axis=1)
        expected = np.asarray(ref_top1[i]).reshape(-1)
        if expected.shape[0] != top1.shape[0]:
            raise InfraError(
                "reference pack has %d images per batch, the run %d" % (expected.shape[0], top1.shape[0])
            )
        agree += int(np.sum(top1 == expected))
        total += int(top1.shape[0])
        if ref_logits is not None:
            ref = np.asarray(ref_logits[i]).reshape(out.shape[0], -1)
            if ref.shape == out.shape:
                refs.append(ref)
                outs.append(out)
    result = {
        "top1_agreement": (agree / float(total)) if total else None,
        "sqnr_db": round(sqnr_db(np.concatenate(refs), np.concatenate(outs)), 4) if refs else None,
        "samples": total,
        "distinct_batches": len(seen),
        "unmatched_batches": unmatched,
        "reference": "fp32 outputs computed by the farm for the same input bytes",
    }
    if not total:
        result["note"] = "none of the run's %d distinct input batches is in the reference pack" % len(seen)
    return result


# --------------------------------------------------------------------------- labelled dataset


def read_accuracy_log(path):
    """``{qsl_idx: bytes}`` from LoadGen's ``mlperf_log_accuracy.json``."""
    with open(path, "r") as fh:
        entries = json.load(fh)
    return dict((int(e["qsl_idx"]), bytes.fromhex(e["data"])) for e in entries)


def _batches(inputs, batch_size, dtype):
    n = inputs.shape[0]
    count = int(math.ceil(n / float(batch_size)))
    out = []
    for b in range(count):
        idx = [min(i, n - 1) for i in range(b * batch_size, (b + 1) * batch_size)]
        out.append(np.ascontiguousarray(inputs[idx].astype(dtype, copy=False)))
    return out


def dataset_accuracy(backend, lg, entry, batch_size, log_dir, reference=None):
    """Top-1 / top-5 over the dataset pack, LoadGen in AccuracyOnly mode; with a reference pack that holds
    the FP32 top-1 of the dataset's images (``dataset_top1``), the INT8 vs FP32 agreement on them too."""
    pack = load_pack(entry, "dataset")
    inputs, labels = pack.get("inputs"), pack.get("labels")
    if inputs is None or labels is None or inputs.shape[0] != labels.shape[0] or inputs.shape[0] == 0:
        raise InfraError(
            "dataset pack %s needs non-empty inputs and labels of the same length" % entry["path"]
        )
    shape = tuple(backend.input_shape[1:])
    if tuple(inputs.shape[1:]) != shape:
        raise ModelError(
            "the dataset's images are %s but the model takes %s" % (list(inputs.shape[1:]), list(shape))
        )
    n = int(inputs.shape[0])
    batches = _batches(inputs, int(batch_size), backend.input_dtype)
    responses = []
    errors = []

    def issue(query_samples):
        done = []
        for qs in query_samples:
            try:
                if errors:
                    raise errors[0]
                out = output_of(backend, batches[qs.index])
                k = min(TOP_K, out.shape[1])
                top = np.ascontiguousarray(np.argsort(-out, axis=1, kind="stable")[:, :k].astype(np.int32))
            except BaseException as exc:  # never raise into LoadGen's C++ frames
                if not errors:
                    errors.append(exc)
                top = np.zeros((0,), dtype=np.int32)
            responses.append(top)  # alive until LoadGen has copied it
            done.append(lg.QuerySampleResponse(qs.id, top.ctypes.data, top.nbytes))
        lg.QuerySamplesComplete(done)

    def noop(_indices):
        pass

    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.AccuracyOnly
    settings.offline_expected_qps = float(max(1, len(batches)))
    log_dir = os.path.abspath(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = log_dir
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(batches), len(batches), noop, noop)
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    if errors:
        exc = errors[0]
        if isinstance(exc, (ModelError, InfraError)):
            raise exc
        raise ModelError("inference failed in the accuracy pass: %s: %s" % (type(exc).__name__, exc)) from exc
    log_path = os.path.join(log_dir, "mlperf_log_accuracy.json")
    try:
        logged = read_accuracy_log(log_path)
    except (OSError, IOError, ValueError, KeyError) as exc:
        raise InfraError("cannot read LoadGen's accuracy log %s: %s" % (log_path, exc)) from exc
    missing = [i for i in range(len(batches)) if i not in logged]
    if missing:
        raise InfraError("LoadGen's accuracy log lacks %d of %d samples" % (len(missing), len(batches)))
    top = np.concatenate(
        [np.frombuffer(logged[i], dtype=np.int32).reshape(int(batch_size), -1) for i in range(len(batches))]
    )[:n]
    labels = labels.astype(np.int64)
    classes = int(output_of(backend, batches[0]).shape[1])
    if labels.max() >= classes:
        raise ModelError("the dataset has label %d but the model has %d outputs" % (labels.max(), classes))
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(axis=1)
    per_class = {}
    names = [str(c) for c in pack.get("classes", [])]
    for c in sorted(set(labels.tolist())):
        mask = labels == c
        per_class[names[c] if c < len(names) else str(c)] = round(float(hit1[mask].mean()), 6)
    agree = None
    if reference is not None and "dataset_top1" in reference:
        fp32 = np.asarray(reference["dataset_top1"]).reshape(-1)
        if fp32.shape[0] == n:
            agree = float(np.mean(top[:, 0] == fp32))
    return {
        "int8_fp32_top1_agreement": agree,
        "top1": float(hit1.mean()),
        "top5": float(hit5.mean()),
        "top_k": int(top.shape[1]),
        "samples": n,
        "classes": len(names) or classes,
        "per_class_top1": per_class,
        "loadgen_mode": "AccuracyOnly",
        "loadgen_samples": len(batches),
        "log": log_path,
    }


# --------------------------------------------------------------------------- the report


def measure(backend, capture, config, lg):
    """The report's ``accuracy`` object (None when the config asks for neither figure)."""
    if not config.get("reference") and not config.get("dataset"):
        return None
    out = {"int8_fp32": None, "dataset": None}
    reference = None
    if config.get("reference"):
        reference = load_pack(config["reference"], "reference")
        out["int8_fp32"] = agreement(backend, capture.batches if capture else None, reference)
    if config.get("dataset"):
        base = config.get("log_dir") or "."
        out["dataset"] = dataset_accuracy(
            backend, lg, config["dataset"], config["batch_size"], os.path.join(base, "accuracy"), reference
        )
    return out
