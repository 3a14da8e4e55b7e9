"""The one place the farm builds a board agent's config (the contract: workers/agent/protocol.py CONFIG):
for an ordinary run job, a thermal soak, an emulated board, with the accuracy packs the run ships, and
how long the farm waits for the agent."""

from __future__ import annotations

import math
from typing import Any

from farm.config import Settings
from farm.db.models import ArtifactRow, JobRow
from farm.fleet.sensors import agent_sensors
from farm.inventory import Board, BoardType
from farm.sweep.schema import Sweep, Thermal
from farm.workers.agent import protocol

SAMPLE_MEMORY_BYTES = 256 * 1024 * 1024  # inputs the agent pre-generates, at most
EMULATED_SAMPLES = 16  # distinct inputs on an emulated board (each one's real output is computed once)
NOISE_CHECK_S = 0.5  # the agent's pre-run host noise check (workers/agent/noise.py)
#: The accuracy packs a run may ship (farm/accuracy/runs.py).
PACKS = ("reference", "dataset")


def agent_config(
    spec: Sweep,
    job: JobRow,
    artifact: ArtifactRow,
    artifact_path: str,
    backend: str,
    log_dir: str,
    board: Board | None = None,
    board_type: BoardType | None = None,
) -> dict[str, Any]:
    """The agent's config for one run job. With the board and its type, the sensors the type carries
    (read under the board's root) and, for an emulated board, where its state lives and its time scale.
    A soak job (sweep `thermal:`) runs its own scenario for its own duration (:func:`soak_loadgen`)."""
    shape = (artifact.details or {}).get("input_shape") or [job.batch_size]
    sample_bytes = 4 * math.prod(shape)
    # An emulated board computes each distinct input's real output on this CPU before the timed test (its
    # timing is the model's); fewer distinct inputs keep that preparation short. LoadGen cycles them.
    distinct = EMULATED_SAMPLES if board is not None and board.emulation is not None else 64
    emulation = emulation_config(board) if board is not None else None
    scenario, loadgen = job.scenario, spec.loadgen.model_dump()
    if job.kind == "soak" and spec.thermal is not None:
        scenario, loadgen = spec.thermal.scenario, soak_loadgen(loadgen, spec.thermal, emulation)
    return protocol.make_config(
        artifact=artifact_path,
        artifact_sha256=artifact.file_sha256,
        backend=backend,
        scenario=scenario,
        batch_size=job.batch_size,
        loadgen=loadgen,
        sample_count=int(max(2, min(distinct, SAMPLE_MEMORY_BYTES // max(sample_bytes, 1)))),
        seed=job.repeat or 0,
        log_dir=log_dir,
        sensors=agent_sensors(board_type, board) if board is not None and board_type is not None else [],
        emulation=emulation,
        ambient_path=board.ambient_sensor if board is not None else None,
        noise_check=NOISE_CHECK_S,
        threads=board_type.threads if board_type is not None else None,  # a board CPU target's threads
    )


def emulation_config(board: Board) -> dict[str, Any] | None:
    """The agent's ``emulation`` config for an emulated board ({root, time_scale}); None for a real one."""
    if board.emulation is None:
        return None
    return {"root": board.emulation.root, "time_scale": board.emulation.time_scale}


def soak_loadgen(loadgen: dict[str, Any], cfg: Thermal, emulation: dict[str, Any] | None) -> dict[str, Any]:
    """A soak's LoadGen settings: it runs for ``duration_s`` of board time (scaled to wall time on an
    emulated board), with no query cap (farm/services/soak.py analyses what comes back)."""
    scale = float((emulation or {}).get("time_scale") or 1.0)
    return {**loadgen, "min_duration_ms": max(1, round(cfg.duration_s * 1000 * scale)), "max_query_count": 0}


def with_packs(config: dict[str, Any], accuracy: dict[str, Any]) -> dict[str, Any]:
    """The config with the accuracy packs the run ships (``reference``, ``dataset``: paths on the board)."""
    return protocol.make_config(**{**config, **{k: v for k, v in accuracy.items() if k in PACKS}})


def timeout_s(settings: Settings, spec: Sweep, job: JobRow, config: dict[str, Any]) -> float:
    """How long the farm waits for the agent: 4x the longest LoadGen test (a soak's own duration when
    longer), once per Server probe, plus the margin and the noise check."""
    longest_ms = max(spec.loadgen.min_duration_ms, config["loadgen"]["min_duration_ms"])
    tests = spec.loadgen.server_search_probes if job.scenario == "Server" else 1  # one LoadGen test per probe
    return longest_ms / 1000 * 4 * tests + settings.agent_timeout_margin_s + NOISE_CHECK_S
