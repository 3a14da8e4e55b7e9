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
    """The model's held-out median |error| for this board (the larger of single- and multi-thread fps:
    latency and capacity both rest on the prediction), from the zoo-table validation (docs/dpu-model.md);
    the overall held-out (new architecture) error for a board the table lacks."""
    from farm.perfmodel.params import held_out_error

    st, mt, basis = held_out_error(board_type)
    where = f"for {basis}" if basis != "overall" else "overall (a board the zoo table lacks)"
    return max(st, mt), f"held-out median |error| of fps_st {st:g} % / fps_mt {mt:g} % {where}"


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
