"""Alerts: regressions the farm found, confirmed on its own boards and told people about; each with its
state, cause, the provenance that changed, and links to the runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm import metrics as catalog
from farm.dashboard import filters, ui
from farm.dashboard.data import fetch
from farm.queries.alerts import alert_detail, alerts

STATES = ("open", "acknowledged", "confirming", "detected", "resolved", "dismissed", "refuted")

st.title("Alerts")
st.caption(
    "A candidate regression is re-run on the farm's own boards before it becomes an alert: only a change "
    "the re-runs confirm (rank test) is open. `farm alerts ack | dismiss | rebaseline | silence` act on them."
)

rows = fetch(alerts)
if not rows:
    ui.empty(
        "No alert yet. The farm checks every stored run and `farm alerts scan` checks whole histories; "
        "rehearse one in the virtual lab with `farm lab set BOARD clock_mhz=N` (docs/alerts.md)."
    )
df = pd.DataFrame(rows)
counts = df["state"].value_counts()
cols = st.columns(4)
for col, state in zip(cols, ("open", "acknowledged", "confirming", "resolved"), strict=True):
    col.metric(state, int(counts.get(state, 0)))
chosen = st.multiselect(
    "States", STATES, default=[s for s in STATES[:4] if s in set(df["state"])] or list(STATES)
)
shown = df[df["state"].isin(chosen)] if chosen else df
ui.emulated_banner(int((shown["source"] == "emulated").sum()))
table = pd.DataFrame(
    {
        "id": shown["id"],
        "state": shown["state"],
        "kind": shown["kind"],
        "series": shown["series"] + shown["source"].map(lambda s: " (emulated)" if s == "emulated" else ""),
        "metric": shown["metric"].map(catalog.label),
        "before": shown["before"],
        "after": shown["after"],
        "change %": shown["change_pct"].round(1),
        "confirmed": shown["confirmed"].map({True: "yes", False: "no"}).fillna("not re-run"),
        "cause": shown["cause"],
        "run": shown["change_run_id"].map(ui.run_link),
        "created (UTC)": shown["created_at"].str.slice(0, 16).str.replace("T", " "),
    }
)
ui.table(table, "alerts", column_config={"run": ui.RUN_LINK})

ids = [int(i) for i in shown["id"]]
if not ids:
    st.stop()
alert_id = filters.choice("Alert", "alert", ids, default=ids[0])
doc = fetch(alert_detail, alert_id)
if doc is None:
    ui.empty(f"No alert {alert_id}.")
m = catalog.find(doc["metric"])
unit = f" {m.unit}" if m else ""
st.subheader(f"Alert {doc['id']}: {catalog.label(doc['metric'])} on {doc['series']} [{doc['state']}]")
if doc["before"] is not None:
    c = st.columns(4)
    c[0].metric("before", f"{doc['before']:,.4g}{unit}")
    c[1].metric(
        "after",
        f"{doc['after']:,.4g}{unit}",
        delta=f"{doc['change_pct']:+.1f} %",
        delta_color=ui.delta_color(doc["metric"]),
    )
    c[2].metric("p-value", f"{doc['p_value']:.2g}")
    c[3].metric("confirmed", {True: "yes", False: "no"}.get(doc["confirmed"], "not re-run"))
conf = doc["details"].get("confirmation")
if isinstance(conf, dict) and conf.get("summary"):
    st.write(f"**Confirmation:** {conf['summary']}")
elif conf:
    st.write(f"**Confirmation:** {conf}")
if doc["cause"]:
    st.write(f"**Cause:** {doc['cause']}")
diff = doc["provenance_diff"] or {}
if diff:
    st.write("**What changed between the baseline runs and the runs at the new level**")
    ui.table(
        [{"field": k, "before": v["before"], "after": v["after"]} for k, v in diff.items()],
        f"alert-{alert_id}-diff",
    )
skipped = doc["details"].get("skipped")
if skipped:
    st.caption("Not used as a baseline: " + ", ".join(f"{n} run(s) {why}" for why, n in skipped.items()))
st.write("**Runs at the new level**")
ui.table(
    pd.DataFrame({"run": [ui.run_link(r) for r in doc["run_ids"]]}),
    f"alert-{alert_id}-runs",
    column_config={"run": ui.RUN_LINK},
)
st.write("**History**")
ui.table(doc["history"], f"alert-{alert_id}-history")
if doc["deliveries"]:
    st.write("**Deliveries**")
    ui.table(doc["deliveries"], f"alert-{alert_id}-deliveries")
