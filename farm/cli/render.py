"""Result rendering for the terminal: table, JSON and CSV."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from farm import metrics
from farm.sweep.labels import as_csv_cell

#: Row key -> column header: who ran what, then the terminal table's metrics with the catalog's headers.
TABLE_COLUMNS = {
    "model": "model",
    "precision": "prec",
    "batch_size": "batch",
    "scenario": "scenario",
    "target": "target",
    "board": "board",
    "source": "source",
    **{name: metrics.get(name).header for name in metrics.names(view=metrics.TABLE)},
}


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        flat = [{**r, "labels": as_csv_cell(r["labels"])} if "labels" in r else r for r in rows]
        return pd.DataFrame(flat).to_csv(index=False).rstrip("\n") if rows else ""
    if not rows:
        return "(no results)"
    table = [{label: _cell(row.get(key)) for key, label in TABLE_COLUMNS.items()} for row in rows]
    return pd.DataFrame(table).to_string(index=False)


def _cell(value: Any) -> str:
    """'-' for not measured; small figures keep three decimals so sub-millisecond latencies stay readable."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)
