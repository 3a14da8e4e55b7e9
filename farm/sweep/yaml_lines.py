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

import datetime
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
    """Bounds on one file. A sweep is a few KB; a lab of 1,000 SSH boards is about 320 KB and 14,000
    values and loads in about 0.1 s; at these bounds (about 3,000 such boards) a file loads in well under a
    second and tens of MB, whatever its aliases do."""

    max_bytes: int = 1 << 20
    max_depth: int = 32
    max_nodes: int = 50_000  # values after alias expansion
    max_chars: int = 4 << 20  # scalar characters after alias expansion
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
    parser = _PARSER(text)
    try:
        try:
            while (event := parser.get_event()) is not None and not isinstance(event, yaml.StreamEndEvent):
                builder.feed(event)
        except SweepError as refused:
            while parser.get_event() is not None:  # a syntax error further down is the first thing to fix
                pass
            raise refused
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"not valid YAML: {problem}", path=source, line=line) from None
    finally:
        parser.dispose()
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


# First characters of a plain scalar that YAML 1.1 may read as something other than a string (a number,
# bool, null, timestamp, merge key); any other plain scalar is a string without asking the resolver.
_RESOLVABLE = frozenset(Resolver.yaml_implicit_resolvers)
_IMMUTABLE = (int, float, bool, type(None), datetime.date)  # datetime is a date: both immutable


@dataclass
class _Built:
    """A finished value kept for later (an anchor, a merge source): its (path, line) entries are
    ``entries[start:end]`` of the builder, under ``path``."""

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
    """Plain values from libyaml's events, with an explicit stack (no recursion) and every bound checked
    before the memory is spent. Aliased values are shared, never copied; only their lines are copied."""

    def __init__(self, source: str, error: type[SweepError], limits: YamlLimits) -> None:
        self.source, self.error, self.limits = source, error, limits
        self.entries: list[tuple[Path_, int]] = []  # (path, line) of every value, aliases expanded
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Built] = {}
        self.open_anchors: set[str] = set()
        self.chars = 0
        self.documents = 0
        self.root: Any = None
        self.memo: dict[str, Any] = {}  # plain scalar -> its number, bool, null or date
        self.constructor = SafeConstructor()
        self.resolver = Resolver()

    def fail(self, message: str, line: int | None, path: Path_ | None = None) -> SweepError:
        return self.error(
            message, path=self.source, line=line, field=(dotted(path) or None) if path else None
        )

    def result(self) -> tuple[Any, dict[Path_, int]]:
        return self.root, dict(self.entries)

    # -- events -------------------------------------------------------------------------------------------

    def feed(self, event: yaml.Event) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            self._scalar(event)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            self._end()
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            self._start(event)
        elif kind is yaml.AliasEvent:
            self._alias(event)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self.fail("one YAML document per file (found a second '---')", _line(event))

    def _key_frame(self) -> _Frame | None:
        """The mapping waiting for a key, when the next value is a key."""
        top = self.stack[-1] if self.stack else None
        return top if top is not None and top.is_map and top.key is _NO_KEY else None

    def _child_path(self) -> Path_:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.is_map:
            return (*top.path, "<<" if top.key is _MERGE else top.key)
        return (*top.path, len(top.items))

    def _no_tag(self, event: yaml.NodeEvent, path: Path_) -> None:
        tag = event.tag  # type: ignore[attr-defined]
        if tag is not None:
            shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
            raise self.fail(
                f"YAML tags ({shown}) are not allowed: write the plain value (quote it to make it a string)",
                _line(event),
                path,
            )

    def _budget(self, values: int, chars: int, line: int, path: Path_) -> None:
        if len(self.entries) + values > self.limits.max_nodes:
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

    # -- scalars ------------------------------------------------------------------------------------------

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        value: str = event.value
        line = event.start_mark.line + 1
        keyed = self._key_frame()
        path = keyed.path if keyed is not None else self._child_path()
        if event.tag is not None:
            self._no_tag(event, path)
        self._budget(0 if keyed is not None else 1, len(value), line, path)
        data = self._construct(event, value, line, path)
        if keyed is not None:
            self._key(keyed, data, event.anchor, len(value), line)
            return
        if data is _MERGE:  # `<<` as a value, not a key: just the text
            data = value
        start = len(self.entries)
        self.entries.append((path, line))
        if event.anchor:
            self._anchor(event.anchor, _Built(data, path, start, start + 1, len(value), 0, line), line, path)
        self._place(data, path, start, len(value), 0, line)

    def _key(self, top: _Frame, key: Any, anchor: str | None, chars: int, line: int) -> None:
        if key is _MERGE:
            if anchor:
                raise self.fail("a merge key (<<) cannot carry an anchor", line, top.path)
            if top.merges:
                raise self.fail("duplicate merge key '<<'", line, top.path)
        elif key in top.items:
            raise self.fail(f"duplicate key {short(key)}", line, (*top.path, key))
        elif anchor:  # an anchored key: its alias is that scalar, with no lines of its own
            self._anchor(anchor, _Built(key, (), 0, 0, chars, 0, line), line, top.path)
        top.key, top.key_line = key, line
        top.chars += chars

    def _construct(self, event: yaml.ScalarEvent, value: str, line: int, path: Path_) -> Any:
        if "\x00" in value:
            raise self.fail("NUL character in a value", line, path)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise self.fail("unpaired surrogate (\\ud800-\\udfff) in a string", line, path) from None
        if not event.implicit[0] or value[:1] not in _RESOLVABLE:
            return value  # quoted, a block scalar, or plain text no resolver claims: a string
        known = self.memo.get(value, _NO_KEY)
        if known is not _NO_KEY:
            return known
        if (
            value.isascii()
            and value.isdigit()
            and value[0] != "0"
            and len(value) <= self.limits.max_number_chars
        ):
            return int(value)  # a plain decimal (YAML 1.1 reads a leading 0 as octal: the resolver's case)
        tag = self.resolver.resolve(yaml.ScalarNode, value, (True, False))
        kind = tag[len(_TAG) :] if tag.startswith(_TAG) else tag
        if kind == "merge":
            return _MERGE
        if kind not in ("null", "bool", "int", "float", "timestamp"):
            return value  # str, "=" (YAML's value key), ...: the text
        if kind in ("int", "float") and len(value) > self.limits.max_number_chars:
            raise self.fail(
                f"number {short(value, 24)} is longer than {self.limits.max_number_chars} characters",
                line,
                path,
            )
        node = yaml.ScalarNode(tag, value)
        try:
            data = getattr(self.constructor, f"construct_yaml_{kind}")(node)
        except Exception as exc:  # a scalar PyYAML cannot read as its implicit type, e.g. 2024-13-45
            raise self.fail(f"cannot read {short(value, 40)} as a {kind}: {exc}", line, path) from None
        if kind == "float" and not math.isfinite(data):
            raise self.fail(f"{value} is not a finite number", line, path)
        if isinstance(data, _IMMUTABLE):
            self.memo[value] = data
        return data

    # -- aliases and anchors --------------------------------------------------------------------------------

    def _alias(self, event: yaml.AliasEvent) -> None:
        name, line = event.anchor, _line(event)
        keyed = self._key_frame()
        path = keyed.path if keyed is not None else self._child_path()
        if name in self.open_anchors:
            raise self.fail(f"recursive alias *{name} (it refers to a value that contains it)", line, path)
        anchored = self.anchors.get(name)
        if anchored is None:
            raise self.fail(f"undefined alias *{name}", line, path)
        if keyed is not None:
            if isinstance(anchored.value, list | dict):
                raise self.fail(
                    "mapping keys must be plain names (this alias is a list or mapping)", line, path
                )
            self._budget(0, anchored.chars, line, path)
            self._key(keyed, anchored.value, None, anchored.chars, line)
            return
        if len(self.stack) + anchored.height > self.limits.max_depth:
            raise self.fail(
                f"nested deeper than {self.limits.max_depth} levels (aliases included)", line, path
            )
        self._budget(max(1, anchored.end - anchored.start), anchored.chars, line, path)
        start, cut = len(self.entries), len(anchored.path)
        if anchored.end == anchored.start:  # an anchored mapping key, used as a value
            self.entries.append((path, anchored.line))
        self.entries.extend(
            [((*path, *p[cut:]), ln) for p, ln in self.entries[anchored.start : anchored.end]]
        )
        # The value is shared, never copied: validation only reads it, so sharing keeps memory flat.
        self._place(anchored.value, path, start, anchored.chars, anchored.height, line)

    def _anchor(self, name: str, built: _Built, line: int, path: Path_) -> None:
        if name in self.anchors or name in self.open_anchors:
            raise self.fail(f"duplicate anchor &{name}", line, path)
        self.anchors[name] = built

    # -- collections --------------------------------------------------------------------------------------

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        line = _line(event)
        if self._key_frame() is not None:
            raise self.fail("mapping keys must be plain names", line, self.stack[-1].path)
        path = self._child_path()
        if event.tag is not None:
            self._no_tag(event, path)
        if len(self.stack) + 1 > self.limits.max_depth:
            raise self.fail(f"nested deeper than {self.limits.max_depth} levels", line, path)
        self._budget(1, 0, line, path)
        if event.anchor:
            if event.anchor in self.anchors or event.anchor in self.open_anchors:
                raise self.fail(f"duplicate anchor &{event.anchor}", line, path)
            self.open_anchors.add(event.anchor)
        start = len(self.entries)
        self.entries.append((path, line))
        is_map = type(event) is yaml.MappingStartEvent
        self.stack.append(_Frame(is_map, path, event.anchor, line, start, {} if is_map else []))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self._merge(frame)
        height = frame.height + 1
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = _Built(
                frame.items, frame.path, frame.start, len(self.entries), frame.chars, height, frame.line
            )
        self._place(frame.items, frame.path, frame.start, frame.chars, height, frame.line)

    def _place(self, value: Any, path: Path_, start: int, chars: int, height: int, line: int) -> None:
        """Put a finished value (its entries are ``entries[start:]``) where it belongs."""
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.chars += chars
        if height > top.height:
            top.height = height
        if not top.is_map:
            top.items.append(value)
            return
        if top.key is _MERGE:
            top.merges.append(_Built(value, path, start, len(self.entries), chars, height, line))
        else:
            top.items[top.key] = value
            self.entries[start] = (path, top.key_line)  # a field's line is its key's
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
                (*frame.path, "<<"),
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
            ((*frame.path, *p[depth:]), ln)
            for p, ln in self.entries[merged.start : merged.end]
            if len(p) > depth and origin.get(p[depth], -1) == (0 if single else p[depth - 1])
        ]
        self._budget(len(moved), 0, merged.line, frame.path)
        self.entries.extend(moved)
        items = {key: sources[i][key] for key, i in origin.items()}
        items.update(frame.items)
        frame.items = items


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1
