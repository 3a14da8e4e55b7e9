"""Runs measured on hosts outside the fleet (issue 14): the agent run standalone
(``python3 farm_agent.py run --config cfg.json --out DIR``) leaves ``DIR/report.json`` (written last, by
rename, so a report is whole or absent) and its LoadGen logs; ``farm import DIR`` stores it as a measured run
with the report's full provenance, exactly like a run the farm dispatched (farm/services/results.py).

Exactly once: the import's sweep id is derived from the report's bytes (uuid5), so importing the same DIR
again finds it and adds nothing; an import interrupted between its sweep and its run is finished by the
next one (the database remembers where it got to). Bad input is an :class:`ImportError_` naming the file
and every bad field; nothing is written before the report has been checked.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from farm.config import Settings
from farm.db.models import ArtifactRow, BoardRow, JobRow, RunRow, SweepRow, utcnow
from farm.db.session import session_scope
from farm.errors import SweepError
from farm.inventory import NAME, Board
from farm.services.results import store_result
from farm.workers.agent import protocol

REPORT = "report.json"
PURPOSE = "import"
_NAMESPACE = uuid.UUID("6f1c2a52-4d1e-4d8b-9a57-1f0e0c6b7a11")  # farm import: sweep ids from report bytes
TARGET = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,50}(:cpu(:[0-9]{1,3})?)?$"  # a board type, or a board's own CPU


class ImportError_(SweepError):  # noqa: N801 (not the builtin ImportError)
    """A DIR that cannot be imported: located (file, field) like a sweep error; bad input, exit 2."""


@dataclass(frozen=True)
class Imported:
    run_id: int
    sweep_id: str
    added: bool  # False: this report was imported before (nothing added)
    model: str
    precision: str
    target: str
    board: str
    scenario: str


def read_report(folder: Path) -> tuple[dict[str, Any], bytes]:
    """The checked report of an agent run folder and its bytes. ImportError_ for a folder that is not one,
    a half-written report, another contract version, a failed run, or any field that breaks the contract."""
    if not folder.is_dir():
        raise ImportError_(f"{folder} is not a folder (give the agent's --out DIR)", path=str(folder))
    path = folder / REPORT
    if not path.is_file():
        partial = sorted(p.name for p in folder.iterdir())[:8]
        raise ImportError_(
            f"no {REPORT}: the agent did not finish writing this run (the folder holds "
            f"{', '.join(partial) or 'nothing'}); run it again",
            path=str(folder),
        )
    data = path.read_bytes()
    try:
        report = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise ImportError_(f"not valid JSON: {exc}", path=str(path), line=line) from None
    if not isinstance(report, dict):
        raise ImportError_("must be a JSON object (an agent report)", path=str(path))
    version = report.get("agent_version")
    if str(version) != protocol.CONTRACT_VERSION:
        raise ImportError_(
            f"agent contract version {version!r}, this farm reads version {protocol.CONTRACT_VERSION!r}: import it with a "
            "farm of that version, or run the agent of this farm's version",
            path=str(path),
            field="agent_version",
        )
    problems = protocol.validate_report(report)
    if problems:
        said = "; ".join(msg or f"{field} is required" for field, msg in problems)
        raise ImportError_(f"breaks the farm-agent contract: {said}", path=str(path), field=problems[0][0])
    if report.get("status") != "ok":
        error = report.get("error") or {}
        raise ImportError_(
            f"the run failed on its host ({error.get('kind', '?')} error: {error.get('message', 'no message')}): "
            "there is no result to import",
            path=str(path),
            field="status",
        )
    config = report.get("config")
    for key in ("scenario", "batch_size", "artifact_sha256", "backend"):
        if not isinstance(config, dict) or config.get(key) in (None, ""):
            raise ImportError_(f"the report's config has no {key}", path=str(path), field=f"config.{key}")
    return report, data


def _check_name(value: str, what: str, path: Path, pattern: str = NAME) -> str:
    if not re.fullmatch(pattern, value):
        raise ImportError_(
            f"{what} {value!r}: use letters, digits, '.', '_' and '-' (at most 64)", path=str(path)
        )
    return value


def _family(board_type: str) -> str:
    """The family the farm's other views give the type (farm.queries.runs.family_of): the catalog's for a
    known type, cpu for a board's own CPU, else by the name."""
    from farm.queries.runs import family_of

    try:
        from farm.perfmodel.target import load_catalog

        families = {name: bt.family for name, bt in load_catalog().items()}
    except Exception:  # no readable catalog here: the name decides
        families = {}
    return family_of(board_type, families)


def import_run(
    settings: Settings,
    folder: Path,
    *,
    model: str | None = None,
    precision: str | None = None,
    board_type: str | None = None,
    board_name: str | None = None,
    labels: dict[str, str] | None = None,
    group: Path | None = None,
    read: tuple[dict[str, Any], bytes] | None = None,
) -> Imported:
    """Store the run in ``folder`` as measured (once). Defaults: the model is the artifact file's stem, the
    precision the backend's ``gpu.dtype`` (else fp32), the board type ``gpu`` for a GPU backend and ``cpu``
    otherwise, the board the report's hostname. ``group``: the folder of folders this run was imported
    with (one sweep for all of them: a device check's runs compare as one selection). ``read``: the report
    as :func:`read_report` gave it already (a folder of runs checks them all first)."""
    folder = Path(folder).resolve()
    report, data = read or read_report(folder)
    config, env = report["config"], report.get("environment") or {}
    artifact_path = str(config.get("artifact") or "model.onnx")
    model = _check_name(model or Path(artifact_path).stem, "model", folder)
    precision = precision or str((config.get("gpu") or {}).get("dtype") or "fp32")
    if precision not in ("fp32", "fp16", "bf16", "int8"):
        raise ImportError_(f"precision {precision!r}: one of fp32, fp16, bf16, int8", path=str(folder))
    backend = str(config["backend"])
    board_type = _check_name(
        board_type or ("gpu" if "gpu" in backend or "cuda" in backend else "cpu"), "type", folder, TARGET
    )
    board_name = _check_name(board_name or str(env.get("hostname") or "imported-host"), "board", folder)
    digest = hashlib.sha256(data).hexdigest()
    source = str(group.resolve() if group else folder)
    sweep_id = str(uuid.uuid5(_NAMESPACE, f"group:{source}" if group else digest))
    scenario, batch = str(config["scenario"]), int(config["batch_size"])
    mark = f"import:{digest[:32]}:"  # this report, whatever sweep it went into
    job_key = f"{mark}{model}:{precision}:{board_type}:b{batch}:{scenario}"[:255]

    with session_scope(settings.db_url) as s:
        done = s.execute(
            select(RunRow.id, RunRow.sweep_id)
            .join(JobRow, JobRow.id == RunRow.job_id)
            .where(JobRow.key.startswith(mark))
        ).first()
        if done is not None:
            return Imported(done[0], done[1], False, model, precision, board_type, board_name, scenario)
        job = s.scalar(select(JobRow).where(JobRow.sweep_id == sweep_id, JobRow.key == job_key))
        if job is None:  # first time here (else an import that stopped before its run: finish it)
            if s.get(SweepRow, sweep_id) is None:
                s.add(
                    SweepRow(
                        id=sweep_id,
                        name=f"import-{(group or folder).name}"[:64],
                        source=source,
                        spec_yaml="",
                        spec_hash=digest,
                        spec={"import": {"folder": source}},
                        state="running",
                        labels=dict(labels or {}) or None,
                        purpose=PURPOSE,
                    )
                )
            key = hashlib.sha256(
                f"import:{config['artifact_sha256']}:{model}:{precision}:{batch}".encode()
            ).hexdigest()
            if s.get(ArtifactRow, key) is None:
                s.add(
                    ArtifactRow(
                        key=key,
                        model=model,
                        model_sha256=str(config["artifact_sha256"]),
                        precision=precision,
                        target_arch=board_type,
                        batch_size=batch,
                        toolchain="external",
                        toolchain_version=str(env.get("runtime_version") or "unknown"),
                        quant_config=None,
                        file_sha256=str(config["artifact_sha256"]),
                        size_bytes=0,
                        details={"imported_from": str(folder), "artifact": artifact_path, "backend": backend},
                    )
                )
            if s.get(BoardRow, board_name) is None:  # a host outside the fleet: known, never scheduled
                s.add(
                    BoardRow(
                        name=board_name,
                        board_type=board_type,
                        family=_family(board_type),
                        state="retired",
                        state_reason="outside the fleet: runs imported with `farm import`, never scheduled",
                        state_changed_at=utcnow(),
                    )
                )
            s.flush()
            job = JobRow(
                sweep_id=sweep_id,
                key=job_key,
                kind="run",
                state="running",
                model=model,
                precision=precision,
                target=board_type,
                batch_size=batch,
                scenario=scenario,
                repeat=0,
                artifact_key=key,
                attempts=1,
                started_at=utcnow(),
            )
            s.add(job)
            s.flush()
        s.expunge_all()
    with session_scope(settings.db_url) as s:
        artifact = s.get(ArtifactRow, job.artifact_key)
        s.expunge_all()
    board = Board.model_construct(name=board_name, type=board_type)  # not an inventory board
    report = {**report, "farm_bytes_uploaded": 0}
    store_result(settings, job, artifact, board, "measured", report)
    with session_scope(settings.db_url) as s:
        run_id = s.scalar(select(RunRow.id).where(RunRow.job_id == job.id))
        sweep = s.get(SweepRow, sweep_id)
        sweep.state, sweep.finished_at = "done", utcnow()
    return Imported(run_id, sweep_id, True, model, precision, board_type, board_name, scenario)


def run_folders(folder: Path) -> list[Path]:
    """The agent run folders ``folder`` holds: itself when it has a report.json, else its sub-folders that
    do (a device check's --out). ImportError_ when it is neither."""
    folder = Path(folder)
    if (folder / REPORT).is_file() or not folder.is_dir():
        return [folder]
    runs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / REPORT).is_file())
    if not runs:
        return [folder]  # read_report says what is missing
    return runs


def import_folder(settings: Settings, folder: Path, **options: Any) -> list[Imported]:
    """One run folder, or a folder of them (one import sweep for all): every report is checked before any
    is stored, so a bad one among many stores nothing and names every bad file."""
    runs = run_folders(folder)
    problems, reports = [], []
    for run in runs:
        try:
            reports.append(read_report(run))
        except ImportError_ as exc:
            problems.append(exc)
    if problems:
        if len(problems) == 1:
            raise problems[0]
        raise ImportError_(
            f"{len(problems)} of {len(runs)} run folders cannot be imported (nothing was):\n  "
            + "\n  ".join(str(p) for p in problems),
            path=str(folder),
        )
    group = Path(folder) if len(runs) > 1 or runs[0] != Path(folder) else None
    return [
        import_run(settings, run, group=group, read=read, **options)
        for run, read in zip(runs, reports, strict=True)
    ]
