"""Sweep detail: every job of one sweep with its state, board, duration and failure reason."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm.dashboard import filters, ui
from farm.dashboard.data import fetch
from farm.queries.sweeps import JOB_STATES, sweep_choices, sweep_header, sweep_jobs

st.title("Sweep detail")

choices = fetch(sweep_choices, 500)
if not choices:
    ui.empty("No sweeps yet: run `farm demo`, or `farm submit SWEEP.yaml`, then reload this page.")
names = {c["sweep_id"]: f"{c['name']} · {c['sweep_id'][:8]} · {c['created_at'][:16]}" for c in choices}
raw = st.query_params.get("sweep")
if raw and raw not in names:
    # an older sweep than the 500 listed is still reachable by its id
    header = fetch(sweep_header, raw)
    if header is not None:
        names[raw] = f"{header['name']} · {raw[:8]} · {(header['created_at'] or '')[:16]}"
sweep_id = filters.choice("Sweep", "sweep", list(names), format_func=names.get)
header = fetch(sweep_header, sweep_id)
if header is None:
    ui.empty("This sweep is gone (deleted while the page was open).")

jobs = fetch(sweep_jobs, sweep_id)
counts = {state: sum(j["state"] == state for j in jobs) for state in JOB_STATES}
finished = counts["done"] + counts["cached"] + counts["failed"]
st.progress(
    finished / len(jobs) if jobs else 0.0, text=f"{header['state']}: {finished}/{len(jobs)} jobs finished"
)
for col, (state, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
    col.metric(state, n)
st.caption(
    f"Submitted {header['created_at']} from `{header['source']}`; finished {header['finished_at'] or '-'}"
)

if not jobs:
    ui.empty("This sweep has no jobs.")
state = filters.choice("Show jobs", "state", ["all", *JOB_STATES])
df = pd.DataFrame(jobs)
if state != "all":
    df = df[df["state"] == state]
failed = df[df["state"] == "failed"]
if len(failed):
    st.error(f"{len(failed)} job(s) failed; the reason is in the `error` column.")
df.insert(4, "run", df["run_id"].map(ui.run_link))
ui.table(
    df,
    f"sweep_{sweep_id[:8]}_jobs",
    column_config={
        "run": ui.RUN_LINK,
        "duration_s": st.column_config.NumberColumn("duration (s)", format="%.2f"),
    },
)
with st.expander("sweep.yaml as submitted"):
    st.code(header["spec_yaml"], language="yaml")
