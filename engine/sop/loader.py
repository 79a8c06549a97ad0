"""Safe YAML loading with source spans: bytes -> plain data + a span for every value.

This is the only module that imports ``yaml``. It turns untrusted text into JSON-like data
(dict / list / str / int / float / bool / None) plus an index of where each value and each
mapping key stands, so that schema and compile errors point at ``file:line:col``.

Hazards are rejected *before* or *while* parsing, never by walking a exploded tree:

- size above ``MAX_BYTES`` (1 MiB) and nesting deeper than ``MAX_DEPTH`` (64), found by a cheap
  pre-scan, so 30,000 nested ``[`` are refused in microseconds (PyYAML's C loader crashes on
  them, the pure-Python one recurses; we use the pure-Python composer only);
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

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import LoadError, SopError, SopErrors, SourceSpan

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
MAX_DEPTH = 64
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
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_OPENERS = frozenset(" \t[{,:")
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


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed data plus where every value (and every mapping key) was written.

    Attributes:
        data: the JSON-like value of the document.
        file: the name used in spans.
        spans: JSON path -> span of the value at that path (the root is ``()``).
        key_spans: JSON path -> span of the mapping key naming that path.
        quoted: paths whose scalar was quoted (its text starts one column later).
    """

    data: Any
    file: str
    spans: dict[JsonPath, SourceSpan] = field(default_factory=dict)
    key_spans: dict[JsonPath, SourceSpan] = field(default_factory=dict)
    quoted: frozenset[JsonPath] = frozenset()

    def span(self, path: JsonPath) -> SourceSpan:
        """The span of the value at ``path``, or of its nearest ancestor that exists."""
        path = tuple(path)
        while path not in self.spans and path:
            path = path[:-1]
        return self.spans.get(path, SourceSpan(self.file, 1, 1))

    def key_span(self, path: JsonPath) -> SourceSpan:
        """The span of the key naming ``path`` (falls back to the value's span)."""
        return self.key_spans.get(tuple(path)) or self.span(path)

    def text_span(self, path: JsonPath, offset: int = 0) -> SourceSpan:
        """Where character ``offset`` of the string at ``path`` stands (single-line scalars)."""
        base = self.span(path)
        shift = 1 if tuple(path) in self.quoted else 0
        return SourceSpan(base.file, base.line, base.column + shift + offset)


# ---- pre-scan -----------------------------------------------------------------------------


def _prescan_depth(text: str) -> int | None:
    """Cheap upper estimate of nesting: flow brackets plus block indentation levels.

    Returns the 1-based line where ``MAX_DEPTH`` is exceeded, or None. It never parses; it
    only has to stop hostile nesting before the recursive composer sees it.
    """
    flow = 0
    indents: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            continue
        if flow == 0:
            indent = len(line) - len(stripped)
            while indents and indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
            dashes = 0
            while stripped.startswith("- ") or stripped == "-":
                dashes += 1
                stripped = stripped[2:].lstrip(" ")
            if len(indents) + dashes > MAX_DEPTH:
                return lineno
        if "[" in line or "{" in line or flow:
            quote, prev = "", " "
            for ch in line:
                if quote:
                    if ch == quote:
                        quote = ""
                elif ch in "\"'" and prev in _OPENERS:
                    quote = ch
                elif ch == "#" and prev in " \t":
                    break
                elif ch in "[{":
                    flow += 1
                    if flow + len(indents) > MAX_DEPTH:
                        return lineno
                elif ch in "]}":
                    flow = max(0, flow - 1)
                prev = ch
    return None


# ---- composing ----------------------------------------------------------------------------


class _Composer(yaml.SafeLoader):  # pure-Python SafeLoader, never CSafeLoader
    """SafeLoader that refuses aliases while composing (the alias target never expands)."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.problems: list[SopError] = []

    def _span(self, mark: Any) -> SourceSpan:
        return SourceSpan(self.file, mark.line + 1, mark.column + 1)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            self.problems.append(LoadError(
                "E-YAML-ALIAS", f"alias *{event.anchor} is not allowed",
                span=self._span(event.start_mark),
                hint="write the value out; anchors and aliases are refused"))
            return yaml.ScalarNode(_YAML_TAG + "null", "", event.start_mark, event.end_mark)
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.problems.append(LoadError(
                "E-YAML-ALIAS", f"anchor &{anchor} is not allowed",
                span=self._span(event.start_mark),
                hint="write the value out; anchors and aliases are refused"))
            event.anchor = None
        return super().compose_node(parent, index)


@dataclass
class _Walker:
    """Turns a composed node tree into data + spans, collecting problems."""

    file: str
    problems: list[SopError]
    spans: dict[JsonPath, SourceSpan] = field(default_factory=dict)
    key_spans: dict[JsonPath, SourceSpan] = field(default_factory=dict)
    quoted: set[JsonPath] = field(default_factory=set)

    def span(self, node: Any) -> SourceSpan:
        return SourceSpan(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, code: str, message: str, node: Any, path: JsonPath, hint: str | None) -> None:
        self.problems.append(LoadError(code, message, span=self.span(node),
                                       json_path=format_json_path(path), hint=hint))

    def walk(self, node: Any, path: JsonPath, depth: int) -> Any:
        self.spans[path] = self.span(node)
        if depth > MAX_DEPTH:
            self.error("E-YAML-DEPTH", f"nested deeper than {MAX_DEPTH} levels", node, path,
                       "flatten the document")
            return None
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                self._bad_tag(node, path)
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self._bad_tag(node, path)
            return [self.walk(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _bad_tag(self, node: Any, path: JsonPath) -> None:
        self.error("E-YAML-TAG", f"tag {node.tag!r} is not allowed", node, path,
                   "remove the tag; only plain YAML values are accepted")

    def _mapping(self, node: Any, path: JsonPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error("E-YAML-KEY", "a mapping key must be a plain string", key_node,
                           path, "use a simple name as the key")
                continue
            key = str(key_node.value)
            key_span = self.span(key_node)
            if key == "<<" and key_node.tag == _YAML_TAG + "merge":
                self.error("E-YAML-ALIAS", "merge keys (<<) are not allowed", key_node, path,
                           "write the keys out")
                continue
            if key in first_line:
                self.error("E-YAML-DUPKEY",
                           f"duplicate key {key!r} (first defined on line {first_line[key]})",
                           key_node, (*path, key),
                           f"remove one of the two; line {first_line[key]} and line "
                           f"{key_span.line} both define {key!r}")
                continue
            first_line[key] = key_span.line
            self.key_spans[(*path, key)] = key_span
            out[key] = self.walk(value_node, (*path, key), depth + 1)
        return out

    def _scalar(self, node: Any, path: JsonPath) -> Any:
        value: str = node.value
        if node.tag not in _ALLOWED_SCALAR_TAGS:
            self._bad_tag(node, path)
            return value
        if node.style is not None:  # quoted or block scalar: always a string
            if node.style in ("'", '"'):
                self.quoted.add(path)
            return value
        if node.tag == _STR:
            return value
        if value.lower() in _BOOL_TRAPS:
            self.error("E-YAML-BOOL", f"{value!r} is ambiguous (YAML 1.1 reads it as a boolean)",
                       node, path, f"quote it (\"{value}\") or use true/false")
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


def load_yaml_text(text: str, file: str = "<memory>") -> YamlDocument:
    """Parse one YAML document safely.

    Raises:
        SopErrors: every problem found (syntax, size, depth, aliases, duplicate keys, ...).
    """
    span0 = SourceSpan(file, 1, 1)
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SopErrors([LoadError("E-YAML-SIZE", f"larger than {MAX_BYTES} bytes", span=span0,
                                   hint="split the document")])
    if "\x00" in text:
        raise SopErrors([LoadError("E-YAML-ENCODING", "contains NUL characters", span=span0,
                                   hint="save the file as UTF-8 text")])
    deep = _prescan_depth(text)
    if deep is not None:
        raise SopErrors([LoadError("E-YAML-DEPTH", f"nested deeper than {MAX_DEPTH} levels",
                                   span=SourceSpan(file, deep, 1), hint="flatten the document")])
    composer = _Composer(text, file)
    try:
        root = composer.get_single_node()
    except yaml.composer.ComposerError as exc:
        mark = exc.problem_mark or exc.context_mark
        code = "E-YAML-MULTIDOC" if "single document" in str(exc.context) else "E-YAML-SYNTAX"
        raise SopErrors([*composer.problems, _syntax(code, exc, mark, file)]) from exc
    except yaml.MarkedYAMLError as exc:
        raise SopErrors([*composer.problems, _syntax("E-YAML-SYNTAX", exc, exc.problem_mark,
                                                     file)]) from exc
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        raise SopErrors([LoadError("E-YAML-SYNTAX", str(exc).splitlines()[0], span=span0)]) from exc
    except RecursionError as exc:  # the pre-scan should make this unreachable
        raise SopErrors([LoadError("E-YAML-DEPTH", "nested too deeply", span=span0)]) from exc
    finally:
        composer.dispose()
    if root is None:
        raise SopErrors([LoadError("E-YAML-EMPTY", "the document is empty", span=span0,
                                   hint="start with 'kind: sop'")])
    walker = _Walker(file, composer.problems)
    data = walker.walk(root, (), 1)
    SopErrors.raise_if_any(walker.problems[:_MAX_ERRORS])
    return YamlDocument(data, file, walker.spans, walker.key_spans, frozenset(walker.quoted))


def _syntax(code: str, exc: Any, mark: Any, file: str) -> SopError:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context and code == "E-YAML-SYNTAX" else str(problem)
    span = SourceSpan(file, mark.line + 1, mark.column + 1) if mark else SourceSpan(file, 1, 1)
    if code == "E-YAML-MULTIDOC":
        message = "several documents in one file"
    return LoadError(code, message, span=span,
                     hint="one document per file" if code == "E-YAML-MULTIDOC" else None)


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


def iter_paths(doc: YamlDocument) -> Iterator[JsonPath]:
    """Every JSON path with a recorded span (for tests and tools)."""
    return iter(doc.spans)
