"""Small page parts shared by the views: tables with a CSV download, the emulated label, empty states."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from farm import metrics as catalog

EMULATED_NOTE = (
    "**Emulated** figures come from the virtual lab's performance, power and thermal models, not from a "
    "board: they are labelled *(emulated)* everywhere and are estimates, not measurements."
)


def frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)


def table(
    rows: list[dict[str, Any]] | pd.DataFrame,
    name: str,
    *,
    column_config: dict[str, Any] | None = None,
    height: int | str = "auto",
) -> None:
    """A table and a button that downloads exactly its rows as CSV (`name`.csv)."""
    df = frame(rows)
    st.dataframe(df, hide_index=True, column_config=column_config, height=height)
    st.download_button(
        f"Download {name}.csv",
        df.to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{name}",
        on_click="ignore",
    )


def metric_columns(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Column settings for metric columns: the catalog's title as header, its better direction as help."""
    out: dict[str, Any] = {}
    for name in names:
        m = catalog.find(name)
        if m is not None:
            out[name] = st.column_config.NumberColumn(m.title, help=f"`{name}`: {m.better_text}")
    return out


def delta_color(name: str) -> str:
    """st.metric's delta colour for a change of `name`: green when it went the better way."""
    m = catalog.find(name)
    return {"higher": "normal", "lower": "inverse"}.get(m.better if m else "neither", "off")


def emulated_banner(count: int) -> None:
    if count:
        st.warning(f"{count} of these results are emulated. " + EMULATED_NOTE, icon="⚠️")


def empty(message: str) -> None:
    """Nothing to show: say so, and how to get data, then end the page."""
    st.info(message)
    st.stop()


def run_link(run_id: Any) -> str | None:
    return f"run?run={run_id}" if run_id is not None and not pd.isna(run_id) else None


def sweep_link(sweep_id: Any) -> str | None:
    return f"sweep?sweep={sweep_id}" if sweep_id else None


RUN_LINK = st.column_config.LinkColumn("run", display_text=r"run\?run=(\d+)")
SWEEP_LINK = st.column_config.LinkColumn("sweep", display_text=r"sweep\?sweep=(.{8})")
NO_DATA = "No results yet: run `farm demo`, or `farm submit SWEEP.yaml`, then reload this page."
