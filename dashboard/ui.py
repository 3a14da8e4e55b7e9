"""Small page parts shared by the views: tables with a CSV download, the emulated label, empty states."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
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


def number(value: float | None) -> str:
    """A figure for reading: about 3 significant digits, thousands separated, never in e-notation."""
    if value is None or pd.isna(value):
        return "-"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:,.1f}"
    if size >= 1:
        return f"{value:,.2f}"
    return np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="-")


def target_labels(targets: list[Any]) -> dict[str, str]:
    """compare.Target.label -> the label a page shows: the target, its precision only where the targets
    differ in it, and "(emulated)" on an emulated one."""
    several = len({t.precision for t in targets}) > 1
    return {
        t.label: f"{t.target}{f' {t.precision}' if several else ''}"
        + (" (emulated)" if t.source == "emulated" else "")
        for t in targets
    }


def winners(rows: list[dict[str, Any]], labels: dict[str, str], *, key: str) -> None:
    """The "which wins" figures of a comparison (compare.winners): per metric, in one row of small cards of
    equal height, the winning target (its whole name: it wraps, it is never cut short), its figure with the
    unit, and its margin over the runner-up with the verdict. In a keyed container (CSS class st-key-KEY)
    a browser test can find; each name is a div with data-label="the metric's label"."""
    with st.container(key=key):
        for column, w in zip(st.columns(len(rows), border=True), rows, strict=True):
            m = catalog.find(w["metric"])
            unit = m.unit_label if m else w["unit"]
            name = labels.get(w["winner"], w["winner"])
            if w["runner_up"] is None:
                note = "the only target with this figure"
            else:
                runner = labels.get(w["runner_up"], w["runner_up"])
                note = f"{w['margin']:.2f}x over {runner}" + (
                    "" if w["verdict"] == "wins" else ", **not distinguishable**"
                )
            with column:
                st.caption(
                    w["label"],
                    help=f"{m.better_text if m else ''}. The margin is the winner over the runner-up; "
                    "*not distinguishable*: its 95 % interval contains 1, so the two may swap on a re-run.",
                )
                st.markdown(
                    f'<div data-label="{html.escape(w["label"])}" '
                    f'style="font-size:1.3rem;font-weight:600;line-height:1.25;margin-top:-0.6rem">'
                    f"{html.escape(name)}</div>",
                    unsafe_allow_html=True,
                )
                st.caption(f"{number(w['value'])} {unit} · {note}")


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
