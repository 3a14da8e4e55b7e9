"""Compile jobs, run by compile workers: build or load the model, then quantize/compile it with the target's
toolchain unless the store already holds the artifact. What follows a compile (its run jobs, the sweep's
roll-up) is :func:`farm.scheduler.after_job`'s, called by the task."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import onnx
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from farm import leases
from farm.artifacts import ArtifactStore, artifact_key, sha256_bytes
from farm.config import Settings
from farm.db.models import ArtifactRow, JobRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.errors import InfraError, ModelError
from farm.inventory import load_inventory
from farm.services.sweeps import TERMINAL, record_failure
from farm.sweep.schema import Dataset, Quantization, Sweep
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.registry import toolchain_for_target
from farm.workers.toolchains.runners import artifact_columns, runner_for
from farm.zoo.build import build_model, input_shape

log = logging.getLogger(__name__)


def quant_config(q: Quantization) -> QuantConfig:
    return QuantConfig(
        calibration_samples=q.calibration_samples, method=q.method, per_channel=q.per_channel, seed=q.seed
    )


def with_calibration_dataset(
    settings: Settings, qcfg: QuantConfig, dataset: Dataset, model: onnx.ModelProto
) -> QuantConfig:
    """``qcfg`` calibrating on the sweep's calibration images, packed (and cached by content) for this
    model's input like an accuracy dataset: the pack's sha256 joins the artifact's content address."""
    from farm.accuracy.runs import cache_dir
    from farm.datasets.imagefolder import DatasetError, Preprocessing, build_pack

    shape = input_shape(model)
    if len(shape) != 4:
        raise ModelError(
            f"quantization.calibration_dataset needs an image model (an N, C, H, W input); this one takes {shape}"
        )
    p = dataset.preprocessing
    prep = Preprocessing(resize=p.resize, mean=p.mean, std=p.std, channel_order=p.channel_order)
    try:
        pack = build_pack(Path(dataset.path), tuple(shape[1:]), prep, cache_dir(settings))
    except DatasetError as exc:
        raise ModelError(f"calibration dataset {dataset.path}: {exc}") from None
    return replace(qcfg, calibration_data=str(pack.path), calibration_sha256=pack.file_sha256)


def run_compile_job(settings: Settings, job_id: int) -> str:
    """Returns the job's final state: 'cached' (nothing compiled), 'done', 'failed' (model error), or
    'duplicate' (another worker holds the job's live lease, or it was cancelled: this message does nothing).

    The artifact key uses the toolchain version and target arch of where the compile runs (a Docker
    host, a compile host, or this worker), so a different toolchain never hits a stale artifact."""
    with session_scope(settings.db_url) as s:
        job = s.get(JobRow, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        if job.state in TERMINAL:
            return job.state  # redelivered after it finished: nothing to do
        sweep = s.get(SweepRow, job.sweep_id)
        assert sweep is not None
        spec = Sweep.model_validate(sweep.spec)
        if not leases.take(s, job_id):
            return "duplicate"
        s.refresh(job)
        model_name, precision, target, batch = job.model, job.precision, job.target, job.batch_size

    ref = next(m for m in spec.models if m.name == model_name)
    inventory = load_inventory(settings.inventory_dir)
    # Per-target toolchains (the emulators, Vitis AI) compile for this board type: "name@target".
    toolchain_name = toolchain_for_target(inventory.board_types[target].toolchain, target)
    qcfg = quant_config(spec.quantization)
    try:
        with runner_for(inventory, toolchain_name) as runner:
            model = build_model(ref, batch)
            model_bytes = model.SerializeToString()
            if precision == "int8" and spec.quantization.calibration_dataset is not None:
                qcfg = with_calibration_dataset(settings, qcfg, spec.quantization.calibration_dataset, model)
            info = runner.toolchain_info(toolchain_name)
            key = artifact_key(
                model_sha256=sha256_bytes(model_bytes),
                precision=precision,
                quant_config=qcfg.as_dict(),
                target_arch=info.target_arch,
                batch_size=batch,
                toolchain_version=info.version,
            )
            store = ArtifactStore(settings.artifact_dir)
            with session_scope(settings.db_url) as s:
                cached = store.has(key) and s.get(ArtifactRow, key) is not None
            if cached:
                state = "cached"
            else:
                _compile_into_store(
                    settings,
                    store,
                    runner,
                    toolchain_name,
                    info,
                    model,
                    model_bytes,
                    ref,
                    precision,
                    qcfg,
                    batch,
                    key,
                )
                state = "done"
    except ModelError as exc:
        record_failure(settings.db_url, job_id, str(exc))
        return "failed"
    _finish(settings, job_id, state, artifact_key=key)
    return state


def _compile_into_store(
    settings, store, runner, toolchain_name, info, model, model_bytes, ref, precision, qcfg, batch, key
) -> None:
    with tempfile.TemporaryDirectory(prefix="farm-compile-") as tmp:
        src = Path(tmp) / "input.onnx"
        src.write_bytes(model_bytes)
        result = runner.compile(toolchain_name, src, precision, qcfg, Path(tmp) / "out")
        if result.toolchain_version != info.version:
            raise InfraError(
                f"the toolchain changed during the job ({info.version} -> {result.toolchain_version})"
            )
        for warning in result.warnings:
            log.warning("%s %s: %s", ref.name, precision, warning)
        details = {
            **result.details,
            "input_shape": input_shape(model),
            "warnings": result.warnings,
            "toolchain_seconds": result.toolchain_seconds,
        }
        meta = {
            "model": ref.name,
            "precision": precision,
            "toolchain": result.toolchain,
            "runner": result.runner,
            "details": details,
        }
        path = store.put(key, result.path, meta)
    fidelity = result.fidelity or {}
    row = ArtifactRow(
        key=key,
        model=ref.name,
        model_sha256=sha256_bytes(model_bytes),
        precision=precision,
        target_arch=result.target_arch,
        batch_size=batch,
        toolchain=result.toolchain,
        toolchain_version=result.toolchain_version,
        quant_config=qcfg.as_dict() if precision == "int8" else None,
        file_sha256=store.meta(key)["file_sha256"],
        size_bytes=path.stat().st_size,
        top1_agreement=fidelity.get("top1_agreement"),
        sqnr_db=fidelity.get("sqnr_db"),
        details={**details, "fidelity_samples": fidelity.get("samples")},
        compile_seconds=result.seconds,
        **artifact_columns(result.runner),
    )
    try:
        with session_scope(settings.db_url) as s:
            s.add(row)
    except IntegrityError:
        log.info("artifact %s was registered concurrently", key[:12])


def _finish(settings: Settings, job_id: int, state: str, *, artifact_key: str) -> None:
    """The job is done or cached, its lease given up (a job cancelled meanwhile stays cancelled)."""
    with session_scope(settings.db_url) as s:
        s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state == "running")
            .values(
                state=state, error=None, finished_at=utcnow(), artifact_key=artifact_key, **leases.cleared()
            )
        )
