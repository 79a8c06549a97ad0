"""Helpers of the SOP-semantics tests: run the whole pipeline on one file, keep every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import SopError, SopErrors
from engine.sop.checks import iter_semantic_errors
from engine.sop.compiler import compile_spec
from engine.sop.model import SopSpec
from engine.sop.pipeline import load_document, load_text

ROOT = Path(__file__).resolve().parents[2]
LIBRARY_DIR = ROOT / "sop_definitions"
HERE = Path(__file__).resolve().parent


def collect_errors(source: Path | str, library: Any = None) -> list[SopError]:
    """Every error and warning the pipeline reports for one SOP, stage by stage.

    A stage runs only when the previous one found no error (as in the real pipeline);
    semantic checks run against ``library``.
    """
    try:
        spec = load_document(source) if isinstance(source, Path) else load_text(source, "<test>")
    except SopErrors as exc:
        return list(exc)
    assert isinstance(spec, SopSpec)
    found: list[SopError] = []
    compiled = compile_spec(spec, errors=found)
    if any(e.severity == "error" for e in found):
        return found
    return found + list(iter_semantic_errors(compiled, library))
