"""Article bodies to safe HTML and to plain text (for chat, SMS and e-mail replies).

markdown-it-py runs in its ``commonmark`` preset with raw HTML **disabled** and its default
link validation, so ``<script>`` in an article is shown as text (escaped), and
``javascript:``/``vbscript:``/``data:`` links are not turned into links. The plain-text form
drops Markdown markup but keeps the words, lists and link targets.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

__all__ = ["render_html", "render_text"]


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render_html(markdown: str) -> str:
    """Safe HTML for ``markdown`` (raw HTML escaped, unsafe link schemes refused).

    >>> render_html("Hi <script>alert(1)</script>")
    '<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>\\n'
    """
    return _md().render(markdown)


_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_MARKUP = re.compile(r"(^#{1,6}\s+|^\s*>\s?|\*\*|__|`+)", re.MULTILINE)


def render_text(markdown: str) -> str:
    """Readable plain text: headings, emphasis and code marks removed, links as ``text (url)``.

    >>> render_text("## Steps\\n1. Open **Settings**\\n2. See [help](https://x.example/h)")
    'Steps\\n1. Open Settings\\n2. See help (https://x.example/h)'
    """
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1),
                     markdown)
    text = _MARKUP.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
