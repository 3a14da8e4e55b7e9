"""The run job's side of accuracy: what a run ships to its board (the FP32 reference of an INT8 run, the
sweep's dataset pack) and the metrics it stores from the agent's ``accuracy`` report (docs/accuracy.md).

Packs are content-addressed files under ``<artifact dir>/accuracy/`` and reach the board through the
transport's ``artifact_path`` like a compiled model (uploaded once, sha256-checked, skipped when the board
has it); the agent checks the sha256 again before it reads one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from farm.config import Settings
from farm.db.models import ArtifactRow, JobRow
from farm.metrics import stored
from farm.sweep.schema import Sweep
from farm.transport.base import Transport
from farm.workers.agent.protocol import section

log = logging.getLogger(__name__)

#: Seconds of agent time allowed per dataset image on top of the performance run's timeout.
SECONDS_PER_IMAGE = 0.05


def cache_dir(settings: Settings) -> Path:
    return Path(settings.artifact_dir) / "accuracy"


def accuracy_config(
    settings: Settings,
    spec: Sweep,
    job: JobRow,
    artifact: ArtifactRow,
    config: dict[str, Any],
    transport: Transport,
) -> dict[str, Any]:
    """``{"reference": {path, sha256}}`` for an INT8 run and ``{"dataset": {path, sha256}}`` when the sweep
    names a dataset (paths as the board sees them), plus ``"dataset_images"`` for the timeout."""
    out: dict[str, Any] = {}
    shape = list((artifact.details or {}).get("input_shape") or [])
    dataset = None
    if spec.dataset is not None and len(shape) == 4:
        from farm.datasets.imagefolder import Preprocessing, build_pack

        p = spec.dataset.preprocessing
        prep = Preprocessing(resize=p.resize, mean=p.mean, std=p.std, channel_order=p.channel_order)
        dataset = build_pack(Path(spec.dataset.path), tuple(shape[1:]), prep, cache_dir(settings))
        out["dataset"] = {
            "path": transport.artifact_path(dataset.key, dataset.path),
            "sha256": dataset.file_sha256,
        }
        out["dataset_images"] = dataset.samples
    if job.precision == "int8" and len(shape) >= 2:
        from farm.accuracy.reference import reference_pack

        ref = next((m for m in spec.models if m.name == job.model), None)
        if ref is not None:

            def build_fp32():
                from farm.zoo.build import build_model

                return build_model(ref, job.batch_size)

            try:
                pack = reference_pack(
                    artifact.model_sha256,
                    build_fp32,
                    shape,
                    config["sample_count"],
                    config["seed"],
                    cache_dir(settings),
                    dataset=(dataset.key, dataset.path) if dataset is not None else None,
                )
            except (
                Exception
            ) as exc:  # e.g. a torch model this worker cannot export: the figure is lost, not the run
                log.warning("job %s: no FP32 reference, so no INT8 agreement: %s", job.key, exc)
            else:
                out["reference"] = {
                    "path": transport.artifact_path(pack.key, pack.path),
                    "sha256": pack.file_sha256,
                }
    return out


def extra_timeout_s(accuracy: dict[str, Any]) -> float:
    return SECONDS_PER_IMAGE * float(accuracy.get("dataset_images") or 0)


def accuracy_metrics(report: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(name, value, unit) from the agent's ``accuracy`` object: int8_fp32_top1_agreement, int8_fp32_sqnr_db,
    int8_fp32_samples (the run's own inputs); accuracy_top1, accuracy_top5, accuracy_samples and, for an
    INT8 run, int8_fp32_dataset_top1_agreement (the dataset's images)."""
    out: list[tuple[str, float, str]] = []
    agree = section(report, "accuracy", "int8_fp32")  # the contract's accuracy.int8_fp32 fields
    if agree.get("top1_agreement") is not None:
        out.append(stored("int8_fp32_top1_agreement", float(agree["top1_agreement"])))
        out.append(stored("int8_fp32_samples", float(agree.get("samples") or 0)))
        if agree.get("sqnr_db") is not None:
            out.append(stored("int8_fp32_sqnr_db", float(agree["sqnr_db"])))
    data = section(report, "accuracy", "dataset")  # and its accuracy.dataset fields
    if data.get("top1") is not None:
        out.append(stored("accuracy_top1", float(data["top1"])))
        out.append(stored("accuracy_top5", float(data["top5"])))
        out.append(stored("accuracy_samples", float(data.get("samples") or 0)))
    if data.get("int8_fp32_top1_agreement") is not None:
        out.append(stored("int8_fp32_dataset_top1_agreement", float(data["int8_fp32_top1_agreement"])))
    return out
