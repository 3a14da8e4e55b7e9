"""Calibration of the DPU performance model on the published Vitis AI Model Zoo figures.

Why: the model's shape is physical (farm/perfmodel/perf.py); only a handful of physical quantities are unknown
(how well each MAC array is kept busy, the depthwise ALU's efficiency, sustained memory bandwidth, fixed
per-layer and per-call costs, host pre/post-processing cost). They are shared by every row, so they carry
over to models and boards the table does not have. ``fit()`` re-derives them (Nelder-Mead on the squared
log errors of fps_st and fps_mt); its result is frozen in farm/perfmodel/params.py so predictions are stable.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, replace

import numpy as np

from farm.perfmodel.configs import parse_dpu
from farm.perfmodel.params import CALIBRATED, Params
from farm.perfmodel.partition import Plan, plan
from farm.perfmodel.perf import Prediction, predict_plan
from farm.perfmodel.published import REFERENCE_BOARDS, PublishedRow, published_rows
from farm.perfmodel.target import DpuTarget, dpu_target

METRICS = ("latency_ms", "fps_st", "fps_mt")


@dataclass(frozen=True)
class RowResult:
    row: PublishedRow
    prediction: Prediction

    def predicted(self, metric: str) -> float:
        return float(getattr(self.prediction, metric))

    def measured(self, metric: str) -> float | None:
        return getattr(self.row, metric)

    def error_pct(self, metric: str) -> float | None:
        m = self.measured(metric)
        if m is None:
            return None
        return 100.0 * (self.predicted(metric) - m) / m

    def as_dict(self) -> dict:
        d = {
            "board": self.row.board,
            "dpu": self.row.dpu,
            "cores": self.row.dpu_cores,
            "clock_mhz": self.row.clock_mhz,
            "model": self.row.model,
        }
        for metric in METRICS:
            err = self.error_pct(metric)
            d[metric] = {
                "measured": self.measured(metric),
                "predicted": round(self.predicted(metric), 3),
                "error_pct": None if err is None else round(err, 2),
            }
        return d


@functools.lru_cache(maxsize=256)
def _row_target(board: str, dpu: str, cores: int, clock_mhz: float) -> DpuTarget:
    """A catalog board, or a board of the zoo table that shares a catalog board's memory and host."""
    if board in REFERENCE_BOARDS:
        like, overrides = REFERENCE_BOARDS[board]
        t = dpu_target(like, dpu=dpu, cores=cores, clock_mhz=clock_mhz)
        return replace(t, board=board, **overrides)
    return dpu_target(board, dpu=dpu, cores=cores, clock_mhz=clock_mhz)


def row_target(row: PublishedRow) -> DpuTarget:
    """The board of ``row`` from the catalog, with the row's DPU, cores and clock.

    DPUCAHX8H rows count engines as cores ("2x3E" = 6): the cores then come from the configuration."""
    cfg = parse_dpu(row.dpu)
    cores = cfg.config_cores or row.dpu_cores
    return _row_target(row.board, row.dpu, cores, row.clock_mhz)


@functools.lru_cache(maxsize=512)
def _zoo_plan(model: str, dpu: str, h: int, w: int) -> Plan:
    from farm.perfmodel.api import zoo_graph

    return plan(zoo_graph(model, 1, (h, w)), parse_dpu(dpu))


def evaluate(params: Params | None = None, rows: list[PublishedRow] | None = None) -> list[RowResult]:
    params = params or CALIBRATED
    out = []
    for row in rows or published_rows():
        h, w = row.input_hw
        pl = _zoo_plan(row.model, row.dpu, h, w)
        out.append(RowResult(row, predict_plan(pl, row_target(row), params)))
    return out


def medians(results: list[RowResult]) -> dict:
    """Median absolute % error per metric (overall) and per board."""
    overall = {}
    for metric in METRICS:
        errs = [abs(e) for r in results if (e := r.error_pct(metric)) is not None]
        overall[metric] = round(statistics.median(errs), 2) if errs else None
    per_board: dict[str, dict] = {}
    for board in dict.fromkeys(r.row.board for r in results):
        mine = [r for r in results if r.row.board == board]
        per_board[board] = {}
        for metric in METRICS:
            errs = [abs(e) for r in mine if (e := r.error_pct(metric)) is not None]
            per_board[board][metric] = round(statistics.median(errs), 2) if errs else None
    return {"overall": overall, "per_board": per_board}


# -- fitting -------------------------------------------------------------------------------------------
_NAMES = (
    "eff_zd",
    "eff_ah",
    "eff_vd",
    "dw_eff",
    "mem_eff",
    "mem_ah",
    "mem_vd",
    "layer_overhead_cycles",
    "host_cycles_per_elem",
)
_BOUNDS = {
    "eff_zd": (0.05, 1.0),
    "eff_ah": (0.05, 1.0),
    "eff_vd": (0.05, 1.0),
    "dw_eff": (0.02, 1.0),
    "mem_eff": (0.1, 0.95),
    "mem_ah": (0.1, 0.95),
    "mem_vd": (0.1, 0.95),
    "layer_overhead_cycles": (0.0, 50000.0),
    "host_cycles_per_elem": (0.1, 200.0),
}
#: Soft-L1 scale of the log errors (about 10 %): the table's releases scatter by that much for one model on
#: one board, and a few old figures are far off; squared errors would let those few steer the fit.
ROBUST_SCALE = 0.10


def _to_params(x: np.ndarray, base: Params | None = None) -> Params:
    """Parameters from the fitted vector; the rest (call_overhead_us) from ``base``."""
    base = base or CALIBRATED
    v = {}
    for name, xi in zip(_NAMES, x, strict=True):
        lo, hi = _BOUNDS[name]
        v[name] = float(min(hi, max(lo, math.exp(xi))))
    return Params(
        conv_eff={"DPUCZDX8G": v["eff_zd"], "DPUCAHX8H": v["eff_ah"], "DPUCVDX8G": v["eff_vd"]},
        dw_eff=v["dw_eff"],
        mem_eff=v["mem_eff"],
        mem_eff_ip={"DPUCAHX8H": v["mem_ah"], "DPUCVDX8G": v["mem_vd"]},
        layer_overhead_cycles=v["layer_overhead_cycles"],
        call_overhead_us=base.call_overhead_us,
        host_cycles_per_elem=v["host_cycles_per_elem"],
    )


def _from_params(p: Params) -> np.ndarray:
    vals = [
        p.conv_eff["DPUCZDX8G"],
        p.conv_eff["DPUCAHX8H"],
        p.conv_eff["DPUCVDX8G"],
        p.dw_eff,
        p.mem_eff,
        p.mem_eff_of("DPUCAHX8H"),
        p.mem_eff_of("DPUCVDX8G"),
        max(p.layer_overhead_cycles, 1.0),
        p.host_cycles_per_elem,
    ]
    return np.log(np.array(vals, dtype=float))


def loss(params: Params, rows: list[PublishedRow] | None = None, robust: bool = False) -> float:
    """Sum over every published fps_st and fps_mt of the squared log error (``robust``: soft-L1 of it)."""
    total = 0.0
    for r in evaluate(params, rows):
        for metric in ("fps_st", "fps_mt"):
            m = r.measured(metric)
            if m:
                e = math.log(r.predicted(metric) / m)
                total += (
                    2 * ROBUST_SCALE**2 * (math.sqrt(1 + (e / ROBUST_SCALE) ** 2) - 1) if robust else e * e
                )
    return total


def fit(
    start: Params | None = None,
    iterations: int = 3000,
    rows: list[PublishedRow] | None = None,
    robust: bool = False,
) -> Params:
    """Nelder-Mead over log-parameters (numpy only; about two minutes on one core for the 12-row table)."""
    start = start or CALIBRATED
    objective = functools.partial(loss, robust=robust)
    x0 = _from_params(start)
    n = len(x0)
    simplex = [x0] + [x0 + np.eye(n)[i] * 0.3 for i in range(n)]
    f = [objective(_to_params(x, start), rows) for x in simplex]
    for _ in range(iterations):
        order = np.argsort(f)
        simplex = [simplex[i] for i in order]
        f = [f[i] for i in order]
        if f[-1] - f[0] < 1e-10:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        xr = centroid + (centroid - simplex[-1])
        fr = objective(_to_params(xr, start), rows)
        if fr < f[0]:
            xe = centroid + 2 * (centroid - simplex[-1])
            fe = objective(_to_params(xe, start), rows)
            simplex[-1], f[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < f[-2]:
            simplex[-1], f[-1] = xr, fr
        else:
            xc = centroid + 0.5 * (simplex[-1] - centroid)
            fc = objective(_to_params(xc, start), rows)
            if fc < f[-1]:
                simplex[-1], f[-1] = xc, fc
            else:
                best = simplex[0]
                simplex = [best] + [best + 0.5 * (x - best) for x in simplex[1:]]
                f = [f[0]] + [objective(_to_params(x, start), rows) for x in simplex[1:]]
    return _to_params(simplex[int(np.argmin(f))], start)


def with_params(**kw) -> Params:
    return replace(CALIBRATED, **kw)
