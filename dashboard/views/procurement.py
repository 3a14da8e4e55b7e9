"""Procurement: which board type to buy for a workload, how many, what it costs over its life, and how
sure the farm is, from its own results (farm.procure; docs/procurement.md). Every input is in the URL."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from farm.dashboard import filters, ui
from farm.dashboard.data import fetch
from farm.errors import FarmError
from farm.procure import decide, from_catalog, render_html, sensitivity, workload
from farm.procure.costs import check_economics
from farm.procure.report import rows as report_rows
from farm.queries.runs import selection_options
from farm.zoo.registry import zoo_names

KINDS = {
    "server": "Server SLA (p99 bound at a QPS)",
    "offline": "Offline throughput",
    "single": "SingleStream bound",
}
SOURCE_COLOURS = alt.Scale(
    domain=["measured", "emulated", "predicted"], range=["#1f77b4", "#ff7f0e", "#9467bd"]
)

st.title("Procurement")
st.caption(
    "Which board type meets the workload most cheaply over its life, how many boards, and how sure we are: "
    "capacity at the SLA from the farm's runs (measured, emulated) or the calibrated model (predicted), "
    "sized with headroom, priced with the catalog's prices (placeholders are named), intervals by bootstrap."
)

known = sorted({r["model"] for r in fetch(selection_options)} | set(zoo_names()))
cols = st.columns(4)
model = filters.choice("Model", "model", known, default="mobilenet_v2", container=cols[0])
precision = filters.choice(
    "Precision", "precision", ["int8", "fp32", "any"], default="int8", container=cols[1]
)
kind = filters.choice("Workload", "kind", list(KINDS), format_func=KINDS.get, container=cols[2])
batch = int(
    filters.number("Batch size", "batch", default=1, min_value=1, max_value=1024, step=1.0, container=cols[3])
)
cols = st.columns(4)
if kind == "server":
    bound = filters.number("p99 bound (ms)", "p99_ms", default=10.0, min_value=0.01, container=cols[0])
    demand = filters.number("Queries/s", "qps", default=2000.0, min_value=0.001, container=cols[1])
    spec: dict[str, Any] = {"p99_ms": bound, "qps": demand}
elif kind == "offline":
    demand = filters.number("Images/s", "offline_ips", default=2000.0, min_value=0.001, container=cols[0])
    spec = {"offline_ips": demand}
else:
    bound = filters.number("p99 bound (ms)", "latency_ms", default=20.0, min_value=0.01, container=cols[0])
    streams = int(filters.number("Streams", "streams", default=1, min_value=1, step=1.0, container=cols[1]))
    spec = {"latency_ms": bound, "streams": streams}
flagged = filters.flag("Use flagged runs", "flagged", default=False, container=cols[3],
                       help="Runs flagged noisy-host or unstable are left out unless this is on.")  # fmt: skip

with st.expander("Economics (defaults shown; docs/procurement.md says why)"):
    e = st.columns(4)
    econ = {
        "electricity_usd_per_kwh": filters.number("Electricity ($/kWh)", "kwh", default=0.15, min_value=0, container=e[0]),
        "pue": filters.number("PUE", "pue", default=1.0, min_value=1.0, max_value=3.0, container=e[1]),
        "lifetime_years": filters.number("Lifetime (years)", "years", default=3.0, min_value=0.25, max_value=30, container=e[2]),
        "discount_rate": filters.number("Discount rate", "rate", default=0.05, min_value=0, max_value=1, container=e[3]),
        "duty_cycle": filters.number("Duty cycle", "duty", default=1.0, min_value=0, max_value=1, container=e[0]),
        "headroom": filters.number("Headroom", "headroom", default=0.3, min_value=0, max_value=0.95, container=e[1]),
        "spares": int(filters.number("Spares (boards)", "spares", default=0, min_value=0, step=1.0, container=e[2])),
    }  # fmt: skip


def _decide(s: Any, w: Any, economics: dict[str, Any]) -> Any:
    from farm.perfmodel.target import load_catalog

    catalog = load_catalog()
    costs = from_catalog(catalog)
    costs = replace(costs, economics=replace(costs.economics, **economics))
    check_economics(costs.economics)
    return decide(s, w, costs, catalog=catalog)


try:
    w = workload(model, precisions=None if precision == "any" else [precision], batch_size=batch,
                 include_flagged=flagged, **spec)  # fmt: skip
    decision = fetch(_decide, w, econ)
except FarmError as exc:
    ui.empty(f"That question cannot be asked: {exc}")

if not any(c.run_ids for c in decision.candidates):
    st.info(
        f"No run of {model} counts here: every figure is predicted by the calibrated model. Run it on the farm "
        "(`farm submit SWEEP.yaml`, or the virtual lab: `farm lab up`) for measured or emulated figures."
    )
verdict = decision.verdict
(st.success if verdict.status == "clear" else st.warning if verdict.status != "none" else st.error)(
    verdict.text
)
labels = {c.source for c in decision.candidates}
if labels - {"measured"}:
    st.warning(
        "Not all of this is measured: "
        + ", ".join(
            f"{n} {src}"
            for src, n in pd.Series([c.source for c in decision.candidates]).value_counts().items()
        )
        + ". Emulated figures come from the virtual lab's models, predicted ones from the calibrated performance model "
        "with its held-out error as their interval.",
        icon="⚠️",
    )
if decision.candidates:
    table = pd.DataFrame(report_rows(decision))
    ui.table(table, "procurement")
    df = pd.DataFrame([c.to_json() for c in decision.candidates])
    df["energy_mj_per_inference"] = 1000.0 / df["inferences_per_joule"]
    pareto = []
    for x, title in (
        ("usd_per_million_inferences", "$ per million inferences"),
        ("energy_mj_per_inference", "energy per inference (mJ)"),
    ):
        pareto.append(
            alt.Chart(df.dropna(subset=["latency_ms_p99", x]))
            .mark_point(size=120, filled=True)
            .encode(
                x=alt.X(f"{x}:Q", title=title, scale=alt.Scale(zero=False)),
                y=alt.Y(
                    "latency_ms_p99:Q", title="one query's p99 latency (ms)", scale=alt.Scale(zero=False)
                ),
                color=alt.Color("source:N", scale=SOURCE_COLOURS),
                tooltip=[
                    "label",
                    "boards_needed",
                    alt.Tooltip("tco_usd_per_year:Q", format=",.0f"),
                    alt.Tooltip(f"{x}:Q", format=",.4g"),
                ],
            )
            .properties(title=f"Pareto: latency against {title}", height=300)
        )
    st.altair_chart(alt.hconcat(*pareto))
    vary = filters.choice("Sensitivity to", "vary", ["electricity", "qps", "lifetime", "headroom"])
    try:
        sens = sensitivity(decision, vary)
    except FarmError as exc:
        sens = None
        st.info(f"No sensitivity: {exc}")
    if sens is not None:
        long = pd.DataFrame(
            [
                {"value": r["value"], "option": k, "tco": v}
                for r in sens.rows
                for k, v in r["tco_usd_per_year"].items()
            ]
        )
        st.altair_chart(
            alt.Chart(long)
            .mark_line(point=True)
            .encode(
                x=alt.X("value:Q", title=vary),
                y=alt.Y("tco:Q", title="TCO per year ($)"),
                color="option:N",
                tooltip=["option", "value", alt.Tooltip("tco:Q", format=",.0f")],
            )  # fmt: skip
            .properties(title=f"TCO per year as {vary} changes", height=300)
        )
        if sens.break_even:
            st.caption(
                "Break-even: "
                + "; ".join(f"at {b['at']:.4g} {b['from']} -> {b['to']}" for b in sens.break_even)
            )
        else:
            st.caption(f"The cheapest option stays {sens.rows[0]['cheapest']} over this range.")
    st.download_button(
        "Download the HTML report", render_html(decision, [sens] if sens else None), file_name="procurement.html",
        mime="text/html", key="procurement_html", on_click="ignore",
    )  # fmt: skip
if decision.ruled_out:
    st.write("**Ruled out**")
    ui.table(
        [
            {"board type": r.board_type, "precision": r.precision, "source": r.source, "reason": r.reason}
            for r in decision.ruled_out
        ],
        "ruled-out",
    )
with st.expander("Assumptions"):
    st.json(decision.assumptions)
