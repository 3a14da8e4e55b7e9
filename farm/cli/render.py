"""Rendering for the terminal: the one table style every command uses, and results as table, JSON or CSV.

The table conventions (docs/cli.md): units in the headers ("p50 ms"), numbers right-aligned, "-" where there
is no value (never "None"), timestamps in local time to the second, and at most 120 columns unless --wide:
long text cells are cut first (with "…"), then the least needed columns left out, and a last line says so.
Machine formats (--format json / csv) are not touched by any of this: they keep ISO 8601 timestamps in UTC.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from farm import metrics

#: The width a table keeps to unless --wide.
TABLE_WIDTH = 120
#: Between two columns.
GAP = "  "
#: A text cell is not cut below this many characters (nor below its header).
MIN_CUT = 10
WIDE_HINT = "(--wide for all columns)"


@dataclass(frozen=True)
class Column:
    """One column: the row key it shows, its header (with the unit: "p50 ms"), how a value becomes text
    (default :func:`cell`), its alignment (default: right when every value is a number), ``drop``: when the
    table is too wide, columns with a higher ``drop`` are left out first (0: only after every other one,
    right to left), ``wrap``: the cell wraps onto more lines instead of being cut (the last column only),
    ``color``: value -> a click colour for the cell (None: plain)."""

    key: str
    header: str
    fmt: Callable[[Any], str] | None = None
    align: str | None = None
    drop: int = 0
    wrap: bool = False
    color: Callable[[Any], str | None] | None = None


ColumnSpec = Column | tuple[str, str]


def cell(value: Any) -> str:
    """Any value as a table cell: "-" for none, yes/no, two decimals (three below 1), lists comma-joined,
    a datetime in local time; one line."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN: not measured
            return "-"
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, (list, tuple, set)):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "-"
    text = str(value)
    return " ".join(text.split()) if any(c in text for c in "\n\r\t") else text  # one line


def local_time(value: datetime | str | None) -> str:
    """A timestamp (a datetime, naive meaning UTC as the database gives it, or ISO 8601 text) in this
    machine's local time, to the second: ``2026-12-06 01:22:05``; "-" for none."""
    when = _as_datetime(value)
    if when is None:
        return "-" if value in (None, "") else str(value)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def age(value: datetime | str | None, now: datetime | None = None) -> str:
    """How long ago, in one unit: ``40 s``, ``12 min``, ``5 h``, ``3 d``; "-" for none."""
    when = _as_datetime(value)
    if when is None:
        return "-"
    seconds = max(0.0, ((now or datetime.now(UTC)) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size or (unit == "min" and seconds >= 90):
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _column(spec: ColumnSpec) -> Column:
    return spec if isinstance(spec, Column) else Column(*spec)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


@dataclass
class Table:
    """A laid-out table: its header line, one list of lines per row (more than one where a cell wraps) and
    the note saying what --wide would add (empty when nothing is left out)."""

    header: str
    rows: list[list[str]]
    note: str

    def lines(self) -> list[str]:
        return [
            self.header,
            *(line for row in self.rows for line in row),
            *([self.note] if self.note else []),
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def layout(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[ColumnSpec],
    *,
    wide: bool = False,
    width: int = TABLE_WIDTH,
) -> Table:
    """Lay ``rows`` out in ``columns`` (see :class:`Column`) within ``width`` characters unless ``wide``."""
    cols = [_column(c) for c in columns]
    texts = [[(c.fmt or cell)(r.get(c.key)) for c in cols] for r in rows]
    right = [
        c.align == "right"
        if c.align
        else any(r.get(c.key) is not None for r in rows) and all(r.get(c.key) is None or _is_number(r.get(c.key)) for r in rows)
        for c in cols
    ]  # fmt: skip
    widths = [max([len(c.header), *(len(t[i]) for t in texts)]) for i, c in enumerate(cols)]
    shown = list(range(len(cols)))
    cut = False

    def total() -> int:
        return sum(widths[i] for i in shown) + len(GAP) * (len(shown) - 1)

    dropped: list[int] = []
    if not wide:
        wrap = shown[-1] if cols[shown[-1]].wrap else None
        least = {wrap: max(len(cols[wrap].header), 2 * MIN_CUT)} if wrap is not None else {}

        def least_total() -> int:
            return total() - sum(widths[i] - min(widths[i], w) for i, w in least.items() if i in shown)

        # First the columns marked to go first (the highest drop first, right to left among equals).
        while least_total() > width and any(cols[i].drop for i in shown):
            victim = max((i for i in shown if cols[i].drop), key=lambda i: (cols[i].drop, i))
            shown.remove(victim)
            dropped.append(victim)
        if wrap is not None:  # a wrapping last column takes the room that is left, down to its least
            widths[wrap] = max(min(widths[wrap], width - (total() - widths[wrap])), least[wrap])
        # Then cut the widest text cells, a character at a time, down to MIN_CUT (or the header).
        while total() > width:
            cuttable = [i for i in shown if not right[i] and i != wrap
                        and widths[i] > max(MIN_CUT, len(cols[i].header))]  # fmt: skip
            if not cuttable:
                break
            widths[max(cuttable, key=lambda i: widths[i])] -= 1
            cut = True
        # Then leave columns out, right to left; never the first, nor the wrapping one (it only wraps).
        while total() > width and (gone := [i for i in shown[1:] if i != wrap]):
            shown.remove(gone[-1])
            dropped.append(gone[-1])
        cut = cut and any(len(t[i]) > widths[i] for t in texts for i in shown if i != wrap)

    def line(values: list[str], colored: list[str | None] | None = None) -> str:
        parts = []
        for n, i in enumerate(shown):
            text = values[n]
            padded = text.rjust(widths[i]) if right[i] else text.ljust(widths[i])
            color = colored[n] if colored else None
            parts.append(click.style(padded, fg=color) if color else padded)
        return GAP.join(parts).rstrip()

    out_rows = []
    for r, t in zip(rows, texts, strict=True):
        chunks = []
        for i in shown:
            if cols[i].wrap and not wide:
                chunks.append(textwrap.wrap(t[i], widths[i], break_on_hyphens=False) or [""])
            else:
                chunks.append([t[i] if wide else _cut(t[i], widths[i])])
        colors = [cols[i].color(r.get(cols[i].key)) if cols[i].color else None for i in shown]
        height = max(len(c) for c in chunks)
        row_lines = [
            line([c[k] if k < len(c) else "" for c in chunks], colors if k == 0 else None)
            for k in range(height)
        ]
        out_rows.append(row_lines)
    header = line([cols[i].header for i in shown])
    said = []
    if dropped:
        said.append(
            f"{len(dropped)} column{'s' if len(dropped) > 1 else ''} left out ({', '.join(cols[i].header for i in sorted(dropped))})"
        )
    if cut:
        said.append("long cells cut")
    note = f"… {' and '.join(said)} {WIDE_HINT}" if said else ""
    return Table(header, out_rows, note)


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[ColumnSpec],
    *,
    wide: bool = False,
    width: int = TABLE_WIDTH,
    empty: str = "(none)",
) -> str:
    """The table as text (``empty`` when there is no row)."""
    if not rows:
        return empty
    return str(layout(rows, columns, wide=wide, width=width))


# --- results: `farm results`, `farm submit`, `farm demo` --------------------------------------------------

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

#: Left out first when the results table is wider than the terminal (higher first): what `farm show` has.
_RESULTS_DROP = {"int8_top1_agreement": 5, "latency_ms_p90": 4, "energy_mj_per_inference": 3, "board": 2,
                 "batch_size": 1}  # fmt: skip


def _result_columns() -> list[Column]:
    special: dict[str, Callable[[Any], str]] = {
        "result_valid": lambda v: validity(v),
        "flags": lambda v: short_flags(v),
    }
    return [
        Column(key, header, fmt=special.get(key), align="right" if metrics.find(key) else None,
               drop=_RESULTS_DROP.get(key, 0))
        for key, header in TABLE_COLUMNS.items()
    ]  # fmt: skip


def render(rows: list[dict[str, Any]], fmt: str, wide: bool = False) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        import pandas as pd

        flat = [_csv_row(r) for r in rows]
        return pd.DataFrame(flat).to_csv(index=False).rstrip("\n") if rows else ""
    return table(rows, _result_columns(), wide=wide, empty="(no results)")


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """Labels as ``k=v;k=v`` and flags as ``flag;flag`` (whole), so a CSV cell never holds a Python repr."""
    from farm.sweep.labels import as_csv_cell

    out = dict(row)
    if "labels" in out:
        out["labels"] = as_csv_cell(out["labels"])
    if isinstance(out.get("flags"), list):
        out["flags"] = ";".join(str(f) for f in out["flags"])
    return out


def validity(value: bool | None) -> str:
    """LoadGen's verdict as it prints it: VALID / INVALID, '-' when the run has none."""
    return "-" if value is None else ("VALID" if value else "INVALID")


def short_flags(flags: list[str] | None) -> str:
    """Each flag's name without its detail ("unstable: cv 7% > 5% ..." -> "unstable"), comma-joined; the
    whole text is in JSON, CSV and `farm show`."""
    return ",".join(str(f).split(":", 1)[0].strip() for f in flags or []) or "-"
