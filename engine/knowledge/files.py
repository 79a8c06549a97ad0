"""Articles as files: Markdown with YAML front matter, loaded and validated like SOPs.

A file looks like::

    ---
    id: password-reset.en
    translation_of: password-reset
    title: Reset your password
    category: access
    language: en
    audience: public
    status: published
    products: [webshop, app]
    keywords: [forgot password, reset link]
    ---
    Markdown body ...

The front matter goes through engine.sop.loader (safe YAML: no aliases, no duplicate keys,
no YAML 1.1 booleans), so errors point at ``file:line:col`` exactly like SOP errors.
Caps: a file larger than ``MAX_FILE_BYTES`` is refused before it is read, a body larger than
``MAX_BODY_BYTES`` is refused with the file name. All problems of a folder are collected and
raised together as ``SopErrors``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import LoadError, SchemaError, SopError, SopErrors, SourceSpan
from engine.knowledge.model import LANGUAGES, ArticleSpec, ArticleStatus, Audience
from engine.sop.loader import YamlDocument, load_yaml_text

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_FILE_BYTES",
    "iter_article_files",
    "load_article_file",
    "load_article_folder",
    "parse_article",
    "validate_article_fields",
    "valid_id",
]

MAX_BODY_BYTES = 256 * 1024
MAX_FILE_BYTES = MAX_BODY_BYTES + 16 * 1024
MAX_TITLE = 200

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,190}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,79}$")
_REQUIRED = ("id", "title", "category", "language")
_KNOWN = frozenset(
    {"id", "translation_of", "title", "category", "language", "audience", "status", "products",
     "keywords"}
)


def valid_id(article_id: str) -> bool:
    """True for ids like ``password-reset.en`` (lower-case, digits, ``._-``, at most 191)."""
    return bool(_ID.match(article_id))


def iter_article_files(folder: str | Path) -> Iterator[Path]:
    """Every ``*.md`` under ``folder``, sorted (README.md files are documentation, skipped)."""
    root = Path(folder)
    for path in sorted(root.rglob("*.md")):
        if path.name.lower() != "readme.md" and path.is_file():
            yield path


def load_article_folder(folder: str | Path) -> list[ArticleSpec]:
    """Load and validate every article file under ``folder``; ids must be unique.

    Raises:
        SopErrors: all problems of all files, sorted by file and line.
    """
    specs: list[ArticleSpec] = []
    errors: list[SopError] = []
    seen: dict[str, SourceSpan | None] = {}
    for path in iter_article_files(folder):
        try:
            spec = load_article_file(path)
        except SopErrors as exc:
            errors.extend(exc.errors)
            continue
        if spec.id in seen:
            errors.append(SchemaError("E-KB-DUPID", f"article id {spec.id!r} is already used by "
                                      f"{seen[spec.id]}", span=spec.span, json_path="$.id"))
            continue
        seen[spec.id] = spec.span
        specs.append(spec)
    SopErrors.raise_if_any(errors)
    return specs


def load_article_file(path: str | Path) -> ArticleSpec:
    """Read one article file (size-capped, UTF-8) and validate it.

    Raises:
        SopErrors: unreadable, too large, not UTF-8, bad front matter or bad fields.
    """
    name = str(path)
    span0 = SourceSpan(name, 1, 1)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SopErrors([LoadError("E-IO", f"cannot read file: {exc.strerror or exc}",
                                   span=span0)]) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise SopErrors([LoadError(
            "E-KB-SIZE", f"article file is larger than {MAX_FILE_BYTES // 1024} KiB",
            span=span0, hint=f"an article body may hold at most {MAX_BODY_BYTES // 1024} KiB; "
            "split it into several articles")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SopErrors([LoadError("E-KB-ENCODING", "not valid UTF-8",
                                   span=SourceSpan(name, line, 1),
                                   hint="save the file as UTF-8")]) from exc
    return parse_article(text, name, folder_language=_folder_language(Path(path)))


def _folder_language(path: Path) -> str | None:
    parent = path.parent.name
    return parent if parent in LANGUAGES else None


def parse_article(text: str, file: str = "<memory>", *,
                  folder_language: str | None = None) -> ArticleSpec:
    """Split front matter from body and validate both.

    Raises:
        SopErrors: every problem found.
    """
    span0 = SourceSpan(file, 1, 1)
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise SopErrors([LoadError("E-KB-FRONTMATTER", "the file must start with a '---' line "
                                   "opening the YAML front matter", span=span0,
                                   hint="see docs/knowledge.md for the article format")])
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise SopErrors([LoadError("E-KB-FRONTMATTER", "the front matter is not closed by a "
                                   "'---' line", span=span0)]) from None
    # a leading empty line keeps YAML line numbers equal to file line numbers
    doc = load_yaml_text("\n" + "\n".join(lines[1:end]), file)
    body = "\n".join(lines[end + 1:]).strip("\n")
    body_span = SourceSpan(file, end + 2, 1)
    errors = list(validate_article_fields(doc, body, body_span, folder_language))
    SopErrors.raise_if_any(errors)
    return _to_spec(doc.data, body, span0)


def _to_spec(data: dict[str, Any], body: str, span: SourceSpan) -> ArticleSpec:
    article_id = data["id"]
    language = data["language"]
    group = data.get("translation_of") or article_id.removesuffix(f".{language}")
    return ArticleSpec(
        id=article_id,
        translation_of=group,
        title=data["title"].strip(),
        body=body,
        category=data["category"],
        language=language,
        products=tuple(data.get("products") or ()),
        keywords=tuple(data.get("keywords") or ()),
        audience=Audience(data.get("audience", "public")),
        status=ArticleStatus(data.get("status", "draft")),
        span=span,
    )


def validate_article_fields(doc: YamlDocument, body: str, body_span: SourceSpan,
                            folder_language: str | None = None) -> Iterator[SopError]:
    """Yield every problem of the front matter and the body (does not stop at the first)."""
    data = doc.data
    if not isinstance(data, dict):
        yield SchemaError("E-KB-FRONTMATTER", "the front matter must be a mapping",
                          span=doc.span(()))
        return
    for key in data:
        if key not in _KNOWN:
            close = difflib.get_close_matches(key, sorted(_KNOWN), n=1)
            yield SchemaError("E-KB-UNKNOWN-KEY", f"unknown front matter key {key!r}",
                              span=doc.key_span((key,)), json_path=f"$.{key}",
                              hint=f"did you mean {close[0]!r}?" if close else
                              f"known keys: {', '.join(sorted(_KNOWN))}")
    for key in _REQUIRED:
        if key not in data:
            yield SchemaError("E-KB-REQUIRED", f"missing required key {key!r}",
                              span=doc.span(()), json_path="$")
    yield from _check_scalars(doc, data, folder_language)
    for key in ("products", "keywords"):
        value = data.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) and v for v in value)):
            yield SchemaError("E-KB-TYPE", f"{key!r} must be a list of strings",
                              span=doc.span((key,)), json_path=f"$.{key}")
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        yield SchemaError("E-KB-SIZE", f"article body is {size // 1024} KiB, larger than "
                          f"{MAX_BODY_BYTES // 1024} KiB", span=body_span,
                          hint="split it into several articles")
    elif not body.strip():
        yield SchemaError("E-KB-EMPTY", "the article body is empty", span=body_span)


def _check_scalars(doc: YamlDocument, data: dict[str, Any],
                   folder_language: str | None) -> Iterator[SopError]:
    def bad(key: str, message: str, hint: str | None = None) -> SopError:
        return SchemaError("E-KB-VALUE", message, span=doc.span((key,)), json_path=f"$.{key}",
                           hint=hint)

    for key in ("id", "translation_of", "title", "category", "language", "audience", "status"):
        if key in data and not isinstance(data[key], str):
            yield bad(key, f"{key!r} must be a string")
    if isinstance(data.get("id"), str) and not _ID.match(data["id"]):
        yield bad("id", f"invalid article id {data['id']!r}",
                  "lower-case letters, digits, '.', '_' and '-', e.g. 'password-reset.en'")
    if isinstance(data.get("title"), str) and not 0 < len(data["title"].strip()) <= MAX_TITLE:
        yield bad("title", f"the title must have 1 to {MAX_TITLE} characters")
    if isinstance(data.get("category"), str) and not _CATEGORY.match(data["category"]):
        yield bad("category", f"invalid category {data['category']!r}",
                  "lower-case letters, digits, '_' and '-'")
    lang = data.get("language")
    if isinstance(lang, str):
        if lang not in LANGUAGES:
            yield bad("language", f"unsupported language {lang!r}",
                      f"one of {', '.join(LANGUAGES)}")
        elif folder_language and lang != folder_language:
            yield bad("language", f"language {lang!r} does not match the folder "
                      f"{folder_language!r}", f"move the file to {lang}/ or fix the language")
    for key, enum in (("audience", Audience), ("status", ArticleStatus)):
        value = data.get(key)
        if isinstance(value, str) and value not in {e.value for e in enum}:
            yield bad(key, f"invalid {key} {value!r}", f"one of {', '.join(e.value for e in enum)}")
