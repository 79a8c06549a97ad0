"""The SOP language: load, validate and compile SOPs and organisation documents.

Public API (everything raises ``engine.errors.SopErrors`` holding *all* errors found)::

    load_document(path) / load_text(text, file) -> Document   # any kind: sop, levels, ...
    compile_sop(spec) -> CompiledSop                          # graph + CEL programs + hash
    compile_text(text, file) / compile_file(path) -> CompiledSop
    load_library(paths) -> Library                            # folder(s) of SOPs + org docs
    iter_library_errors(paths) -> Iterator[SopError]          # for the CLI

Pipeline: engine.sop.loader (safe YAML + spans) -> engine.sop.schema (JSON Schema) ->
engine.sop.build (frozen model, engine.sop.model) -> engine.sop.compiler (networkx graph,
CEL) -> engine.sop.checks (graph semantics, when present) -> engine.sop.library.
"""

from __future__ import annotations

from engine.sop.compiler import HANDLERS_NODE, CompiledSop, canonical_json, content_hash
from engine.sop.library import Library, iter_library_errors, iter_yaml_files, load_library
from engine.sop.model import Document, SopSpec
from engine.sop.pipeline import (
    compile_file,
    compile_sop,
    compile_text,
    document_from_yaml,
    iter_semantic_errors,
    load_document,
    load_text,
)

__all__ = [
    "HANDLERS_NODE",
    "CompiledSop",
    "Document",
    "Library",
    "SopSpec",
    "canonical_json",
    "compile_file",
    "compile_sop",
    "compile_text",
    "content_hash",
    "document_from_yaml",
    "iter_library_errors",
    "iter_semantic_errors",
    "iter_yaml_files",
    "load_document",
    "load_library",
    "load_text",
]
