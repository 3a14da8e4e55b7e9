"""Filters kept in the URL (st.query_params), so a view can be shared by copying the address.

A value in the URL that the data does not have is named in a warning and replaced by the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st


def choice(
    label: str,
    param: str,
    options: Sequence[Any],
    *,
    default: Any = None,
    format_func: Callable[[Any], str] = str,
    container: Any = None,
) -> Any:
    """A selectbox whose value is read from and written to the URL parameter `param`."""
    where = container or st
    options = list(options)
    as_text = [str(o) for o in options]
    index = as_text.index(str(default)) if default is not None and str(default) in as_text else 0
    raw = st.query_params.get(param)
    if raw is not None:
        if raw in as_text:
            index = as_text.index(raw)
        else:
            known = ", ".join(as_text[:12]) + (" ..." if len(as_text) > 12 else "")
            st.warning(
                f"Unknown {label.lower()} {raw!r} in the URL; showing {as_text[index]!r}. Known: {known}"
            )
    value = where.selectbox(label, options, index=index, format_func=format_func, key=f"url_{param}")
    st.query_params[param] = str(value)
    return value


def flag(label: str, param: str, *, default: bool, help: str | None = None, container: Any = None) -> bool:
    """A checkbox kept in the URL as 1 / 0."""
    where = container or st
    raw = st.query_params.get(param)
    value = default
    if raw is not None:
        if raw in ("1", "0", "true", "false"):
            value = raw in ("1", "true")
        else:
            st.warning(f"Unknown value {raw!r} for {param!r} in the URL (use 1 or 0); showing the default.")
    value = where.checkbox(label, value=value, help=help, key=f"url_{param}")
    st.query_params[param] = "1" if value else "0"
    return value


def int_param(param: str, label: str) -> int | None:
    """An integer from the URL, or None (with a warning when it is there but is not a number)."""
    raw = st.query_params.get(param)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        st.warning(f"The {label} {raw!r} in the URL is not a number; showing the latest instead.")
        return None


def number(
    label: str,
    param: str,
    *,
    default: float,
    min_value: float,
    max_value: float | None = None,
    step: float | None = None,
    help: str | None = None,
    container: Any = None,
) -> float:
    """A number input kept in the URL; a value there that is not a number, or out of range, is named in
    a warning and replaced by the default."""
    where = container or st
    value = default
    raw = st.query_params.get(param)
    if raw is not None:
        try:
            got = float(raw)
            if got < min_value or (max_value is not None and got > max_value) or got != got:
                raise ValueError
            value = got
        except ValueError:
            st.warning(f"The {label.lower()} {raw!r} in the URL is not usable; showing {default:g}.")
    value = where.number_input(
        label, min_value=float(min_value), max_value=None if max_value is None else float(max_value),
        value=float(value), step=step, help=help, key=f"url_{param}",
    )  # fmt: skip
    st.query_params[param] = f"{value:g}"
    return float(value)
