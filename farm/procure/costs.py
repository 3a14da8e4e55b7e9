"""Prices, power and economics: the catalog's figures, a costs file's overrides, and the defaults.

Why here and not in the catalog alone: a buyer has quotes and an electricity tariff the catalog cannot
know, so ``costs.yaml`` may override any board type's price block and any economic figure. It is read like
every other file a user types (farm/sweep/yaml_lines.py): bounded, and every error is file:line: field.
Every figure keeps where it came from, so outputs can say which ones are placeholders.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from farm.procure.workload import ProcureError
from farm.sweep.yaml_lines import Path_, dotted, line_for, load_with_lines, read_yaml_text

HOURS_PER_YEAR = 8760.0


class CostsError(ProcureError):
    """A costs file is malformed: file:line: field, exit 2."""


@dataclass(frozen=True)
class Economics:
    """The economic assumptions, every one shown in every output (defaults: docs/procurement.md)."""

    electricity_usd_per_kwh: float = 0.15  # a typical commercial tariff (US ~0.13, EU higher)
    pue: float = 1.0  # edge boards in an office; ~1.4 for a datacenter (override per board type)
    lifetime_years: float = 3.0  # a typical accelerator refresh cycle
    discount_rate: float = 0.05  # a cost of capital; 0 gives straight-line amortisation
    duty_cycle: float = 1.0  # share of the time the load is served (1.0: the stated load 24/7)
    headroom: float = 0.30  # capacity kept free: load peaks, a board's drift, a failed board's share
    spares: int = 0  # extra boards, a count
    spares_pct: float = 0.0  # or a share of the boards needed (rounded up)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BoardCost:
    """One board type's price and power, with where each came from."""

    board_type: str
    list_usd: float | None
    source: str
    date: str
    placeholder: bool
    host_share_usd: float = 0.0
    host_share_w: float = 0.0
    host_share_placeholder: bool = False
    idle_w: float | None = None
    idle_source: str = ""
    tdp_w: float | None = None
    active_w: float | None = None  # an override of the active power (else runs' power_w, else TDP)
    pue: float | None = None  # an override of the economics' PUE for this type
    origin: str = "catalog"  # catalog | costs file

    @property
    def unit_usd(self) -> float:
        return float(self.list_usd or 0) + self.host_share_usd

    def placeholders(self) -> list[str]:
        out = []
        if self.placeholder:
            out.append(f"{self.board_type} list price ${self.list_usd:,.0f} ({self.source or 'no source'})")
        if self.host_share_placeholder and (self.host_share_usd or self.host_share_w):
            out.append(
                f"{self.board_type} host share ${self.host_share_usd:,.0f} and {self.host_share_w:g} W (estimate)"
            )
        return out


@dataclass(frozen=True)
class Costs:
    economics: Economics
    boards: dict[str, BoardCost]
    source: str = "catalog"  # the costs file's path when one was read

    def to_json(self) -> dict[str, Any]:
        return {
            "economics": self.economics.to_json(),
            "costs_file": None if self.source == "catalog" else self.source,
            "boards": {k: asdict(v) for k, v in sorted(self.boards.items())},
        }


def from_catalog(board_types: dict[str, Any]) -> Costs:
    """Prices and power as the board-type catalog gives them (inventory/board-types.yaml)."""
    boards = {}
    for name, bt in board_types.items():
        price = bt.price
        static = bt.power.static_w if bt.power else None
        idle = price.idle_w if price and price.idle_w is not None else static
        idle_source = (
            "catalog price.idle_w" if price and price.idle_w is not None
            else "catalog power model static_w" if static is not None else ""
        )  # fmt: skip
        boards[name] = BoardCost(
            board_type=name,
            list_usd=price.list_usd if price else bt.list_price_usd,
            source=(
                price.source if price else "catalog list_price_usd" if bt.list_price_usd is not None else ""
            ),
            date=price.date if price else "",
            placeholder=price.placeholder if price else True,
            host_share_usd=price.host_share_usd if price else 0.0,
            host_share_w=price.host_share_w if price else 0.0,
            host_share_placeholder=price.host_share_placeholder if price else False,
            idle_w=idle,
            idle_source=idle_source,
            tdp_w=bt.tdp_w,
        )
    return Costs(economics=Economics(), boards=boards)


# -- costs.yaml ----------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _EconomicsIn(_Strict):
    electricity_usd_per_kwh: float | None = Field(default=None, ge=0)
    pue: float | None = Field(default=None, ge=1, le=5)
    lifetime_years: float | None = Field(default=None, gt=0, le=30)
    discount_rate: float | None = Field(default=None, ge=0, le=1)
    duty_cycle: float | None = Field(default=None, gt=0, le=1)
    headroom: float | None = Field(default=None, ge=0, lt=1)
    spares: int | str | None = None

    @field_validator("spares")
    @classmethod
    def _spares(cls, value: int | str | None) -> int | str | None:
        if value is None or (isinstance(value, int) and value >= 0):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?\s*%", value.strip()):
            return value
        raise ValueError("a count of boards (>= 0) or a percent such as '10%'")


class _BoardIn(_Strict):
    list_usd: float | None = Field(default=None, ge=0)
    source: str | None = None
    date: str | int | None = None
    placeholder: bool | None = None
    host_share_usd: float | None = Field(default=None, ge=0)
    host_share_w: float | None = Field(default=None, ge=0)
    host_share_placeholder: bool | None = None
    idle_w: float | None = Field(default=None, ge=0)
    active_w: float | None = Field(default=None, gt=0)
    pue: float | None = Field(default=None, ge=1, le=5)


class _CostsIn(_Strict):
    economics: _EconomicsIn = _EconomicsIn()
    board_types: dict[str, _BoardIn] = {}


def parse_spares(value: int | str | None) -> tuple[int, float]:
    """``(count, percent)`` from 2 or "10%"."""
    if value is None:
        return 0, 0.0
    if isinstance(value, int):
        return value, 0.0
    return 0, float(value.strip().rstrip("%").strip())


def load_costs(path: Path, base: Costs) -> Costs:
    """``base`` with a costs file's overrides; CostsError (file:line: field) for anything wrong in it."""
    text = read_yaml_text(path, what="costs file", error=CostsError)
    return parse_costs(text, str(path), base)


def parse_costs(text: str, source: str, base: Costs) -> Costs:
    data, lines = load_with_lines(text, source, error=CostsError)

    def fail(message: str, loc: Path_) -> CostsError:
        return CostsError(message, path=source, line=line_for(lines, loc) or 1, field=dotted(loc) or None)

    if data is None:
        return replace(base, source=source)
    if not isinstance(data, dict):
        raise CostsError(
            "a costs file must be a mapping with economics: and/or board_types:", path=source, line=1
        )
    try:
        spec = _CostsIn.model_validate(data)
    except ValidationError as exc:
        from farm.sweep.explain import explain

        msg, loc = explain(exc.errors()[0], _CostsIn)
        # a union's member names (int / str) are pydantic's, not the file's
        loc = tuple(p for p in loc if p not in ("int", "str", "float", "bool"))
        raise fail(msg, loc) from None
    econ = base.economics
    given = {k: v for k, v in spec.economics.model_dump().items() if v is not None and k != "spares"}
    if spec.economics.spares is not None:
        count, pct = parse_spares(spec.economics.spares)
        given.update(spares=count, spares_pct=pct)
    econ = replace(econ, **given)
    boards = dict(base.boards)
    for name, over in spec.board_types.items():
        if name not in boards:
            raise fail(
                f"unknown board type {name!r} (the catalog has: {', '.join(sorted(boards))})",
                ("board_types", name),
            )
        changes = {k: v for k, v in over.model_dump().items() if v is not None}
        if "date" in changes:
            changes["date"] = str(changes["date"])
        if "list_usd" in changes:
            # a new figure from the file: its source is the file unless it names one, and a figure someone
            # typed is a placeholder only when they say so
            changes.setdefault("source", f"costs file {Path(source).name}")
            changes.setdefault("placeholder", False)
            changes.setdefault("date", "")
        if "idle_w" in changes:
            changes["idle_source"] = "costs file"
        boards[name] = replace(boards[name], **changes, origin="costs file")
    return Costs(economics=econ, boards=boards, source=source)


def check_economics(e: Economics) -> None:
    """The same bounds as the costs file's, for economics built in code or from CLI options."""
    checks = (
        ("electricity_usd_per_kwh", e.electricity_usd_per_kwh >= 0),
        ("pue", 1 <= e.pue <= 5),
        ("lifetime_years", 0 < e.lifetime_years <= 30),
        ("discount_rate", 0 <= e.discount_rate <= 1),
        ("duty_cycle", 0 < e.duty_cycle <= 1),
        ("headroom", 0 <= e.headroom < 1),
        ("spares", e.spares >= 0),
        ("spares_pct", 0 <= e.spares_pct <= 1000),
    )
    for name, ok in checks:
        value = getattr(e, name)
        if not ok or not math.isfinite(float(value)):
            raise ProcureError(f"{value!r} is out of range", field=f"economics.{name}")


@dataclass
class Assumptions:
    """Everything a figure rests on, carried by every output."""

    workload: dict[str, Any]
    economics: dict[str, Any]
    costs_file: str | None
    prediction_error: dict[str, Any]
    rules: dict[str, str]
    bootstrap: dict[str, Any]
    placeholders_used: list[str] = field(default_factory=list)
