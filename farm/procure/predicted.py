"""Figures for a board type with no run: the calibrated DPU performance model (farm/perfmodel).

Why only DPU boards: the DPU model was validated against the published Vitis AI figures, with a held-out
error per board (docs/dpu-model.md, leave-one-board-out); the GPU roofline has no measured rows to be
checked on, so a GPU board without runs is ruled out rather than given an error nobody measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from farm.errors import FarmError

#: Leave-one-board-out median |error| of fps_st and fps_mt (docs/dpu-model.md, "held-out board"), %.
HELD_OUT_ERROR_PCT = {"zcu104": 12.0, "vck190": 9.6, "u50": 3.6, "ultra96-v2": 16.4}
#: For a board the fit never saw (kv260, pynq-z2): the largest held-out median error.
UNSEEN_ERROR_PCT = 16.4


@dataclass(frozen=True)
class Predicted:
    latency_ms: float  # one inference of the batch, one thread
    fps_st: float
    fps_mt: float  # images/s with every core busy
    model_version: str
    error_pct: float
    error_source: str
    warnings: tuple[str, ...] = ()


#: (model, board type, batch size, catalog entry) -> Predicted, or the reason it cannot predict.
Predictor = Callable[[str, str, int, Any], "Predicted | str"]


def error_for(board_type: str) -> tuple[float, str]:
    if board_type in HELD_OUT_ERROR_PCT:
        return HELD_OUT_ERROR_PCT[board_type], f"held-out (leave-one-board-out) median error for {board_type}"
    return UNSEEN_ERROR_PCT, "largest held-out median error (a board the fit never saw)"


def perfmodel_predictor(model: str, board_type: str, batch_size: int, bt: Any) -> Predicted | str:
    """The calibrated DPU model's figures for a catalog board type, or why there are none."""
    kind = bt.accelerator.kind if bt.accelerator else None
    if kind == "gpu":
        return "no run, and the GPU roofline is uncalibrated (no validated error, docs/dpu-model.md)"
    if kind != "dpu":
        return f"no run, and no performance model for a {bt.family} board type"
    from farm.perfmodel.api import predict_board
    from farm.perfmodel.perf import MODEL_VERSION

    try:
        _plan, p = predict_board(model, board_type, batch_size=batch_size)
    except (FarmError, KeyError, ValueError) as exc:
        return f"no run, and the performance model cannot predict it: {exc}"
    error, source = error_for(board_type)
    return Predicted(
        latency_ms=p.latency_ms,
        fps_st=p.fps_st,
        fps_mt=p.fps_mt,
        model_version=MODEL_VERSION,
        error_pct=error,
        error_source=source,
        warnings=tuple(p.warnings),
    )
