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
        y=alt.Y(f"{x}:N", title=None, sort=None, axis=alt.Axis(labelLimit=320)),  # whole target names
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
        .properties(width=220, height=alt.Step(22))
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


#: Trace axes never blow a small wiggle up to the chart's height: power starts at 0; the others span at
#: least this share of their level (a 40 C board drifting 0.3 C stays a flat line).
TRACE_MIN_SPAN = 0.10


def trace_domain(values: list[float], *, zero: bool, min_span: float = TRACE_MIN_SPAN) -> list[float]:
    """The y range of a trace: from 0 (``zero``), else the data's own range widened to at least
    ``min_span`` of its level, centred on it."""
    lo, hi = float(min(values)), float(max(values))
    if zero:
        top = max(hi, 0.0) * 1.1
        return [min(lo * 1.1, 0.0), top if top > 0 else 1.0]
    level = max(abs(lo), abs(hi))
    span = max(hi - lo, min_span * level) or 1.0
    mid = (lo + hi) / 2
    pad = 0.05 * span
    return [mid - span / 2 - pad, mid + span / 2 + pad]


def trace(
    t_s: list[float],
    values: list[float],
    *,
    title: str,
    y_title: str,
    subtitle: str | None = None,
    zero: bool = False,
    width: int = 300,
) -> alt.Chart:
    """One sensor trace over the measured window. The title is short and limited to the panel's width (the
    sensor and source go in the subtitle); the y range is trace_domain's, so noise looks like noise."""
    n = min(len(t_s), len(values))
    df = pd.DataFrame({"t_s": t_s[:n], "value": values[:n]})
    heading = alt.TitleParams(
        title, subtitle=subtitle or "", anchor="start", limit=width, subtitleColor="#666", fontSize=13
    )
    return (
        alt.Chart(df, title=heading)
        .mark_line()
        .encode(
            x=alt.X("t_s:Q", title="time in the measured window (s)"),
            y=alt.Y(
                "value:Q",
                title=y_title,
                scale=alt.Scale(domain=trace_domain(values[:n], zero=zero), nice=False, zero=zero),
                axis=alt.Axis(format=",.4~f", tickCount=5),
            ),
            tooltip=[alt.Tooltip("t_s:Q", format=",.2f"), alt.Tooltip("value:Q", format=",.2f")],
        )
        .properties(height=240, width=width)
    )


#: Time axes read in UTC with a 24-hour clock: "03 Nov 14:00", or days alone over a long history.
def time_axis(field: str, values: pd.Series, title: str) -> alt.X:
    span = (values.max() - values.min()) if len(values) else pd.Timedelta(0)
    if span > pd.Timedelta(days=20):
        fmt = "%d %b"
    elif span > pd.Timedelta(hours=20):
        fmt = "%d %b %H:%M"
    else:  # within a day: the clock alone, the day in the title
        fmt = "%H:%M" if span > pd.Timedelta(minutes=30) else "%H:%M:%S"
        if len(values):
            title = f"{title[:-1]}, {values.min():%d %b %Y})" if title.endswith(")") else title
    return alt.X(
        f"{field}:T",
        title=title,
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format=fmt, labelOverlap="greedy", labelSeparation=12, labelAngle=0),
    )


def utc_text(values: pd.Series) -> pd.Series:
    """Times as tooltips show them: "2026-11-03 14:00 UTC" (24-hour, whatever the browser's zone)."""
    return values.dt.strftime("%Y-%m-%d %H:%M UTC")


#: Runs that carry flags (noisy host, latency spread, throttled ...): a ring around the point, own legend.
FLAGGED = alt.Scale(domain=["flagged run"], range=["#e377c2"])


def history(
    df: pd.DataFrame,
    *,
    title: str,
    y_title: str,
    changes: dict[str, Any] | None = None,
    label: str | None = None,
) -> alt.Chart:
    """A metric over time; points coloured by source, tooltips with the toolchain and runtime; a run with
    flags (column ``flags``: its flags joined, "" for none) ringed with a "flagged run" legend entry. With
    ``changes`` (farm.queries.alerts.series_changes): each segment's level with its interval, a rule at
    every change point (red: a regression, green: an improvement) and a triangle at each alert's run.
    With ``label``: x is that version label's value, in the rows' order (runs without it last)."""
    df = df.assign(created_at=pd.to_datetime(df["created_at"], utc=True, format="ISO8601"))
    df = df.assign(time=utc_text(df["created_at"]))
    if "flags" not in df:
        df = df.assign(flags="")
    df = df.assign(flags=df["flags"].fillna(""))
    if label is not None:
        df = df.assign(version=[(lb or {}).get(label, "(none)") for lb in df["labels"]])
        x = alt.X("version:O", title=label, sort=list(dict.fromkeys(df["version"])))
        changes = None  # change points are found in run order: drawn on the time axis only
    else:
        x = time_axis("created_at", df["created_at"], "run time (UTC)")
    data = df.drop(columns=["labels"], errors="ignore")
    base = alt.Chart(data).encode(
        x=x,
        y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=source_color(),
    )
    tooltip = [
        "run_id",
        alt.Tooltip("time:N", title="run time"),
        "source",
        "board",
        "toolchain",
        "runtime",
        alt.Tooltip("value:Q", format=",.3f"),
        "flags",
    ]
    line = base.mark_line(opacity=0.4)
    points = base.mark_circle(size=40).encode(tooltip=tooltip)
    runs = [line, points]
    flagged = data[data["flags"] != ""]
    if len(flagged):
        runs.append(
            alt.Chart(flagged.assign(marker="flagged run"))
            .mark_point(shape="diamond", size=200, strokeWidth=2, filled=False)
            .encode(
                x=x,
                y="value:Q",
                stroke=alt.Stroke("marker:N", scale=FLAGGED, title="flags"),
                tooltip=tooltip,
            )
        )
    # Colour means the source on the runs and regression / improvement on the change rules: two scales
    # (one shared scale would paint a regression in the measured blue), one legend each.
    return (
        alt.layer(alt.layer(*runs), *(_change_layers(changes) if changes else []), title=title)
        .resolve_scale(color="independent")
        .properties(height=360, padding={"left": 10, "top": 5})
    )


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


#: Board states (farm.fleet.states), and the two a page adds: offline (the database knows the board, the
#: inventory does not list it) and unknown (the inventory cannot be read).
STATE_COLOURS = {
    "idle": "#2ca02c",
    "running": "#1f77b4",
    "bad": "#d62728",
    "maintenance": "#ff7f0e",
    "retired": "#7f7f7f",
    "offline": "#c7c7c7",
    "unknown": "#bcbd22",
}
EVENT_COLOURS = {
    "check passed": "#2ca02c",
    "check failed": "#d62728",
    **{f"-> {state}": colour for state, colour in STATE_COLOURS.items()},
    "-> idle": "#98df8a",
    "decision": "#17becf",
}
#: Streamlit fits a chart into its height by default (legend and titles included), which squeezes a chart
#: with a tall legend flat; these charts fit the width only, their height is the plot's.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def _present(colours: dict[str, str], values: pd.Series) -> alt.Scale:
    """A colour scale of the values present only (a short legend), each in its fixed colour."""
    seen = [v for v in colours if v in set(values)] + sorted(set(values) - set(colours))
    return alt.Scale(domain=seen, range=[colours.get(v, "#8c564b") for v in seen])


def timeline(df: pd.DataFrame, *, title: str) -> alt.Chart:
    """Board events over time, one row per board: health checks passed / failed (dots), and state changes
    and policy decisions (diamonds, drawn over the checks). Board names are cut at 180 px (the tooltip has
    them whole); time labels are 24-hour UTC and never overlap."""
    df = df.assign(
        at=pd.to_datetime(df["at"], utc=True, format="ISO8601"),
        event=[
            ("check passed" if ok else "check failed")
            if kind == "health"
            else (f"-> {to}" if kind == "state" and to else str(kind))
            for kind, ok, to in zip(df["kind"], df["ok"], df["to_state"], strict=True)
        ],
    )
    df = df.assign(time=utc_text(df["at"]))
    base = alt.Chart(df).encode(
        x=time_axis("at", df["at"], "time (UTC)"),
        y=alt.Y("board:N", title=None, axis=alt.Axis(labelLimit=180)),
        color=alt.Color("event:N", scale=_present(EVENT_COLOURS, df["event"]), title="event"),
        tooltip=[alt.Tooltip("time:N", title="at"), "board", "kind", "event", "reason"],
    )
    checks = base.transform_filter(alt.datum.kind == "health").mark_circle(size=60, opacity=0.8)
    changes = base.transform_filter(alt.datum.kind != "health").mark_point(
        shape="diamond", size=140, filled=True, opacity=1.0, stroke="white", strokeWidth=1
    )
    return alt.layer(checks, changes, title=title).properties(
        height=max(60, 26 * int(df["board"].nunique())), autosize=FIT_WIDTH
    )


def state_bars(df: pd.DataFrame, *, title: str) -> alt.Chart:
    """Boards per type, stacked by state: horizontal bars (long type names read flat), whole boards only
    on the count axis."""
    return (
        alt.Chart(df, title=title)
        .mark_bar()
        .encode(
            y=alt.Y("type:N", title=None, axis=alt.Axis(labelLimit=160)),
            x=alt.X("count():Q", title="boards", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color("state:N", scale=_present(STATE_COLOURS, df["state"]), title="state"),
            tooltip=["type", "state", alt.Tooltip("count():Q", title="boards")],
        )
        .properties(height=max(60, 26 * int(df["type"].nunique())), autosize=FIT_WIDTH)
    )
