"""Compare: one model, precision, batch size and scenario across every target, FPGA vs GPU vs CPU."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm import metrics as catalog
from farm.dashboard import charts, filters, ui
from farm.dashboard.data import fetch
from farm.queries.runs import (
    COMPARE_METRICS,
    LATENCY_PERCENTILES,
    compare,
    selection_options,
    speedups,
    sweeps_for_selection,
)

st.title("Compare targets")

options = fetch(selection_options)
if not options:
    ui.empty(ui.NO_DATA)


def pick(label: str, key: str, rows: list[dict], column, default=None) -> tuple:
    values = sorted({r[key] for r in rows}, key=lambda v: (str(type(v)), v))
    value = filters.choice(label, key, values, default=default, container=column)
    return value, [r for r in rows if r[key] == value]


cols = st.columns(5)
model, rows = pick("Model", "model", options, cols[0])
precision, rows = pick("Precision", "precision", rows, cols[1], default="int8")
batch_size, rows = pick("Batch size", "batch_size", rows, cols[2])
scenario, rows = pick("Scenario", "scenario", rows, cols[3], default="SingleStream")
include_emulated = filters.flag(
    "Include emulated", "emulated", default=True, help=ui.EMULATED_NOTE, container=cols[4]
)

selection = {"model": model, "precision": precision, "batch_size": batch_size, "scenario": scenario}
LATEST = "latest"
sweeps = {row["sweep_id"]: row for row in fetch(sweeps_for_selection, **selection)}


def sweep_label(value: str) -> str:
    if value == LATEST:
        return "Latest sweep per target"
    row = sweeps[value]
    return (
        f"{row['name']} · {row['created_at'][:16].replace('T', ' ')} · {row['targets']} targets · {value[:8]}"
    )


sweep = filters.choice("Sweep", "sweep", [LATEST, *sweeps], default=LATEST, format_func=sweep_label)
sweep_id = None if sweep == LATEST else sweep

results = fetch(compare, **selection, include_emulated=include_emulated, sweep_id=sweep_id)
if not results:
    ui.empty("No measured results for this selection: tick *Include emulated* or choose another one.")
st.caption(
    (
        "Per target: the median over the repeats of the latest sweep that ran this selection. "
        if sweep_id is None
        else f"Per target: the median over the repeats of sweep {sweeps[sweep_id]['name']} ({sweep_id}). "
    )
    + "Speedups and perf/W compare each FPGA with each CPU and GPU baseline."
)
ui.emulated_banner(sum(r["source"] == "emulated" for r in results))

df = pd.DataFrame(results)
latency_cols = [f"latency_ms_{p}" for p in LATENCY_PERCENTILES]
has = {c: df[c].notna().any() for c in df.columns}

if any(has[c] for c in latency_cols):
    long = df.melt(
        id_vars=["label", "source"], value_vars=latency_cols, var_name="percentile", value_name="ms"
    )
    long["percentile"] = long["percentile"].str.removeprefix("latency_ms_").str.replace("_", ".")
    st.altair_chart(
        charts.grouped_bars(
            long.dropna(),
            x="label",
            y="ms",
            group="percentile",
            title="Latency percentiles",
            y_title=catalog.get(latency_cols[0]).unit_label,
        )
    )
else:
    st.info(f"No latency percentiles for {scenario}: its headline is throughput.")

PANELS = {
    name: catalog.get(name).title
    for name in ("throughput_ips", "inferences_per_joule", "energy_mj_per_inference", "power_w")
}
reported = [m for m in PANELS if has.get(m)]
if reported:
    long = df.melt(
        id_vars=["label", "source", "family"], value_vars=reported, var_name="metric", value_name="value"
    )
    long["metric"] = long["metric"].map(PANELS)
    st.altair_chart(
        charts.panels(
            long.dropna(),
            x="label",
            panel="metric",
            value="value",
            color="family",
            sort=list(PANELS.values()),
        )
    )
unreported = [title for m, title in PANELS.items() if not has.get(m)]
if unreported:
    st.info(f"No target reported {', '.join(unreported)} for this selection.")

missing = [
    f"{r['label']}: {', '.join(m for m in ('throughput_ips', 'latency_ms_p99', 'power_w') if r[m] is None)}"
    for r in results
    if any(r[m] is None for m in ("throughput_ips", "latency_ms_p99", "power_w"))
]
if missing:
    st.caption("Not reported (shown as empty): " + "; ".join(missing))

st.subheader("Per target")
shown = df.drop(columns=["run_ids"]).assign(sweep=df["sweep_id"].map(ui.sweep_link))
ui.table(
    shown.drop(columns=["sweep_id"]),
    "compare",
    column_config={"sweep": ui.SWEEP_LINK, **ui.metric_columns(COMPARE_METRICS)},
)

st.subheader("FPGA speedup over the CPU and GPU baselines")
ups = speedups(results)
if not ups:
    st.info("Speedups need at least one FPGA target and one CPU or GPU baseline in this selection.")
else:
    ups_df = pd.DataFrame(ups)
    MEASURES = {
        "throughput_speedup": "throughput",
        "p50_latency_speedup": "p50 latency",
        "perf_per_watt_ratio": "perf per watt",
    }
    long = ups_df.melt(
        id_vars=["fpga", "baseline", "emulated"],
        value_vars=list(MEASURES),
        var_name="measure",
        value_name="speedup",
    ).dropna()
    if len(long):
        long["measure"] = long["measure"].map(MEASURES)
        st.altair_chart(charts.speedup_panels(long, sort=list(MEASURES.values())))
    ui.table(ups_df, "speedups")
