"""CLI commands of the SOP language: ``careflow validate``, ``careflow compile``, ``careflow schema``.

Error lines are plain ``file:line:col: CODE: message (hint)`` so editors and CI can parse
them; only the one-line summary (on stderr) is coloured. Exit codes: 0 valid, 1 invalid, 2 usage
or I/O error (a missing path). Nothing heavy is imported: no Prefect, no SQLAlchemy.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


class ErrorFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class GraphFormat(StrEnum):
    JSON = "json"
    GRAPHML = "graphml"


def _echo_err(text: str) -> None:
    typer.echo(text, err=True)


def validate(
    paths: Annotated[list[Path], typer.Argument(help="SOP/organisation files or folders (recursive *.yaml, *.yml).")],
    output_format: Annotated[ErrorFormat, typer.Option("--format", "-f", help="text: file:line:col lines; json: a JSON list.")] = ErrorFormat.TEXT,
    library: Annotated[bool, typer.Option("--library/--no-library", help="Cross-check all files together (levels, calendars, policies, sub-SOPs, routing); --no-library checks each file on its own.")] = True,
) -> None:
    """Validate SOPs and organisation documents; print every error as file:line:col."""
    from engine.errors import SopError, SopErrors
    from engine.sop.compiler import compile_spec
    from engine.sop.library import iter_library_errors, iter_yaml_files
    from engine.sop.model import SopSpec
    from engine.sop.pipeline import iter_semantic_errors, load_document

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        _echo_err(f"careflow validate: no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)
    files = list(iter_yaml_files(paths))
    if not files:
        _echo_err("careflow validate: no *.yaml or *.yml files found")
        raise typer.Exit(2)
    errors: list[SopError] = []
    if library:
        errors = list(iter_library_errors(paths))
    else:
        for f in files:
            try:
                doc = load_document(f)
            except SopErrors as exc:
                errors.extend(exc.errors)
                continue
            if isinstance(doc, SopSpec):
                found: list[SopError] = []
                compiled = compile_spec(doc, errors=found)
                errors.extend(found or iter_semantic_errors(compiled, None))
    errors.sort(key=SopError.sort_key)
    real = [e for e in errors if e.severity == "error"]
    if output_format is ErrorFormat.JSON:
        typer.echo(json.dumps([_as_json(e) for e in errors], indent=2))
    else:
        for e in errors:
            typer.echo(e.format())
        _summary(files, real, len(errors) - len(real))
    raise typer.Exit(1 if real else 0)


def _as_json(error: object) -> dict[str, object]:
    data = error.as_dict()  # type: ignore[attr-defined]
    return {k: data.get(k) for k in ("code", "severity", "file", "line", "column", "json_path",
                                      "message", "hint")}


def _summary(files: list[Path], errors: Sequence[object], warnings: int) -> None:
    """One coloured line on stderr (typer's styling: rich costs ~0.1 s of start-up here)."""
    bad = {getattr(getattr(e, "span", None), "file", None) for e in errors}
    extra = f", {warnings} warning(s)" if warnings else ""
    if errors:
        typer.secho(f"{len(errors)} error(s) in {len(bad)} of {len(files)} file(s){extra}",
                    fg=typer.colors.RED, err=True)
    else:
        typer.secho(f"ok: {len(files)} file(s) valid{extra}", fg=typer.colors.GREEN, err=True)


def compile_cmd(
    file: Annotated[Path, typer.Argument(help="The SOP file to compile.")],
    output_format: Annotated[GraphFormat, typer.Option("--format", "-f", help="json: networkx node-link data plus id/version/hash; graphml: GraphML.")] = GraphFormat.JSON,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")] = None,
) -> None:
    """Compile one SOP and print its graph (node-link JSON or GraphML)."""
    from engine.errors import SopErrors
    from engine.sop.pipeline import compile_file

    if not file.is_file():
        _echo_err(f"careflow compile: no such file: {file}")
        raise typer.Exit(2)
    try:
        compiled = compile_file(file)
    except SopErrors as exc:
        for e in exc.errors:
            typer.echo(e.format())
        raise typer.Exit(1) from None
    if output_format is GraphFormat.JSON:
        data = compiled.to_node_link()
        data["id"], data["version"], data["hash"] = compiled.id, compiled.version, compiled.hash
        text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    else:
        text = compiled.to_graphml() + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        _echo_err(f"careflow compile: cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    _echo_err(f"{compiled.id} {compiled.version} sha256:{compiled.hash[:12]} -> {out}")


def schema_cmd(
    write: Annotated[Path | None, typer.Option("--write", help="Copy the JSON Schemas into this folder.")] = None,
) -> None:
    """Show where the JSON Schemas of SOP and organisation documents are, or copy them."""
    from engine.sop.schema import KINDS, schema_path

    paths = [schema_path(kind) for kind in KINDS]
    if write is None:
        for kind, p in zip(KINDS, paths, strict=True):
            typer.echo(f"{kind}\t{p}")
        return
    try:
        write.mkdir(parents=True, exist_ok=True)
        for p in paths:
            shutil.copyfile(p, write / p.name)
    except OSError as exc:
        _echo_err(f"careflow schema: cannot write to {write}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    for p in paths:
        typer.echo(str(write / p.name))


def register(app: typer.Typer) -> None:
    """Add ``validate``, ``compile`` and ``schema`` to the careflow app."""
    app.command("validate")(validate)
    app.command("compile")(compile_cmd)
    app.command("schema")(schema_cmd)
