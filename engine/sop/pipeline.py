"""The SOP language pipeline: text -> safe YAML -> JSON Schema -> model -> compiled SOP.

Each stage collects all its errors; a stage runs only when the previous one succeeded
(schema errors would make model building meaningless). ``iter_*`` functions yield the
errors, the others raise them together as ``SopErrors``.

Graph-semantic checks (engine.sop.checks, engineer A2) run after compilation when that
module exists: ``iter_semantic_errors(compiled, library)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import SopError, SopErrors
from engine.sop.build import build_document
from engine.sop.compiler import CompiledSop, compile_spec
from engine.sop.loader import YamlDocument, load_yaml_file, load_yaml_text
from engine.sop.model import Document, SopSpec
from engine.sop.schema import iter_schema_errors

if TYPE_CHECKING:
    from engine.sop.library import Library

__all__ = [
    "compile_sop",
    "compile_text",
    "document_from_yaml",
    "iter_semantic_errors",
    "load_document",
    "load_text",
]

_CHECKS_MODULE = "engine.sop.checks"


def document_from_yaml(doc: YamlDocument) -> Document:
    """Validate a parsed document against its schema, then build its model value.

    Raises:
        SopErrors: every schema error, or every build error.
    """
    SopErrors.raise_if_any(iter_schema_errors(doc))
    return build_document(doc)


def load_text(text: str, file: str = "<memory>") -> Document:
    """Load one document (any ``kind``) from text.

    Raises:
        SopErrors: every problem found, each at ``file:line:col``.
    """
    return document_from_yaml(load_yaml_text(text, file))


def load_document(path: str | Path) -> Document:
    """Load one document (any ``kind``) from a file.

    Raises:
        SopErrors: every problem found, each at ``file:line:col``.
    """
    return document_from_yaml(load_yaml_file(path))


def _semantic_checker() -> Callable[..., Iterator[SopError]] | None:
    try:
        module = importlib.import_module(_CHECKS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == _CHECKS_MODULE:
            return None
        raise
    checker: Callable[..., Iterator[SopError]] | None = getattr(
        module, "iter_semantic_errors", None)
    return checker


def iter_semantic_errors(compiled: CompiledSop, library: Library | None = None) -> Iterator[SopError]:
    """The graph-semantic errors of engine.sop.checks (nothing when that module is absent)."""
    checker = _semantic_checker()
    if checker is not None:
        yield from checker(compiled, library)


def compile_sop(spec: SopSpec, library: Library | None = None) -> CompiledSop:
    """Compile ``spec`` and run the semantic checks.

    Raises:
        SopErrors: every compile and semantic error (warnings are not raised).
    """
    errors: list[SopError] = []
    compiled = compile_spec(spec, errors=errors)
    if not errors:
        errors.extend(iter_semantic_errors(compiled, library))
    SopErrors.raise_if_any(errors)
    return compiled


def compile_text(text: str, file: str = "<memory>") -> CompiledSop:
    """Load, validate and compile an SOP given as text.

    Raises:
        SopErrors: every problem found; also when the document is not ``kind: sop``.
    """
    doc = load_text(text, file)
    if not isinstance(doc, SopSpec):
        raise SopErrors([SopError("E-KIND", "expected a document with 'kind: sop'",
                                  span=doc.span, json_path="$.kind")])
    return compile_sop(doc)


def compile_file(path: str | Path) -> CompiledSop:
    """Load, validate and compile an SOP file.

    Raises:
        SopErrors: every problem found; also when the document is not ``kind: sop``.
    """
    doc = load_document(path)
    if not isinstance(doc, SopSpec):
        raise SopErrors([SopError("E-KIND", "expected a document with 'kind: sop'",
                                  span=doc.span, json_path="$.kind")])
    return compile_sop(doc)
