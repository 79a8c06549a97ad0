"""Helpers of the SOP-semantics tests: run the whole pipeline on one file, keep every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import SopError, SopErrors
from engine.sop.build import build_document
from engine.sop.checks import iter_semantic_errors
from engine.sop.compiler import compile_spec
from engine.sop.loader import load_yaml_file, load_yaml_text
from engine.sop.model import SopSpec
from engine.sop.schema import iter_schema_errors

ROOT = Path(__file__).resolve().parents[2]
LIBRARY_DIR = ROOT / "sop_definitions"
HERE = Path(__file__).resolve().parent


def collect_errors(source: Path | str, library: Any = None) -> list[SopError]:
    """Every error and warning the pipeline reports for one SOP, stage by stage.

    A stage runs only when the previous one found no error (as in the real pipeline);
    semantic checks run against ``library``.
    """
    try:
        if isinstance(source, Path):
            doc = load_yaml_file(source)
        else:
            doc = load_yaml_text(source, "<test>")
        schema = list(iter_schema_errors(doc))
        if any(e.severity == "error" for e in schema):
            return schema
        spec = build_document(doc)
    except SopErrors as exc:
        return list(exc)
    assert isinstance(spec, SopSpec)
    found: list[SopError] = []
    compiled = compile_spec(spec, errors=found)
    if any(e.severity == "error" for e in found):
        return found
    return found + list(iter_semantic_errors(compiled, library))
