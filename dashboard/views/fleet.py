"""Fleet: the boards `farm fleet list` shows (the inventory's, with their states), their current jobs, and
their health history from board_events."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from farm.dashboard import charts, filters, ui
from farm.dashboard.data import fetch, inventory, virtual_lab_file
from farm.queries.fleet import NEW, OFFLINE, board_events, fleet_list, health_summary, list_counts

st.title("Fleet")

inv, why = inventory()
if why:
    st.warning(
        f"The inventory cannot be read, so no board's state is known (`farm fleet list` fails the same way): "
        f"{why}. A FARM_LAB left pointing at a lab that `farm lab down` removed: unset it, or `farm lab up`."
    )
boards = fetch(fleet_list, inv)
if not boards:
    ui.empty("No boards yet: they appear once a worker or `farm fleet list` syncs the inventory.")
counts = list_counts(boards)
for col, (state, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
    col.metric(state, n)

df = pd.DataFrame(boards)


def names(boards: pd.Series, most: int = 8) -> str:
    more = len(boards) - most
    return ", ".join(boards[:most]) + (f" and {more} more" if more > 0 else "")


new = df[df["reason"] == NEW]
if len(new):
    st.info(
        f"{len(new)} board(s) of the inventory are not recorded yet ({names(new['board'])}): a worker "
        "or `farm fleet list` records them (idle); `farm demo` brings up the virtual lab's boards too."
    )
offline = df[df["state"] == OFFLINE]
if len(offline):
    lab = virtual_lab_file()
    st.info(
        f"{len(offline)} board(s) the database knows are not in the inventory's lab file, so they are "
        f"**offline**, not idle ({names(offline['board'])}): `farm lab down` takes the virtual lab's "
        "boards away, and `farm fleet list` no longer lists them."
        + (
            f" The virtual lab is up with lab file `{lab}`: start the dashboard with `FARM_LAB={lab}` to see "
            "its boards."
            if lab
            else ""
        )
    )
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
