"""Reading a series of runs against a version label instead of time.

A regression shows as a step between two model revisions or toolchain versions, and those are not always
submitted in order (a rerun of an old revision, a backfill): so a series may be ordered by a label's value.
The dashboard's Trends and the alerts read it through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

Row = TypeVar("Row", bound=Mapping[str, Any])

_CHUNKS = re.compile(r"(\d+)")


def natural_key(value: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by number and the rest by text, case-folded: ``vitis-ai-3.5`` <
    ``vitis-ai-3.10``, ``rev9`` < ``rev10``. Numbers sort before text at the same position, so the key
    never compares an int with a str."""
    return tuple(
        (0, int(chunk)) if chunk.isdigit() else (1, chunk.casefold())
        for chunk in _CHUNKS.split(value)
        if chunk
    )


def order_by_label(rows: Iterable[Row], key: str) -> list[Row]:
    """``rows`` (dicts with a ``labels`` mapping, as :func:`farm.queries.runs.results` returns) ordered by
    the natural order of label ``key``'s value; rows without that label come last. The sort is stable:
    rows with the same value (the repeats of one revision) keep their order, usually time."""
    rows = list(rows)

    def sort_key(row: Row) -> tuple[int, tuple[tuple[int, int | str], ...]]:
        value = (row.get("labels") or {}).get(key)
        return (1, ()) if value is None else (0, natural_key(str(value)))

    return sorted(rows, key=sort_key)
