"""YAML loading that remembers the line of every key, so errors can say file:line: field."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from farm.errors import SweepError

Path_ = tuple[str | int, ...]

# libyaml's composer when PyYAML was built with it (about 10x faster); node marks carry lines either way.
_COMPOSE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_with_lines(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML into plain Python values plus a map from field path to 1-based line number."""
    try:
        node = yaml.compose(text, Loader=_COMPOSE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SweepError(f"not valid YAML: {problem}", path=source, line=line) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return None, lines
    value = _convert(node, (), lines, source)
    return value, lines


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SweepError(
                    "mapping keys must be plain names", path=source, line=key_node.start_mark.line + 1
                )
            key = _scalar(key_node)
            if key in out:
                raise SweepError(
                    f"duplicate key {key!r}",
                    path=source,
                    line=key_node.start_mark.line + 1,
                    field=_dotted(path + (key,)),
                )
            child = path + (key,)
            out[key] = _convert(value_node, child, lines, source)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    # A bare constructor: a whole SafeLoader per scalar (reader, scanner, parser) cost most of a load.
    return SafeConstructor().construct_object(node, deep=True)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of the longest known prefix of path (pydantic may point below what YAML had)."""
    for cut in range(len(path), -1, -1):
        if tuple(path[:cut]) in lines:
            return lines[tuple(path[:cut])]
    return None


dotted = _dotted
