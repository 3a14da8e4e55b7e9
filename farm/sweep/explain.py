"""Pydantic's validation errors as sentences a person fixes a sweep with: every error at once, the schema's
own names suggested for a misspelt key or value ("did you mean"), and never pydantic's "Extra inputs are
not permitted" or a raw regular expression."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from farm.errors import SweepError
from farm.sweep.schema import NAME
from farm.sweep.yaml_lines import Path_, short

#: What a field's pattern accepts, in words (a pattern without an entry: "is not in the form this field takes").
PATTERNS = {
    NAME: "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters",
    r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$": "module:Class (a Python module path, a colon, a class name)",
}


def did_you_mean(value: object, choices: list[str]) -> str:
    """` (did you mean 'x'?)` when one of ``choices`` is close to ``value`` (case and -/_ ignored), else ''."""
    if not isinstance(value, str) or not choices:
        return ""
    norm = {c.lower().replace("-", "_"): c for c in choices}
    hit = difflib.get_close_matches(value.lower().replace("-", "_"), list(norm), n=1, cutoff=0.6)
    return f" (did you mean {norm[hit[0]]!r}?)" if hit and norm[hit[0]] != value else ""


def _model_at(root: type[BaseModel], loc: Path_) -> type[BaseModel] | None:
    """The pydantic model the location ``loc`` points into (list indices and dict keys stepped over)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _inner_model(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """A field's model, through Optional, list[...] and dict[..., ...]."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            inner = _inner_model(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return None
    if origin in (list, tuple, dict) and args:
        return _inner_model(args[-1])
    return annotation


def explain(err: dict[str, Any], root: type[BaseModel]) -> tuple[str, Path_]:
    """(the sentence, the location) of one pydantic error."""
    loc: Path_ = tuple(p for p in err["loc"] if p != "[key]")  # a bad dict key (labels:) is its own line
    kind, value = err["type"], err.get("input")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        key = str(loc[-1])
        return f"unknown key {key!r}{did_you_mean(key, allowed)}; allowed here: {', '.join(allowed)}", loc
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        return (
            f"{short(value)} is not allowed{did_you_mean(value, expected)} (one of: {', '.join(expected)})",
            loc,
        )
    if kind == "missing":
        return "missing: required here", loc
    if kind == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        wants = PATTERNS.get(pattern, "the form this field takes")
        return f"{short(value)} is not a valid value here: use {wants}", loc
    return msg, loc


def explain_all(errors: list[dict[str, Any]], root: type[BaseModel]) -> list[tuple[str, Path_]]:
    """Every error once per location (a union field reports one per alternative: the first says it)."""
    out, seen = [], set()
    for err in errors:
        msg, loc = explain(err, root)
        if loc not in seen:
            seen.add(loc)
            out.append((msg, loc))
    return out


def all_at_once(errors: list[SweepError]) -> SweepError:
    """The first error in the file's order (its line and field), saying every other one on a line of its
    own below it; of the errors' own class (a SweepError, an InventoryError)."""
    errors = sorted(errors, key=lambda e: e.line or 0)
    first, rest = errors[0], errors[1:]
    if not rest:
        return first
    both = type(first)(
        first.reason + "".join(f"\n{e}" for e in rest), path=first.path, line=first.line, field=first.field
    )
    both.errors = errors  # type: ignore[attr-defined]
    return both
