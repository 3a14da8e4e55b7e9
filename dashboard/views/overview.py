"""Overview: the latest sweeps with progress and failures, and the fleet at a glance."""

from __future__ import annotations

import streamlit as st

from farm.dashboard import ui
from farm.dashboard.data import fetch
from farm.queries.fleet import fleet_counts
from farm.queries.sweeps import recent_failures, recent_sweeps

st.title("Overview")

counts = fetch(fleet_counts)
st.subheader("Fleet")
if sum(counts.values()):
    for col, (state, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
        col.metric(state, n)
else:
    st.caption("No boards yet: they appear once a worker or `farm fleet list` syncs the inventory.")

st.subheader("Latest sweeps")
sweeps = fetch(recent_sweeps, 20)
if not sweeps:
    ui.empty("No sweeps yet: run `farm demo`, or `farm submit SWEEP.yaml`, then reload this page.")
ui.table(
    [{"name": row["name"], "link": ui.sweep_link(row["sweep_id"]), **row} for row in sweeps],
    "sweeps",
    column_config={
        "progress": st.column_config.ProgressColumn(
            "progress", min_value=0.0, max_value=1.0, format="percent"
        ),
        "link": ui.SWEEP_LINK,
        "sweep_id": None,
    },
)

st.subheader("Failures in these sweeps")
failures = fetch(recent_failures, [row["sweep_id"] for row in sweeps])
if failures:
    ui.table(failures, "failures")
else:
    st.success("No failed jobs in the latest sweeps.")
