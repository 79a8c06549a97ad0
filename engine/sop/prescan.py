"""Cheap nesting pre-scan of YAML text: refuse hostile depth before any parser sees it.

``prescan_depth(text)`` estimates nesting from flow brackets (outside quotes and comments)
and block indentation, in C-speed passes for ordinary documents. It is an upper estimate
used only to stop hostile input (30,000 nested ``[``) in microseconds; the composer in
engine.sop.loader enforces the exact limit afterwards.
"""

from __future__ import annotations

import re

__all__ = ["MAX_DEPTH", "prescan_depth"]

MAX_DEPTH = 64
_OPENERS = frozenset(" \t[{,:")
_FLOW_TOKEN = re.compile(r"[\[\]{}\"'#\n]")
_DEEP_INDENT = re.compile(r"^ {%d,}\S" % MAX_DEPTH, re.MULTILINE)
_DASH_CHAIN = "- " * (MAX_DEPTH // 2)


def prescan_depth(text: str) -> int | None:
    """Cheap upper estimate of nesting: flow brackets plus block indentation levels.

    Returns the 1-based line where ``MAX_DEPTH`` is exceeded, or None. It never parses; it
    stops hostile nesting (30,000 ``[``) before a parser sees it, in C-speed passes for
    ordinary documents. The composer enforces the exact limit afterwards.
    """
    if text.count("[") + text.count("{") > MAX_DEPTH:
        line = _flow_depth(text)
        if line is not None:
            return line
    if _DASH_CHAIN in text or _DEEP_INDENT.search(text):
        return _block_depth(text)
    return None


def _flow_depth(text: str) -> int | None:
    depth, quote, comment, line = 0, "", False, 1
    for m in _FLOW_TOKEN.finditer(text):
        ch = m.group()
        if ch == "\n":
            line += 1
            comment = False
            if not depth:
                quote = ""
            continue
        if comment:
            continue
        if quote:
            if ch == quote:
                quote = ""
            continue
        prev = text[m.start() - 1] if m.start() else " "
        if ch in "\"'":
            if prev in _OPENERS:
                quote = ch
        elif ch == "#":
            comment = prev in " \t"
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif depth:
            depth -= 1
    return None


def _leading_dashes(line: str) -> int:
    """How many compact sequence entries (``- - - x``) open the line, up to MAX_DEPTH + 1."""
    count, pos = 0, 0
    while count <= MAX_DEPTH and line.startswith("-", pos):
        nxt = pos + 1
        if nxt < len(line) and line[nxt] not in " \t":
            break
        count += 1
        while nxt < len(line) and line[nxt] in " \t":
            nxt += 1
        pos = nxt
    return count


def _block_depth(text: str) -> int | None:
    indents: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            continue
        indent = len(line) - len(stripped)
        while indents and indents[-1] >= indent:
            indents.pop()
        indents.append(indent)
        if len(indents) + _leading_dashes(stripped) > MAX_DEPTH:
            return lineno
    return None
