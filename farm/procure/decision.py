"""What a procurement decision holds: the candidates (priced board types), the ruled-out ones and why, the
verdict on the top two, the cheapest mix, and their JSON shapes (the CLI's --json, the report, the dashboard).

Apart from the ranking (farm.procure.rank) so that the what-ifs re-pricing a made decision
(farm.procure.reprice) and the report read these types without importing how a decision is reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from farm.procure.costs import Economics
from farm.procure.workload import Workload


@dataclass
class Basis:
    """What re-pricing needs (sensitivity, mixes): not part of the JSON."""

    capacity: float
    draws: np.ndarray
    unit_usd: float
    active_w: float
    idle_w: float
    host_w: float
    pue: float | None
    served_per_demand: float  # inferences/s served per unit of demand


@dataclass
class Candidate:
    board_type: str
    precision: str
    source: str  # measured | emulated | predicted
    capacity_basis: str
    capacity_unit: str
    capacity_qps: float  # in capacity_unit (queries/s, images/s or streams): the JSON name the brief fixed
    capacity_qps_low: float
    capacity_qps_high: float
    boards_needed: int
    boards_needed_low: float
    boards_needed_high: float
    unit_price_usd: float
    capex_usd: float
    capital_usd_per_year: float
    energy_kwh_per_year: float
    energy_usd_per_year: float
    tco_usd_per_year: float
    tco_usd_per_year_low: float
    tco_usd_per_year_high: float
    tco_usd_lifetime: float
    usd_per_million_inferences: float | None
    inferences_per_joule: float | None
    capacity_per_kusd: float  # performance per dollar: capacity per $1,000 of one board (with host share)
    active_w: float
    active_w_source: str
    idle_w: float
    idle_w_source: str
    run_ids: list[int]
    newest_run_at: str | None
    newest_run_age_days: float | None
    prediction_error_pct: float | None
    accuracy: dict[str, Any]
    placeholders_used: list[str]
    warnings: list[str]
    rank: int = 0
    # one query's p99 latency (SingleStream runs' median, else the model's prediction): the Pareto chart's x
    latency_ms_p99: float | None = None
    _basis: Basis | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        tag = "" if self.source == "measured" else f" ({self.source})"
        return f"{self.board_type} {self.precision}{tag}"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        out["label"] = self.label
        return {k: _finite(v) for k, v in out.items()}


@dataclass
class RuledOut:
    board_type: str
    precision: str | None
    source: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Verdict:
    status: str  # clear | too close | single | none
    text: str
    cheapest: str | None = None
    runner_up: str | None = None
    p_first_cheaper: float | None = None
    intervals_overlap: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Mix:
    parts: dict[str, int]  # candidate label -> boards
    tco_usd_per_year: float
    capex_usd: float
    saving_usd_per_year: float  # against the cheapest single type

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Decision:
    assumptions: dict[str, Any]
    candidates: list[Candidate]
    ruled_out: list[RuledOut]
    verdict: Verdict
    mix: Mix | None = None
    workload: Workload | None = field(default=None, repr=False)
    economics: Economics | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "assumptions": self.assumptions,
            "candidates": [c.to_json() for c in self.candidates],
            "ruled_out": [r.to_json() for r in self.ruled_out],
            "verdict": self.verdict.to_json(),
        }
        if self.mix is not None:
            out["mix"] = self.mix.to_json()
        return out


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
