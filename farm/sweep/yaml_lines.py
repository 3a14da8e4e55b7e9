"""YAML loading for files a user types (sweeps, lab files): plain data plus the line of every field, so
errors can say file:line: field, and bounded, so no file can crash or stall the farm.

PyYAML's composer and constructor are not used on these files: they recurse (a recursive alias is a
RecursionError), re-expand every alias (a 500-byte "billion laughs" file takes minutes and gigabytes) and
construct explicit tags (``!!int abc`` is a ValueError). Instead a small builder reads libyaml's event
stream with an explicit stack and refuses, each with the caller's located error: more than
``max_bytes`` of text, nesting deeper than ``max_depth``, more than ``max_nodes`` values or ``max_chars``
characters after alias expansion, a recursive or undefined alias, any explicit tag, a NUL character, an
unpaired surrogate, a number longer than ``max_number_chars`` or not finite (.inf, .nan, 1e999), and a
scalar YAML cannot read as its implicit type (``2024-13-45``). Merge keys (``<<: *base``) are expanded
here, with the same bounds, the mapping's own keys winning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from farm.errors import SweepError

Path_ = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it (about 10x faster); event marks carry lines either way.
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_MERGE = object()  # the `<<` key of a mapping
_NO_KEY = object()  # a mapping frame waiting for its next key


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one file. The defaults are far above any real sweep or lab (a 1,000-board lab is about
    100 KB and 20,000 values) and far below what hurts: loading at the limits takes well under a second."""

    max_bytes: int = 1 << 20
    max_depth: int = 32
    max_nodes: int = 100_000
    max_chars: int = 4 << 20
    max_number_chars: int = 64


LIMITS = YamlLimits()


def read_yaml_text(
    path: Path, *, what: str, error: type[SweepError] = SweepError, limits: YamlLimits = LIMITS
) -> str:
    """A regular file's text, UTF-8, at most ``limits.max_bytes``: never a FIFO or a device (``/dev/zero``
    would never end), never more than the bound in memory."""
    source = str(path)
    try:
        if not path.is_file():
            raise error(f"{what} not found (or not a regular file)", path=source)
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"cannot read {what}: {reason}", path=source) from None
    if len(data) > limits.max_bytes:
        raise error(f"{what} is larger than {limits.max_bytes:,} bytes", path=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"not UTF-8 text (byte {exc.start})", path=source, line=line) from None


def load_with_lines(
    text: str, source: str, *, error: type[SweepError] = SweepError, limits: YamlLimits = LIMITS
) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML into plain Python values plus a map from field path to 1-based line number.

    Raises ``error`` (SweepError or a subclass) located at file:line: field, and nothing else."""
    if len(text) > limits.max_bytes:
        raise error(f"the file is larger than {limits.max_bytes:,} bytes", path=source)
    nul = text.find("\x00")
    if nul >= 0:
        raise error("NUL character in the file", path=source, line=text.count("\n", 0, nul) + 1)
    builder = _Builder(source, error, limits)
    events = yaml.parse(text, Loader=_PARSER)
    try:
        try:
            for event in events:
                builder.feed(event)
        except SweepError as refused:
            for _ in events:  # a syntax error further down is the first thing to fix: report it instead
                pass
            raise refused
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"not valid YAML: {problem}", path=source, line=line) from None
    return builder.result()


def line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of the longest known prefix of path (pydantic may point below what YAML had)."""
    for cut in range(len(path), -1, -1):
        if tuple(path[:cut]) in lines:
            return lines[tuple(path[:cut])]
    return None


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def short(value: Any, limit: int = 60) -> str:
    """repr() cut to ``limit`` characters: a message never carries a megabyte of the user's input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _Built:
    """A finished value: its entries (path, line) are ``entries[start:end]`` of the builder, at ``path``."""

    value: Any
    path: Path_
    start: int
    end: int
    chars: int
    height: int
    line: int


@dataclass
class _Frame:
    """An open sequence or mapping."""

    is_map: bool
    path: Path_
    anchor: str | None
    line: int
    start: int
    items: Any  # list, or dict for a mapping
    key: Any = _NO_KEY
    key_line: int = 0
    merges: list[_Built] = field(default_factory=list)
    chars: int = 0
    height: int = 0


class _Builder:
    def __init__(self, source: str, error: type[SweepError], limits: YamlLimits) -> None:
        self.source, self.error, self.limits = source, error, limits
        self.entries: list[tuple[Path_, int]] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Built] = {}
        self.open_anchors: set[str] = set()
        self.chars = 0
        self.documents = 0
        self.root: _Built | None = None
        self.constructor = SafeConstructor()
        self.resolver = Resolver()

    # -- errors -------------------------------------------------------------------------------------------

    def fail(self, message: str, line: int | None, path: Path_ | None = None) -> SweepError:
        return self.error(message, path=self.source, line=line, field=dotted(path) or None if path else None)

    # -- events -------------------------------------------------------------------------------------------

    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail("one YAML document per file (found a second '---')", line)
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event, line or 0)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event, line or 0)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._start(event, line or 0)
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            self._end()

    def result(self) -> tuple[Any, dict[Path_, int]]:
        if self.root is None:
            return None, {}
        return self.root.value, dict(self.entries)

    # -- where the next value goes --------------------------------------------------------------------------

    def _awaiting_key(self) -> bool:
        return bool(self.stack) and self.stack[-1].is_map and self.stack[-1].key is _NO_KEY

    def _child_path(self) -> Path_:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.is_map:
            return top.path + (("<<",) if top.key is _MERGE else (top.key,))
        return top.path + (len(top.items),)

    def _check_tag(self, event: yaml.NodeEvent, line: int, path: Path_) -> None:
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
            raise self.fail(
                f"YAML tags ({shown}) are not allowed: write the plain value (quote it to make it a string)",
                line,
                path,
            )

    def _count(self, entries: int, chars: int, line: int, path: Path_) -> None:
        if len(self.entries) + entries > self.limits.max_nodes:
            raise self.fail(
                f"the file expands to more than {self.limits.max_nodes:,} values (aliases included)",
                line,
                path,
            )
        self.chars += chars
        if self.chars > self.limits.max_chars:
            raise self.fail(
                f"the file expands to more than {self.limits.max_chars:,} characters (aliases included)",
                line,
                path,
            )

    # -- values -------------------------------------------------------------------------------------------

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> None:
        value = event.value
        if self._awaiting_key():
            top = self.stack[-1]
            self._check_tag(event, line, top.path)
            self._count(0, len(value), line, top.path)
            key = self._construct(event, line, top.path)
            if key is _MERGE:
                if event.anchor:
                    raise self.fail("a merge key (<<) cannot carry an anchor", line, top.path)
                if top.merges:
                    raise self.fail("duplicate merge key '<<'", line, top.path)
            elif key in top.items:
                raise self.fail(f"duplicate key {short(key)}", line, top.path + (key,))
            elif event.anchor:
                self._anchor(event.anchor, _Built(key, (), 0, 0, len(value), 0, line), line, top.path)
            top.key, top.key_line = key, line
            top.chars += len(value)
            return
        path = self._child_path()
        self._check_tag(event, line, path)
        self._count(1, len(value), line, path)
        data = self._construct(event, line, path)
        if data is _MERGE:  # `<<` as a value, not a key: just the text
            data = value
        start = len(self.entries)
        self.entries.append((path, line))
        built = _Built(data, path, start, start + 1, len(value), 0, line)
        if event.anchor:
            self._anchor(event.anchor, built, line, path)
        self._place(built)

    def _construct(self, event: yaml.ScalarEvent, line: int, path: Path_) -> Any:
        value: str = event.value
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise self.fail("unpaired surrogate (\\ud800-\\udfff) in a string", line, path) from None
        if "\x00" in value:
            raise self.fail("NUL character in a value", line, path)
        plain, _ = event.implicit
        if not plain:
            return value  # quoted or block scalar: a string
        tag = self.resolver.resolve(yaml.ScalarNode, value, (True, False))
        kind = tag[len(_TAG) :] if tag.startswith(_TAG) else tag
        if kind == "str":
            return value
        if kind == "merge":
            return _MERGE
        if kind in ("int", "float") and len(value) > self.limits.max_number_chars:
            raise self.fail(
                f"number {short(value, 24)} is longer than {self.limits.max_number_chars} characters",
                line,
                path,
            )
        node = yaml.ScalarNode(tag, value)
        try:
            if kind == "null":
                return None
            if kind == "bool":
                return self.constructor.construct_yaml_bool(node)
            if kind == "int":
                return self.constructor.construct_yaml_int(node)
            if kind == "float":
                number = self.constructor.construct_yaml_float(node)
                if not math.isfinite(number):
                    raise self.fail(f"{value} is not a finite number", line, path)
                return number
            if kind == "timestamp":
                return self.constructor.construct_yaml_timestamp(node)
        except SweepError:
            raise
        except Exception as exc:  # a scalar PyYAML cannot read as its implicit type, e.g. 2024-13-45
            raise self.fail(f"cannot read {short(value, 40)} as a {kind}: {exc}", line, path) from None
        return value  # "=" (yaml's value key) and anything else: the text

    def _alias(self, event: yaml.AliasEvent, line: int) -> None:
        name = event.anchor
        path = self.stack[-1].path if self._awaiting_key() else self._child_path()
        if name in self.open_anchors:
            raise self.fail(f"recursive alias *{name} (it refers to a value that contains it)", line, path)
        anchored = self.anchors.get(name)
        if anchored is None:
            raise self.fail(f"undefined alias *{name}", line, path)
        if self._awaiting_key():
            top = self.stack[-1]
            if isinstance(anchored.value, list | dict):
                raise self.fail(
                    "mapping keys must be plain names (this alias is a list or mapping)", line, path
                )
            key = anchored.value
            if key in top.items:
                raise self.fail(f"duplicate key {short(key)}", line, path + (key,))
            self._count(0, anchored.chars, line, path)
            top.key, top.key_line = key, line
            top.chars += anchored.chars
            return
        if len(self.stack) + anchored.height > self.limits.max_depth:
            raise self.fail(
                f"nested deeper than {self.limits.max_depth} levels (aliases included)", line, path
            )
        self._count(max(1, anchored.end - anchored.start), anchored.chars, line, path)
        start, cut = len(self.entries), len(anchored.path)
        if anchored.end == anchored.start:  # an anchored mapping key, used as a value
            self.entries.append((path, anchored.line))
        self.entries.extend((path + p[cut:], ln) for p, ln in self.entries[anchored.start : anchored.end])
        # The value is shared, never copied: validation only reads it, and sharing keeps memory flat.
        self._place(
            _Built(anchored.value, path, start, len(self.entries), anchored.chars, anchored.height, line)
        )

    def _start(self, event: yaml.CollectionStartEvent, line: int) -> None:
        if self._awaiting_key():
            raise self.fail("mapping keys must be plain names", line, self.stack[-1].path)
        path = self._child_path()
        self._check_tag(event, line, path)
        if len(self.stack) + 1 > self.limits.max_depth:
            raise self.fail(f"nested deeper than {self.limits.max_depth} levels", line, path)
        self._count(1, 0, line, path)
        if event.anchor:
            if event.anchor in self.anchors or event.anchor in self.open_anchors:
                raise self.fail(f"duplicate anchor &{event.anchor}", line, path)
            self.open_anchors.add(event.anchor)
        start = len(self.entries)
        self.entries.append((path, line))
        is_map = isinstance(event, yaml.MappingStartEvent)
        self.stack.append(_Frame(is_map, path, event.anchor, line, start, {} if is_map else []))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.is_map and frame.merges:
            self._merge(frame)
        built = _Built(
            frame.items, frame.path, frame.start, len(self.entries), frame.chars, frame.height + 1, frame.line
        )
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = built
        self._place(built)

    def _anchor(self, name: str, built: _Built, line: int, path: Path_) -> None:
        if name in self.anchors or name in self.open_anchors:
            raise self.fail(f"duplicate anchor &{name}", line, path)
        self.anchors[name] = built

    def _place(self, built: _Built) -> None:
        if not self.stack:
            self.root = built
            return
        top = self.stack[-1]
        top.chars += built.chars
        top.height = max(top.height, built.height)
        if not top.is_map:
            top.items.append(built.value)
            return
        if top.key is _MERGE:
            top.merges.append(built)
        else:
            top.items[top.key] = built.value
            self.entries[built.start] = (built.path, top.key_line)  # a field's line is its key's
        top.key = _NO_KEY

    def _merge(self, frame: _Frame) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: keys the mapping lacks come from the sources, earlier sources
        first (YAML's merge key); their lines are where the source wrote them."""
        merged = frame.merges[0]
        if isinstance(merged.value, dict):
            sources, depth = [merged.value], len(merged.path)
        elif (
            isinstance(merged.value, list) and merged.value and all(isinstance(v, dict) for v in merged.value)
        ):
            sources, depth = list(merged.value), len(merged.path) + 1
        else:
            raise self.fail(
                "a merge key (<<) takes a mapping or a list of mappings (e.g. <<: *base)",
                merged.line,
                frame.path + ("<<",),
            )
        origin: dict[Any, int] = {}  # merged key -> the source it comes from
        for i, source in enumerate(sources):
            for key in source:
                if key not in frame.items and key not in origin:
                    origin[key] = i
        if not origin:
            return
        single = depth == len(merged.path)
        moved = [
            (frame.path + p[depth:], ln)
            for p, ln in self.entries[merged.start : merged.end]
            if len(p) > depth and origin.get(p[depth], -1) == (0 if single else p[depth - 1])
        ]
        self._count(len(moved), 0, merged.line, frame.path)
        self.entries.extend(moved)
        items = {key: sources[i][key] for key, i in origin.items()}
        items.update(frame.items)
        frame.items = items
