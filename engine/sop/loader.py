"""Safe YAML loading with source spans: bytes -> plain data + a span for every value.

This is the only module that imports ``yaml``. It turns untrusted text into JSON-like data
(dict / list / str / int / float / bool / None) plus an index of where each value and each
mapping key stands, so that schema and compile errors point at ``file:line:col``.

Hazards are rejected *before* or *while* parsing, never by walking an exploded tree:

- size above ``MAX_BYTES`` (1 MiB) and nesting deeper than ``MAX_DEPTH`` (64), found by a cheap
  pre-scan, so 30,000 nested ``[`` are refused in microseconds. PyYAML's C *composer*
  (``CSafeLoader.get_single_node``) recurses in C and crashes the process on them, and the
  pure-Python one recurses in Python: neither is used. We take only parser *events* (from
  libyaml when present -- ten times faster than the pure-Python scanner -- else pure Python)
  and compose them here, iteratively, stopping at ``MAX_DEPTH``;
- anchors and aliases (``E-YAML-ALIAS``): the "billion laughs" alias bomb never expands;
- duplicate mapping keys (``E-YAML-DUPKEY``), citing both lines;
- YAML 1.1 boolean traps: plain ``yes/no/on/off/y/n`` values (``E-YAML-BOOL``); only
  ``true``/``false`` are booleans, and ``010`` or ``1:30`` stay what YAML 1.2 says;
- tags other than the standard ``!!str/!!int/...`` (``E-YAML-TAG``), non-UTF-8 bytes
  (``E-YAML-ENCODING``), several documents in one file (``E-YAML-MULTIDOC``).

Mapping keys are always strings (``on:`` stays ``"on"``). All problems of one file are
collected and raised together as ``SopErrors``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]  # no stubs installed here

from engine.errors import LoadError, SopError, SopErrors, SourceSpan
from engine.sop.prescan import MAX_DEPTH, prescan_depth

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "JsonPath",
    "YamlDocument",
    "format_json_path",
    "load_yaml_file",
    "load_yaml_text",
]

MAX_BYTES = 1024 * 1024
_MAX_ERRORS = 100

JsonPath = tuple[str | int, ...]

_YAML_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _YAML_TAG + "str", _YAML_TAG + "map", _YAML_TAG + "seq"
_ALLOWED_SCALAR_TAGS = frozenset(
    _YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")
)
_BOOL_TRAPS = frozenset({"yes", "no", "on", "off", "y", "n"})
_TRUE_FALSE = {"true": True, "false": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_json_path(path: JsonPath) -> str:
    """``("nodes", "triage", "next")`` -> ``$.nodes.triage.next`` (indices as ``[0]``).

    >>> format_json_path(("nodes", "a b", 0))
    "$.nodes['a b'][0]"
    """
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _NAME.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


Mark = tuple[int, int]  # 1-based (line, column)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed data plus where every value (and every mapping key) was written.

    Attributes:
        data: the JSON-like value of the document.
        file: the name used in spans.
        marks: JSON path -> (line, column) of the value at that path (the root is ``()``).
        key_marks: JSON path -> (line, column) of the mapping key naming that path.
        quoted: paths whose scalar was quoted (its text starts one column later).
        blocks: paths of block scalars (``|``, ``>``) -> where their text starts (the line
            after the indicator).
    """

    data: Any
    file: str
    marks: dict[JsonPath, Mark] = field(default_factory=dict)
    key_marks: dict[JsonPath, Mark] = field(default_factory=dict)
    quoted: frozenset[JsonPath] = frozenset()
    blocks: dict[JsonPath, Mark] = field(default_factory=dict)

    def span(self, path: JsonPath) -> SourceSpan:
        """The span of the value at ``path``, or of its nearest ancestor that exists."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        line, column = self.marks.get(path, (1, 1))
        return SourceSpan(self.file, line, column)

    def key_span(self, path: JsonPath) -> SourceSpan:
        """The span of the key naming ``path`` (falls back to the value's span)."""
        mark = self.key_marks.get(tuple(path))
        return SourceSpan(self.file, *mark) if mark else self.span(path)

    def text_span(self, path: JsonPath, offset: int = 0) -> SourceSpan:
        """Where character ``offset`` of the string at ``path`` stands.

        Exact for one-line scalars; for block scalars the offset is counted from the
        first line of the text (good for errors near the start of an expression).
        """
        block = self.blocks.get(tuple(path))
        if block is not None:
            return SourceSpan(self.file, block[0], block[1] + offset)
        base = self.span(path)
        shift = 1 if tuple(path) in self.quoted else 0
        return SourceSpan(base.file, base.line, base.column + shift + offset)


# ---- composing ----------------------------------------------------------------------------


def _parser_class() -> Any:
    """libyaml's event parser when PyYAML has it, else the pure-Python one.

    Only *events* are taken from the parser; composing is done here, iteratively and
    depth-capped. PyYAML's C *composer* (``CSafeLoader.get_single_node``) recurses in C
    and crashes on deep nesting, so it is never used; libyaml's parser itself keeps its
    state on the heap, and the pre-scan refuses deep nesting before it runs anyway.
    """
    return getattr(yaml, "CSafeLoader", None) if USE_LIBYAML else yaml.SafeLoader


#: False parses with the pure-Python scanner (about 10x slower); ``CAREFLOW_YAML_PURE=1`` sets it
USE_LIBYAML = hasattr(yaml, "CSafeLoader") and os.environ.get("CAREFLOW_YAML_PURE", "") != "1"


@dataclass
class _Frame:
    """An open mapping or sequence while composing."""

    path: JsonPath
    value: Any  # dict or list
    key: str | None = None  # mapping: the key waiting for its value
    first_line: dict[str, int] = field(default_factory=dict)
    skip_next: bool = False  # mapping: the next value belongs to a refused key


class _Composer:
    """Builds data + spans from parser events, collecting problems (no recursion)."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self._lines: list[str] | None = None
        self.blocks: dict[JsonPath, Mark] = {}
        self.problems: list[SopError] = []
        self.marks: dict[JsonPath, Mark] = {}
        self.key_marks: dict[JsonPath, Mark] = {}
        self.quoted: set[JsonPath] = set()

    def span(self, mark: Any) -> SourceSpan:
        return SourceSpan(self.file, mark.line + 1, mark.column + 1)

    def error(self, code: str, message: str, mark: Any, path: JsonPath, hint: str | None) -> None:
        self.problems.append(LoadError(code, message, span=self.span(mark),
                                       json_path=format_json_path(path), hint=hint))
        if len(self.problems) >= _MAX_ERRORS:  # hostile or hopeless: stop reading
            raise _TooMany(mark)

    def compose(self, parser: Any) -> Any:
        """Consume the events of one document; return its value (None when empty)."""
        stack: list[_Frame] = []
        root: Any = None
        have_root = False
        while True:
            event = parser.get_event()
            if isinstance(event, yaml.StreamStartEvent | yaml.DocumentStartEvent):
                if isinstance(event, yaml.DocumentStartEvent) and have_root:
                    raise _MultiDoc(event.start_mark)
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                continue
            if isinstance(event, yaml.StreamEndEvent):
                return root
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                continue
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.value, dict) and parent.key is None \
                    and not parent.skip_next:
                self._key(parent, event)
                continue
            if parent is None:
                path: JsonPath = ()
            elif isinstance(parent.value, list):
                path = (*parent.path, len(parent.value))
            else:
                path = (*parent.path, parent.key if parent.key is not None else "")
            value, frame = self._node(event, path, len(stack) + 1)
            if parent is None:
                root, have_root = value, True
            elif isinstance(parent.value, list):
                parent.value.append(value)
            elif parent.skip_next:
                parent.skip_next = False
            else:
                parent.value[parent.key] = value
                parent.key = None
            if frame is not None:
                stack.append(frame)

    def _key(self, frame: _Frame, event: Any) -> None:
        if not isinstance(event, yaml.ScalarEvent):
            self._refuse_key(frame, event)
            return
        key = str(event.value)
        mark = event.start_mark
        line = mark.line + 1
        if event.anchor is not None:
            self._anchor(event, frame.path)
        if key == "<<" and not event.style:
            self.error("E-YAML-ALIAS", "merge keys (<<) are not allowed", event.start_mark,
                       frame.path, "write the keys out")
            frame.skip_next = True
            return
        if key in frame.first_line:
            first = frame.first_line[key]
            self.error("E-YAML-DUPKEY", f"duplicate key {key!r} (first defined on line {first})",
                       mark, (*frame.path, key),
                       f"remove one of the two; line {first} and line {line} both define {key!r}")
            frame.skip_next = True
            return
        frame.first_line[key] = line
        frame.key = key
        self.key_marks[(*frame.path, key)] = (line, mark.column + 1)

    def _refuse_key(self, frame: _Frame, event: Any) -> None:
        """A collection used as a key stops composing; an alias key is skipped."""
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            raise _ComplexKey(event.start_mark)
        self.error("E-YAML-ALIAS", "an alias cannot be a key", event.start_mark, frame.path,
                   "write the key out")
        frame.skip_next = True

    def _anchor(self, event: Any, path: JsonPath) -> None:
        self.error("E-YAML-ALIAS", f"anchor &{event.anchor} is not allowed", event.start_mark,
                   path, "write the value out; anchors and aliases are refused")

    def _node(self, event: Any, path: JsonPath, depth: int) -> tuple[Any, _Frame | None]:
        mark = event.start_mark
        self.marks[path] = (mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.AliasEvent):
            self.error("E-YAML-ALIAS", f"alias *{event.anchor} is not allowed", event.start_mark,
                       path, "write the value out; anchors and aliases are refused")
            return None, None
        if event.anchor is not None:
            self._anchor(event, path)
        if depth > MAX_DEPTH:
            raise _TooDeep(event.start_mark)
        if isinstance(event, yaml.MappingStartEvent):
            if event.tag not in (None, "!", _MAP):
                self._bad_tag(event, path)
            value: dict[str, Any] = {}
            return value, _Frame(path, value)
        if isinstance(event, yaml.SequenceStartEvent):
            if event.tag not in (None, "!", _SEQ):
                self._bad_tag(event, path)
            items: list[Any] = []
            return items, _Frame(path, items)
        return self._scalar(event, path), None

    def _block_start(self, indicator_line: int, path: JsonPath) -> None:
        """Record where a block scalar's text starts: the first non-blank line after ``|``."""
        if self._lines is None:
            self._lines = self.text.split("\n")
        for index in range(indicator_line + 1, len(self._lines)):
            line = self._lines[index]
            if line.strip():
                self.blocks[path] = (index + 1, len(line) - len(line.lstrip()) + 1)
                return

    def _bad_tag(self, event: Any, path: JsonPath) -> None:
        self.error("E-YAML-TAG", f"tag {event.tag!r} is not allowed", event.start_mark, path,
                   "remove the tag; only plain YAML values are accepted")

    def _scalar(self, event: Any, path: JsonPath) -> Any:
        value: str = event.value
        tag = event.tag
        if event.style in ("'", '"'):
            self.quoted.add(path)
        elif event.style in ("|", ">"):
            self._block_start(event.start_mark.line, path)
        if tag not in (None, "!") and tag not in _ALLOWED_SCALAR_TAGS:
            self._bad_tag(event, path)
            return value
        if event.style or tag in ("!", _STR, _YAML_TAG + "timestamp"):  # C parser: plain = ""
            return value  # quoted, block or explicitly a string
        if value.lower() in _BOOL_TRAPS:
            self.error("E-YAML-BOOL", f"{value!r} is ambiguous (YAML 1.1 reads it as a boolean)",
                       event.start_mark, path, f"quote it (\"{value}\") or use true/false")
            return value
        if value.lower() in _TRUE_FALSE:
            return _TRUE_FALSE[value.lower()]
        if value in _NULLS:
            return None
        if _INT.match(value):
            return int(value)
        if _FLOAT.match(value):
            return float(value)
        return value


class _MultiDoc(Exception):  # noqa: N818 - internal signal, never escapes this module
    def __init__(self, mark: Any) -> None:
        self.mark = mark


class _TooDeep(_MultiDoc):
    pass


class _ComplexKey(_MultiDoc):
    pass


class _TooMany(_MultiDoc):
    pass


def load_yaml_text(text: str, file: str = "<memory>") -> YamlDocument:
    """Parse one YAML document safely.

    Raises:
        SopErrors: every problem found (syntax, size, depth, aliases, duplicate keys, ...).
    """
    span0 = SourceSpan(file, 1, 1)
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SopErrors([LoadError("E-YAML-SIZE", f"larger than {MAX_BYTES} bytes", span=span0,
                                   hint="split the document")])
    deep = prescan_depth(text)
    if deep is not None:
        raise SopErrors([LoadError("E-YAML-DEPTH", f"nested deeper than {MAX_DEPTH} levels",
                                   span=SourceSpan(file, deep, 1), hint="flatten the document")])
    composer = _Composer(file, text)
    parser: Any = None
    try:
        parser = _parser_class()(text)  # the pure-Python reader checks characters here
        data = composer.compose(parser)
    except _TooMany as exc:
        raise SopErrors([*composer.problems, LoadError(
            "E-TOO-MANY", f"{_MAX_ERRORS} problems; stopped reading here",
            span=composer.span(exc.mark), hint="fix the problems above first")]) from None
    except _TooDeep as exc:
        raise SopErrors([LoadError("E-YAML-DEPTH", f"nested deeper than {MAX_DEPTH} levels",
                                   span=composer.span(exc.mark), hint="flatten the document")]) from None
    except _ComplexKey as exc:
        raise SopErrors([*composer.problems, LoadError(
            "E-YAML-KEY", "a mapping key must be a plain string", span=composer.span(exc.mark),
            hint="use a simple name as the key")]) from None
    except _MultiDoc as exc:
        raise SopErrors([*composer.problems, LoadError(
            "E-YAML-MULTIDOC", "several documents in one file", span=composer.span(exc.mark),
            hint="one document per file")]) from None
    except yaml.MarkedYAMLError as exc:
        raise SopErrors([*composer.problems, _syntax(exc, file)]) from exc
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        raise SopErrors([*composer.problems, _reader_error(exc, text, file)]) from exc
    except (RecursionError, MemoryError) as exc:  # the caps should make this unreachable
        raise SopErrors([LoadError("E-YAML-DEPTH", "document too complex", span=span0)]) from exc
    finally:
        dispose = getattr(parser, "dispose", None) if parser is not None else None
        if dispose is not None:
            dispose()
    if not composer.marks or (data is None and not composer.problems):
        raise SopErrors([LoadError("E-YAML-EMPTY", "the document is empty", span=span0,
                                   hint="start with 'kind: sop'")])
    SopErrors.raise_if_any(composer.problems)
    return YamlDocument(data, file, composer.marks, composer.key_marks,
                        frozenset(composer.quoted), composer.blocks)


def _syntax(exc: Any, file: str) -> SopError:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context else str(problem)
    mark = exc.problem_mark or exc.context_mark
    span = SourceSpan(file, mark.line + 1, mark.column + 1) if mark else SourceSpan(file, 1, 1)
    return LoadError("E-YAML-SYNTAX", message, span=span,
                     hint="check indentation, colons and brackets around here")


def _reader_error(exc: Any, text: str, file: str) -> SopError:
    position = getattr(exc, "position", None)
    message = str(exc).splitlines()[0]
    reason = getattr(exc, "reason", None)
    if reason:
        message = f"unacceptable character ({reason})"
    span = SourceSpan(file, 1, 1)
    if isinstance(position, int) and 0 <= position <= len(text):
        line_start = text.rfind("\n", 0, position) + 1
        span = SourceSpan(file, text.count("\n", 0, position) + 1, position - line_start + 1)
    return LoadError("E-YAML-ENCODING", message, span=span,
                     hint="remove control characters; save the file as UTF-8 text")


def load_yaml_file(path: str | Path) -> YamlDocument:
    """Read ``path`` (size-capped, UTF-8) and parse it with ``load_yaml_text``.

    Raises:
        SopErrors: the file is missing, too large, not UTF-8, or not a safe document.
    """
    p = Path(path)
    name = str(path)
    span0 = SourceSpan(name, 1, 1)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SopErrors([LoadError("E-IO", f"cannot read file: {exc.strerror or exc}",
                                   span=span0)]) from exc
    if len(raw) > MAX_BYTES:
        raise SopErrors([LoadError("E-YAML-SIZE", f"larger than {MAX_BYTES} bytes", span=span0,
                                   hint="split the document")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SopErrors([LoadError(
            "E-YAML-ENCODING", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            span=SourceSpan(name, line, col), hint="save the file as UTF-8")]) from exc
    return load_yaml_text(text, name)
