"""Result rendering for the terminal: table, JSON and CSV."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from farm import metrics
from farm.sweep.labels import as_csv_cell

#: Row key -> column header: the run, who ran what, then the terminal table's metrics with the catalog's
#: headers, then LoadGen's verdict and the flags (short), so a number needing a second look says so.
TABLE_COLUMNS = {
    "run_id": "run",
    "model": "model",
    "precision": "prec",
    "batch_size": "batch",
    "scenario": "scenario",
    "target": "target",
    "board": "board",
    "source": "source",
    **{name: metrics.get(name).header for name in metrics.names(view=metrics.TABLE)},
    "result_valid": "loadgen",
    "flags": "flags",
}


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        flat = [_csv_row(r) for r in rows]
        return pd.DataFrame(flat).to_csv(index=False).rstrip("\n") if rows else ""
    if not rows:
        return "(no results)"
    table = [{label: _table_cell(key, row.get(key)) for key, label in TABLE_COLUMNS.items()} for row in rows]
    return pd.DataFrame(table).to_string(index=False)


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """Labels as ``k=v;k=v`` and flags as ``flag;flag`` (whole), so a CSV cell never holds a Python repr."""
    out = dict(row)
    if "labels" in out:
        out["labels"] = as_csv_cell(out["labels"])
    if isinstance(out.get("flags"), list):
        out["flags"] = ";".join(str(f) for f in out["flags"])
    return out


def _table_cell(key: str, value: Any) -> str:
    if key == "result_valid":
        return validity(value)
    if key == "flags":
        return short_flags(value)
    return _cell(value)


def validity(value: bool | None) -> str:
    """LoadGen's verdict as it prints it: VALID / INVALID, '-' when the run has none."""
    return "-" if value is None else ("VALID" if value else "INVALID")


def short_flags(flags: list[str] | None) -> str:
    """Each flag's name without its detail ("unstable: cv 7% > 5% ..." -> "unstable"), comma-joined; the
    whole text is in JSON, CSV and `farm show`."""
    return ",".join(str(f).split(":", 1)[0].strip() for f in flags or []) or "-"


def _cell(value: Any) -> str:
    """'-' for not measured; small figures keep three decimals so sub-millisecond latencies stay readable."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)
