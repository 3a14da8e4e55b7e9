"""Altair charts (Vega-Lite): declarative, interactive tooltips, and already a Streamlit dependency.

Emulated series are drawn faded and carry "(emulated)" in their label, so they never pass for measured.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

SOURCE_OPACITY = alt.Opacity(
    "source:N",
    scale=alt.Scale(domain=["measured", "emulated"], range=[1.0, 0.5]),
    legend=alt.Legend(title="source"),
)


#: One colour per source on every chart: a colour means where a figure came from, nothing else.
SOURCES = ["measured", "emulated", "predicted"]
SOURCE_COLOURS = alt.Scale(domain=SOURCES, range=["#1f77b4", "#ff7f0e", "#9467bd"])


def source_color(field: str = "source") -> alt.Color:
    return alt.Color(f"{field}:N", scale=SOURCE_COLOURS, title="source")


def interval_panels(
    df: pd.DataFrame, *, x: str, panel: str, sort: list[str], one: bool = False
) -> alt.FacetChart:
    """One panel per `panel` value: a point at `value` with a bar from `low` to `high` per `x`, coloured by
    source (SOURCE_COLOURS). With `one`, a dashed line at 1 (a ratio: above it the FPGA is better)."""
    base = alt.Chart().encode(
        y=alt.Y(f"{x}:N", title=None, sort=None),
        color=source_color(),
        tooltip=[x, "source", panel, *(alt.Tooltip(f"{c}:Q", format=",.3f") for c in ("value", "low", "high")),
                 *(["verdict"] if "verdict" in df else [])],
    )  # fmt: skip
    layers = [
        base.mark_rule(strokeWidth=3, opacity=0.6).encode(x=alt.X("low:Q", title=None), x2="high:Q"),
        base.mark_point(filled=True, size=70).encode(
            x=alt.X("value:Q", title=None, scale=alt.Scale(zero=False))
        ),
    ]
    if one:
        layers.append(alt.Chart().mark_rule(strokeDash=[4, 4], color="gray").encode(x=alt.datum(1.0)))
    return (
        alt.layer(*layers, data=df)
        .properties(width=300, height=alt.Step(22))
        .facet(
            facet=alt.Facet(f"{panel}:N", title=None, sort=sort, header=alt.Header(labelFontSize=13)),
            columns=2,
        )
        .resolve_scale(x="independent", y="independent")
    )


def grouped_bars(df: pd.DataFrame, *, x: str, y: str, group: str, title: str, y_title: str) -> alt.Chart:
    """Bars of `y` per `x`, one bar per `group` side by side (e.g. percentiles per target)."""
    return (
        alt.Chart(df, title=title)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=None),
            xOffset=alt.XOffset(f"{group}:N", sort=None),
            y=alt.Y(f"{y}:Q", title=y_title),
            color=alt.Color(f"{group}:N", sort=None),
            opacity=SOURCE_OPACITY,
            tooltip=[x, group, "source", alt.Tooltip(f"{y}:Q", format=",.3f")],
        )
        .properties(height=320)
    )


def panels(
    df: pd.DataFrame, *, x: str, panel: str, value: str, color: str, sort: list[str]
) -> alt.FacetChart:
    """Small multiples: one bar chart per `panel` value (each with its own y scale), in ONE chart, so
    the browser draws one Vega view instead of one per metric."""
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=None),
            y=alt.Y(f"{value}:Q", title=None),
            color=alt.Color(f"{color}:N"),
            opacity=SOURCE_OPACITY,
            tooltip=[x, color, "source", panel, alt.Tooltip(f"{value}:Q", format=",.3f")],
        )
        .properties(width=300, height=200)
    )
    return (
        alt.layer(bars, data=df)
        .facet(
            facet=alt.Facet(f"{panel}:N", title=None, sort=sort, header=alt.Header(labelFontSize=13)),
            columns=2,
        )
        .resolve_scale(y="independent")
    )


def speedup_panels(df: pd.DataFrame, *, sort: list[str]) -> alt.FacetChart:
    """FPGA speedups over each baseline, one panel per measure, with the 1x line (above it the FPGA leads)."""
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=alt.X("fpga:N", title=None),
            xOffset=alt.XOffset("baseline:N"),
            y=alt.Y("speedup:Q", title="speedup (x)"),
            color=alt.Color("baseline:N", title="over baseline"),
            tooltip=["fpga", "baseline", "emulated", "measure", alt.Tooltip("speedup:Q", format=",.2f")],
        )
        .properties(width=210, height=220)
    )
    one = alt.Chart().mark_rule(strokeDash=[4, 4], color="gray").encode(y=alt.datum(1.0))
    return (
        alt.layer(bars, one, data=df)
        .facet(
            facet=alt.Facet("measure:N", title=None, sort=sort, header=alt.Header(labelFontSize=13)),
            columns=3,
        )
        .resolve_scale(y="independent")
    )


def histogram(samples: list[float], *, title: str, bins: int = 60) -> alt.Chart:
    """Latency distribution, binned here so a 10,000-sample run stays a small chart; p50/p99 marked."""
    values = np.asarray(samples, dtype=float)
    counts, edges = np.histogram(values, bins=bins)
    df = pd.DataFrame({"from_ms": edges[:-1], "to_ms": edges[1:], "count": counts})
    hist = (
        alt.Chart(df, title=title)
        .mark_bar()
        .encode(
            x=alt.X("from_ms:Q", title="latency (ms)", bin="binned"),
            x2="to_ms:Q",
            y=alt.Y("count:Q", title="samples"),
            tooltip=[alt.Tooltip("from_ms:Q", format=",.3f"), alt.Tooltip("to_ms:Q", format=",.3f"), "count"],
        )
    )
    marks = pd.DataFrame(
        {"label": ["p50", "p99"], "ms": [float(np.percentile(values, 50)), float(np.percentile(values, 99))]}
    )
    rules = (
        alt.Chart(marks)
        .mark_rule(strokeDash=[4, 4])
        .encode(x="ms:Q", color=alt.Color("label:N", title="percentile"), tooltip=["label", "ms"])
    )
    return (hist + rules).properties(height=300)


def trace(t_s: list[float], values: list[float], *, title: str, y_title: str) -> alt.Chart:
    df = pd.DataFrame({"t_s": t_s[: len(values)], "value": values[: len(t_s)]})
    return (
        alt.Chart(df, title=title)
        .mark_line()
        .encode(
            x=alt.X("t_s:Q", title="time in the measured window (s)"),
            y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False), axis=alt.Axis(format=",.4~f")),
            tooltip=[alt.Tooltip("t_s:Q", format=",.2f"), alt.Tooltip("value:Q", format=",.2f")],
        )
        .properties(height=240)
    )


def history(
    df: pd.DataFrame,
    *,
    title: str,
    y_title: str,
    changes: dict[str, Any] | None = None,
    label: str | None = None,
) -> alt.Chart:
    """A metric over time; points coloured by source, tooltips with the toolchain and runtime. With
    ``changes`` (farm.queries.alerts.series_changes): each segment's level with its interval, a rule at
    every change point (red: a regression, green: an improvement) and a triangle at each alert's run.
    With ``label``: x is that version label's value, in the rows' order (runs without it last)."""
    df = df.assign(created_at=pd.to_datetime(df["created_at"], utc=True, format="ISO8601"))
    if label is not None:
        df = df.assign(version=[(lb or {}).get(label, "(none)") for lb in df["labels"]])
        x = alt.X("version:O", title=label, sort=list(dict.fromkeys(df["version"])))
        changes = None  # change points are found in run order: drawn on the time axis only
    else:
        x = alt.X("created_at:T", title="run time (UTC)")
    base = alt.Chart(df.drop(columns=["labels"], errors="ignore")).encode(
        x=x,
        y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=source_color(),
    )
    line = base.mark_line(opacity=0.4)
    points = base.mark_circle(size=30).encode(
        tooltip=[
            "run_id",
            "created_at:T",
            "source",
            "board",
            "toolchain",
            "runtime",
            alt.Tooltip("value:Q", format=",.3f"),
        ]
    )
    layers = [line, points, *(_change_layers(changes) if changes else [])]
    return alt.layer(*layers, title=title).properties(height=360, padding={"left": 10, "top": 5})


CHANGE_COLOURS = alt.Scale(domain=["regression", "improvement"], range=["#d62728", "#2ca02c"])


def _change_layers(changes: dict[str, Any]) -> list[alt.Chart]:
    out: list[alt.Chart] = []
    segments = pd.DataFrame(changes.get("segments") or [])
    if not segments.empty:
        segments = segments.assign(
            start=pd.to_datetime(segments["start"], utc=True, format="ISO8601"),
            end=pd.to_datetime(segments["end"], utc=True, format="ISO8601"),
        )
        seg = alt.Chart(segments)
        out.append(
            seg.mark_rule(strokeWidth=2, color="#555").encode(
                x="start:T",
                x2="end:T",
                y="level:Q",
                tooltip=[alt.Tooltip("level:Q", format=",.4g", title="level")],
            )
        )
        bands = segments.dropna(subset=["low", "high"])
        if not bands.empty:
            out.append(
                alt.Chart(bands)
                .mark_rect(opacity=0.12, color="#555")
                .encode(x="start:T", x2="end:T", y="low:Q", y2="high:Q")
            )
    found = pd.DataFrame(changes.get("changes") or [])
    if not found.empty:
        found = found.assign(at=pd.to_datetime(found["at"], utc=True, format="ISO8601"))
        out.append(
            alt.Chart(found)
            .mark_rule(strokeDash=[4, 3], strokeWidth=2)
            .encode(
                x="at:T",
                color=alt.Color("kind:N", scale=CHANGE_COLOURS, title="change"),
                tooltip=[
                    "run_id",
                    "kind",
                    alt.Tooltip("change_pct:Q", format="+.1f", title="change %"),
                    alt.Tooltip("p_value:Q", format=".2g"),
                ],
            )
        )
    alerts = pd.DataFrame(changes.get("alerts") or [])
    if not alerts.empty and "after" in alerts:
        alerts = alerts.dropna(subset=["after"])
    if not alerts.empty:
        alerts = alerts.assign(at=pd.to_datetime(alerts["created_at"], utc=True, format="ISO8601"))
        out.append(
            alt.Chart(alerts)
            .mark_point(shape="triangle-up", size=140, filled=True, color="#d62728")
            .encode(
                x="at:T",
                y="after:Q",
                tooltip=["id", "state", alt.Tooltip("change_pct:Q", format="+.1f"), "cause"],
            )
        )
    return out


def timeline(df: pd.DataFrame, *, title: str) -> alt.Chart:
    """Board events over time, one row per board: health checks passed / failed, and state changes."""
    df = df.assign(
        at=pd.to_datetime(df["at"], utc=True, format="ISO8601"),
        event=[
            ("check passed" if ok else "check failed") if kind == "health" else f"-> {to}"
            for kind, ok, to in zip(df["kind"], df["ok"], df["to_state"], strict=True)
        ],
    )
    palette = alt.Scale(
        domain=[
            "check passed",
            "check failed",
            "-> idle",
            "-> running",
            "-> bad",
            "-> maintenance",
            "-> retired",
        ],
        range=["#2ca02c", "#d62728", "#98df8a", "#1f77b4", "#ff7f0e", "#9467bd", "#7f7f7f"],
    )
    return (
        alt.Chart(df, title=title)
        .mark_circle(size=70, opacity=0.8)
        .encode(
            x=alt.X("at:T", title="time (UTC)"),
            y=alt.Y("board:N", title=None),
            color=alt.Color("event:N", scale=palette),
            tooltip=["at:T", "board", "kind", "event", "reason"],
        )
        .properties(height=max(200, 30 * int(df["board"].nunique())))
    )


def state_bars(df: pd.DataFrame, *, title: str) -> alt.Chart:
    """Boards per type, stacked by state."""
    palette = alt.Scale(
        domain=["idle", "running", "bad", "maintenance", "retired"],
        range=["#2ca02c", "#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f"],
    )
    return (
        alt.Chart(df, title=title)
        .mark_bar()
        .encode(
            x=alt.X("type:N", title=None),
            y=alt.Y("count():Q", title="boards"),
            color=alt.Color("state:N", scale=palette),
            tooltip=["type", "state", "count()"],
        )
        .properties(height=260)
    )
