"""Version labels: free ``key=value`` tags on a sweep (``model_rev=3f2a1c``, ``toolchain=vitis-ai-3.5``).

They say which version of the world a sweep measured, so a series of runs can be read against them
(docs/schedules.md). One set of rules for the sweep file's ``labels:``, ``farm submit --label`` and
``farm schedule add --label``, so a label accepted in one place is accepted in all.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

LABEL_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
MAX_VALUE_CHARS = 200
#: The label every sweep a schedule submits carries: the schedule's name.
SCHEDULE_LABEL = "schedule"


def check_key(key: str) -> str:
    if not LABEL_KEY.fullmatch(key):
        raise ValueError(
            f"label key {key[:80]!r} is not allowed: use a lower-case letter, then up to 63 of a-z 0-9 _ . -"
        )
    return key


def as_text(value: object) -> object:
    """YAML reads ``rev: 42`` or ``toolchain: 3.5`` as numbers; a label is text, so they become strings
    (``true`` becomes ``"true"``). Anything else is left for the string check to refuse."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def check_value(value: str) -> str:
    if not value:
        raise ValueError("a label's value may not be empty")
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"a label's value has at most {MAX_VALUE_CHARS} characters (this one {len(value)})")
    return value


LabelKey = Annotated[str, AfterValidator(check_key)]
LabelValue = Annotated[str, BeforeValidator(as_text), AfterValidator(check_value)]


def parse_label(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from the command line; ValueError saying what is wrong."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{text[:80]!r} is not KEY=VALUE")
    return check_key(key.strip()), check_value(value)


def merged(*layers: dict[str, str] | None) -> dict[str, str]:
    """Later layers win on the same key (the sweep file, then the command line, then the schedule's own)."""
    out: dict[str, str] = {}
    for layer in layers:
        out.update(layer or {})
    return dict(sorted(out.items()))


def as_csv_cell(labels: dict[str, str] | None) -> str:
    """``k=v;k=v`` (sorted by key), the CSV form of a labels object."""
    return ";".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))
