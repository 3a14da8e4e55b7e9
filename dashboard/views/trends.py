"""Trends: one metric's history within one comparability fingerprint (so only like is compared with like)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm import metrics as catalog
from farm.dashboard import charts, filters, ui
from farm.dashboard.data import fetch
from farm.queries.alerts import series_changes
from farm.queries.labels import order_by_label
from farm.queries.runs import TREND_METRICS, fingerprints, selection_options, trend
from farm.queries.sweeps import flagged_runs

st.title("Trends")
st.caption(
    "A comparability fingerprint is model, precision, board type, batch size, scenario and input shape. "
    "Toolchain, runtime and model bytes are not in it: their changes are what a trend shows."
)

options = fetch(selection_options)
if not options:
    ui.empty(ui.NO_DATA)


def pick(label: str, key: str, rows: list[dict], column, default=None) -> tuple:
    values = sorted({r[key] for r in rows}, key=lambda v: (str(type(v)), v))
    value = filters.choice(label, key, values, default=default, container=column)
    return value, [r for r in rows if r[key] == value]


cols = st.columns([1.3, 1, 0.8, 1.3, 1.3, 1.9])  # the metric's name is the longest value
model, rows = pick("Model", "model", options, cols[0])
precision, rows = pick("Precision", "precision", rows, cols[1], default="int8")
batch_size, rows = pick("Batch size", "batch_size", rows, cols[2])
scenario, rows = pick("Scenario", "scenario", rows, cols[3], default="SingleStream")
target, rows = pick("Target", "target", rows, cols[4])
default_metric = "throughput_ips" if scenario == "Offline" else "latency_ms_p90"
metric = filters.choice(
    "Metric", "metric", TREND_METRICS, default=default_metric, format_func=catalog.title, container=cols[5]
)

groups = fetch(
    fingerprints, model=model, precision=precision, batch_size=batch_size, scenario=scenario, target=target
)
if len(groups) > 1:
    chosen = filters.choice(
        "Fingerprint (input shapes differ)",
        "fingerprint",
        [g["fingerprint"] for g in groups],
        format_func=lambda fp: fp[:12],
    )
else:
    chosen = groups[0]["fingerprint"]
    st.query_params.pop("fingerprint", None)

points = fetch(trend, chosen, metric)
if not points:
    ui.empty(f"No run of this fingerprint reported {metric}: choose another metric.")
label_keys = sorted({k for p in points for k in (p.get("labels") or {})})
order = filters.choice(
    "Order by", "order", ["time", *(f"label:{k}" for k in label_keys)],
    format_func=lambda o: "run time" if o == "time" else f"version label {o[6:]}",
    container=st.columns([1.3, 4.3])[0],
)  # fmt: skip
by_label = order[6:] if order.startswith("label:") else None
if by_label:
    points = order_by_label(points, by_label)
df = pd.DataFrame(points)
flags = fetch(flagged_runs, chosen)
df["flags"] = df["run_id"].map(lambda r: "; ".join(flags.get(r, [])))
ui.emulated_banner(int((df["source"] == "emulated").sum()))
label = f"{target} (emulated)" if set(df["source"]) == {"emulated"} else target
changes = fetch(series_changes, chosen, metric)
st.altair_chart(
    charts.history(
        df,
        title=f"{catalog.label(metric)}: {model} {precision} b{batch_size} {scenario} on {label}",
        y_title=catalog.title(metric),  # the label with its unit: "p50 latency (ms)"
        changes=changes,
        label=by_label,
    )
)
if (df["flags"] != "").any():
    st.caption(
        f"Pink diamonds: {int((df['flags'] != '').sum())} run(s) carry flags (a second look: noisy host, "
        "latency spread, throttling ...); the flags are in the point's tooltip and the table below."
    )
if changes["changes"]:
    st.caption(
        "Change points (farm.regressions.detect over the runs usable as a baseline; dashed: red a regression, "
        "green an improvement), each segment's median with its interval, and the alerts (triangles): "
        + "; ".join(
            f"run {c['run_id']}: {c['before']:,.4g} -> {c['after']:,.4g} ({c['change_pct']:+.1f} %)"
            for c in changes["changes"]
        )
    )
if changes["skipped"]:
    st.caption(
        "Kept but never used as a baseline: "
        + ", ".join(f"{n} run(s) {why}" for why, n in changes["skipped"].items())
    )
first, last = df["value"].iloc[0], df["value"].iloc[-1]
known = catalog.find(metric)
unit = known.unit_label if known else ""
if not first or last == first or known is None or known.better == "neither":
    verdict = ""
else:
    verdict = ": better" if catalog.is_improvement(metric, first, last) else ": worse"
if len(df) == 1:
    st.info(
        "One run of this selection so far: a trend starts with the next sweep that runs it (`farm submit` "
        "again, or a schedule: docs/schedules.md)."
    )
cols = st.columns(4)
cols[0].metric("runs", len(df))
cols[1].metric(
    f"latest ({unit})" if unit else "latest",
    ui.number(last),
    delta=f"{(last - first) / first * 100:+.1f} % since the first point{verdict}" if verdict else None,
    delta_color=ui.delta_color(metric),  # green when it went the metric's better way, red when worse
    help=f"{catalog.label(metric)}: {known.better_text}" if known else None,
)
cols[2].metric(f"median ({unit})" if unit else "median", ui.number(df["value"].median()))
cols[3].metric("fingerprint", chosen[:12])
df.insert(1, "run", df["run_id"].map(ui.run_link))
df["labels"] = df["labels"].map(lambda lb: ";".join(f"{k}={v}" for k, v in sorted((lb or {}).items())))
ui.table(df.iloc[::-1], "trend", column_config={"run": ui.RUN_LINK})
