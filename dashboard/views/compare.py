"""Compare: FPGA vs GPU vs CPU on one consistent selection (farm.queries.compare, docs/compare.md): which
wins per metric and by how much, every figure with its interval, every ratio with a verdict, and the flags,
validity, source and sweep of each row in sight. Colour means the source everywhere (charts.SOURCE_COLOURS)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm import metrics as catalog
from farm.dashboard import charts, filters, ui
from farm.dashboard.data import fetch
from farm.queries.compare import HEADLINE, RATIOS, CompareError, Comparison, compare_targets, sweeps_for_model
from farm.queries.runs import selection_options

st.title("Compare targets")

options = fetch(selection_options)
if not options:
    ui.empty(ui.NO_DATA)


def pick(label: str, key: str, rows: list[dict], column, default=None, extra: tuple = ()) -> tuple:
    values = [*extra, *sorted({r[key] for r in rows}, key=lambda v: (str(type(v)), v))]
    value = filters.choice(label, key, values, default=default, container=column)
    return value, [r for r in rows if value in extra or r[key] == value]


BEST = "best"
LATEST = "latest"
# One compact row of filters and one of switches, so the first screen (1366x768 included) already shows
# which wins.
cols = st.columns([2, 0.9, 1.5, 1.1, 3])
model, rows = pick("Model", "model", options, cols[0])
batch_size, rows = pick("Batch size", "batch_size", rows, cols[1], default=1)
scenario, rows = pick("Scenario", "scenario", rows, cols[2], default="SingleStream")
precision, rows = pick("Precision", "precision", rows, cols[3], default=BEST, extra=(BEST,))
sweeps = {r["sweep_id"]: r for r in fetch(sweeps_for_model, model, scenario, batch_size)}


def sweep_label(value: str) -> str:
    if value == LATEST:
        return "Newest sweep that ran every target"
    row = sweeps[value]
    return (
        f"{row['name']} · {row['created_at'][:16].replace('T', ' ')} · {row['targets']} targets · {value[:8]}"
    )


sweep = filters.choice(
    "Sweep", "sweep", [LATEST, *sweeps], default=LATEST, format_func=sweep_label, container=cols[4]
)
switches = st.container(horizontal=True, gap="large")
include_emulated = filters.flag(
    "Include emulated", "emulated", default=True, help=ui.EMULATED_NOTE, container=switches
)
include_time_scaled = filters.flag(
    "Include time-scaled runs",
    "time_scaled",
    default=False,
    help="Runs from a virtual lab at --time-scale < 1: the host's overhead is multiplied by 1/scale in "
    "their figures, so they are left out of comparisons unless asked (flagged time-scaled).",
    container=switches,
)
sweep_id = None if sweep == LATEST else sweep


def comparison(s, **kw) -> Comparison | str:
    """The comparison, or why this selection has none (said on the page, not as a database error)."""
    try:
        return compare_targets(s, **kw)
    except CompareError as exc:
        return str(exc)


result = fetch(
    comparison,
    model=model,
    precisions=() if precision == BEST else (precision,),
    scenario=scenario,
    batch_size=batch_size,
    sweep_id=sweep_id,
    include_emulated=include_emulated,
    include_time_scaled=include_time_scaled,
)
if isinstance(result, str):
    ui.empty(f"Nothing to compare: {result}. Tick *Include emulated* or choose another selection.")
sel = result.selection
targets = result.targets
labels = ui.target_labels(targets)
names = {s["sweep_id"]: s["name"] for s in sel["sweeps"]}

# --- which wins (first: the answer before the details) --------------------------------------------
st.subheader("Which wins")
if result.winners:
    ui.winners(result.winners, labels, key="compare_winners")
else:
    st.info("No target reported a figure to rank (latency, throughput, perf/W, energy).")

if sel["mixed"]:
    st.warning(
        "**Mixed selection**: no sweep ran every target, so the rows come from different sweeps ("
        + ", ".join(f"{n} ({i[:8]})" for i, n in names.items())
        + "). Each row says its sweep; a ratio across sweeps says so in its warnings.",
        icon="⚠️",
    )
st.caption(
    (
        f"Per target: the median over the repeats of sweep {sel['sweeps'][0]['name']} ({sweep_id}). "
        if sweep_id
        else "Per target: the median over the repeats of "
        + ("the newest sweep that ran every target" if not sel["mixed"] else "each target's sweep")
        + f" ({', '.join(names.values())}). "
    )
    + f"Precision: {sel['precision_rule']}. Intervals: {sel['interval']['level']:.0%} bootstrap over the "
    "repeats (seeded), or over one run's latency samples."
)
ui.emulated_banner(sum(t.source == "emulated" for t in targets))
if sel.get("excluded_time_scaled_runs"):
    st.info(
        f"{sel['excluded_time_scaled_runs']} runs from a time-scaled lab are left out (their figures "
        "multiply the host's overhead); tick *Include time-scaled runs* to see them, labelled.",
        icon="ℹ️",
    )
elif include_time_scaled and any(t.noisy.get("time-scaled:") for t in targets):
    st.warning("Time-scaled runs included: their latencies carry the host's overhead x 1/scale.", icon="⚠️")

# --- per target ---------------------------------------------------------------------------------
table = []
for t in targets:
    row = {
        "label": labels[t.label],
        "target": t.target,
        "family": t.family,
        "precision": t.precision,
        "source": t.source,
        "sweep": ui.sweep_link(t.sweep_id),
        "runs": len(t.run_ids),
        "valid": {True: "yes", False: "INVALID", None: "unknown"}[t.valid],
        "flags": "; ".join(t.flags),
        "accuracy": t.accuracy["value"],
        "accuracy is": t.accuracy["label"],
        "interval from": t.interval_from,
    }
    for name in HEADLINE:
        iv = t.metrics.get(name)
        row[name] = iv.median if iv else None
        row[f"{name} low"] = iv.low if iv else None
        row[f"{name} high"] = iv.high if iv else None
    table.append(row)
df = pd.DataFrame(table)

long = pd.DataFrame(
    [
        {
            "label": r["label"],
            "source": r["source"],
            "metric": catalog.get(n).title,
            "value": r[n],
            "low": r[f"{n} low"],
            "high": r[f"{n} high"],
        }  # fmt: skip
        for r in table
        for n in HEADLINE
        if r[n] is not None
    ]
)
if len(long):
    st.altair_chart(
        charts.interval_panels(long, x="label", panel="metric", sort=[catalog.get(n).title for n in HEADLINE])
    )
reported = ("throughput_ips", "latency_ms_p99", "power_w")
missing = [
    f"{r['label']}: {', '.join(m for m in reported if r[m] is None)}"
    for r in table
    if any(r[m] is None for m in reported)
]
if missing:
    st.caption("Not reported (shown as empty): " + "; ".join(missing))
flagged = [f"{r['label']}: {r['flags']}" for r in table if r["flags"]]
invalid = [r["label"] for r in table if r["valid"] == "INVALID"]
if flagged or invalid:
    st.warning(
        "Flagged for a second look: "
        + "; ".join(flagged + [f"{x}: LoadGen INVALID" for x in invalid])
        + ". Ratios over these rows say so.",
        icon="⚠️",
    )

st.subheader("Per target")
ui.table(
    df,
    "compare",
    column_config={"sweep": ui.SWEEP_LINK, **ui.metric_columns(HEADLINE)},
)

# --- ratios -------------------------------------------------------------------------------------
st.subheader("FPGA over the CPU and GPU baselines")
if not result.ratios:
    st.info("Speedups need at least one FPGA target and one CPU or GPU baseline in this selection.")
else:
    WIDE = {
        "throughput": "throughput_speedup",
        "speedup_p50": "p50_latency_speedup",
        "speedup_p99": "p99_latency_speedup",
        "perf_per_watt": "perf_per_watt_ratio",
        "energy_per_inference": "energy_ratio",
    }
    TITLES = {spec.name: spec.meaning for spec in RATIOS}
    wide: dict[tuple[str, str], dict] = {}
    for r in result.ratios:
        fpga, base = labels[r.fpga_label], labels[r.baseline_label]
        row = wide.setdefault(
            (fpga, base),
            {"fpga": fpga, "baseline": base, "emulated": "yes" if "(emulated)" in fpga + base else "no"},
        )
        row[WIDE[r.metric]] = r.ratio
        row[f"{WIDE[r.metric]} verdict"] = r.verdict
        row.setdefault("warnings", set()).update(r.warnings)
    st.caption("Above 1 the FPGA is better; a verdict needs the whole 95 % interval on one side of 1.")
    ratios_long = pd.DataFrame(
        [
            {
                "label": f"{labels[r.fpga_label]} / {labels[r.baseline_label]}",
                "source": "emulated" if "(emulated)" in r.fpga_label + r.baseline_label else "measured",
                "metric": TITLES[r.metric],
                "value": r.ratio,
                "low": r.low,
                "high": r.high,
                "verdict": r.verdict,
            }  # fmt: skip
            for r in result.ratios
        ]
    )
    st.altair_chart(
        charts.interval_panels(ratios_long, x="label", panel="metric", sort=list(TITLES.values()), one=True)
    )
    ui.table(
        pd.DataFrame([{**w, "warnings": "; ".join(sorted(w["warnings"]))} for w in wide.values()]),
        "speedups",
    )
    st.markdown("**Every ratio with its interval, verdict and warnings**")
    ui.table(
        pd.DataFrame(
            [
                {
                    "fpga": labels[r.fpga_label],
                    "baseline": labels[r.baseline_label],
                    "ratio": r.metric,
                    "means": r.meaning,
                    "value": r.ratio,
                    "low": r.low,
                    "high": r.high,
                    "verdict": r.verdict,
                    "warnings": "; ".join(r.warnings),
                }  # fmt: skip
                for r in result.ratios
            ]
        ),
        "ratios",
    )
