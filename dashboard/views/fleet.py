"""Fleet: boards, their states and current jobs, and their health history from board_events."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm.dashboard import charts, filters, ui
from farm.dashboard.data import fetch
from farm.queries.fleet import board_events, fleet_boards, fleet_counts, health_summary

st.title("Fleet")

boards = fetch(fleet_boards)
if not boards:
    ui.empty("No boards yet: they appear once a worker or `farm fleet list` syncs the inventory.")
counts = fetch(fleet_counts)
for col, (state, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
    col.metric(state, n)

df = pd.DataFrame(boards)
left, right = st.columns([2, 3])
left.altair_chart(charts.state_bars(df, title="Boards per type and state"))
with right:
    bad = df[df["state"] == "bad"]
    if len(bad):
        st.error(
            f"{len(bad)} board(s) are bad: "
            + "; ".join(f"{b} ({r})" for b, r in zip(bad["board"], bad["reason"], strict=True))
        )
    health = fetch(health_summary, 7.0)
    if health:
        st.markdown("**Health checks, last 7 days**")
        ui.table(health, "health_7d", height=220)
    else:
        st.caption("No health checks in the last 7 days.")

st.subheader("Boards")
ui.table(df, "boards")

st.subheader("History")
board = filters.choice("Board", "board", ["all boards", *df["board"]])
events = fetch(board_events, None if board == "all boards" else board, 500)
if not events:
    st.info("No events recorded for this board yet.")
else:
    ev = pd.DataFrame(events)
    st.altair_chart(charts.timeline(ev, title="State changes and health checks (latest 500)"))
    ui.table(ev, "board_events")
