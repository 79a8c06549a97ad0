"""``careflow render``, ``careflow diff`` and ``careflow document``: auditor views (no Prefect)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import typer

__all__ = ["register"]

_FORMATS = ("svg", "png", "pdf", "dot", "bpmn", "mermaid")


def _load(path: Path, sops: Path | None):  # type: ignore[no-untyped-def]
    """The compiled SOP in ``path`` and the organisation's levels (from its library)."""
    from engine.errors import SopErrors
    from engine.sop import compile_sop, load_document, load_library
    from engine.sop.model import SopSpec

    try:
        doc = load_document(path)
    except SopErrors as exc:
        for err in exc:
            typer.echo(err.format(), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"{path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(doc, SopSpec):
        typer.echo(f"{path}: not an SOP (kind: sop)", err=True)
        raise typer.Exit(2)
    levels = None
    folder = sops or (path.parent if (path.parent / "org").is_dir() else None)
    if folder is not None:
        try:
            levels = load_library(folder).levels
        except SopErrors:
            levels = None
    try:
        return compile_sop(doc), levels
    except SopErrors as exc:
        for err in exc:
            typer.echo(err.format(), err=True)
        raise typer.Exit(1) from None


def render(
    file: Path = typer.Argument(..., help="The SOP YAML file."),
    out: Path = typer.Option(..., "-o", "--out", help="Output file; the format follows its suffix."),
    fmt: str = typer.Option("", "--format", help=f"One of {', '.join(_FORMATS)} (default: suffix)."),
    heatmap: bool = typer.Option(False, "--heatmap", help="Overlay what really happened (case store)."),
    since: str = typer.Option("", help="Heat map: cases created from this ISO date/time."),
    until: str = typer.Option("", help="Heat map: cases created before this ISO date/time."),
    database: str = typer.Option("", help="Case database URL (default CAREFLOW_DATABASE_URL)."),
    sops: Path = typer.Option(None, help="SOP library folder (for the competence-level lanes)."),
    pages: bool = typer.Option(False, "--pages", help="Large SOPs: also write one file per section."),
) -> None:
    """Draw an SOP with one swimlane per competence level (svg, png, pdf, dot, bpmn, mermaid)."""
    from engine.render import diagram_of
    from engine.render.dot import FORMATS, RenderError
    from engine.render.dot import render as draw

    kind = (fmt or out.suffix.lstrip(".")).lower()
    if kind == "md":
        kind = "mermaid"
    if kind not in _FORMATS:
        typer.echo(f"{out}: unknown format {kind!r}; use one of {', '.join(_FORMATS)}", err=True)
        raise typer.Exit(2)
    compiled, levels = _load(file, sops)
    if kind == "bpmn":
        from engine.render.bpmn import to_bpmn

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_bpmn(compiled, levels), encoding="utf-8")
        typer.echo(f"wrote {out}")
        return
    diagram = diagram_of(compiled, levels)
    if heatmap:
        from engine.render.heatmap import collect, overlay
        from engine.store.db import make_engine

        engine = make_engine(database or None)
        stats = collect(engine, compiled.id,
                        since=datetime.fromisoformat(since) if since else None,
                        until=datetime.fromisoformat(until) if until else None)
        diagram = overlay(diagram, stats)
    if kind == "mermaid":
        from engine.render.mermaid import to_mermaid

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_mermaid(diagram), encoding="utf-8")
        typer.echo(f"wrote {out}")
        return
    assert kind in FORMATS
    from engine.render.paging import paginate

    overview, parts = paginate(diagram)
    todo = [(overview, out)]
    if len(parts) > 1:
        typer.echo(f"{len(diagram.nodes)} steps: {out} shows an overview of {len(parts)} sections")
        if pages:
            todo += [(part, out.with_name(f"{out.stem}-section{i + 1:02d}{out.suffix}"))
                     for i, part in enumerate(parts)]
    try:
        for picture, target in todo:
            draw(picture, target, kind)
            typer.echo(f"wrote {target}")
    except RenderError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def diff(
    old: Path = typer.Argument(..., help="The old SOP version."),
    new: Path = typer.Argument(..., help="The new SOP version."),
    render_out: Path = typer.Option(None, "--render", help="Draw the new version, changes highlighted."),
    sops: Path = typer.Option(None, help="SOP library folder (for the lanes)."),
) -> None:
    """Semantic changes between two SOP versions; exit 0 when equal, 1 when different."""
    from dataclasses import replace

    from engine.render import diagram_of
    from engine.render.diff import diff_sops, highlight
    from engine.render.dot import render as draw

    a, _ = _load(old, sops)
    b, levels = _load(new, sops)
    changes = diff_sops(a.spec, b.spec)
    for change in changes:
        typer.echo(str(change))
    if not changes:
        typer.echo("no semantic change")
    if render_out is not None:
        nodes, edges = highlight(changes)
        d = diagram_of(b, levels)
        d = replace(d, nodes=tuple(replace(n, highlight=nodes.get(n.id)) for n in d.nodes),
                    edges=tuple(replace(e, highlight="added" if (e.source, e.target) in edges
                                        else None) for e in d.edges),
                    note=f"changes from {old.name}: {len(changes)}")
        draw(d, render_out)
        typer.echo(f"wrote {render_out}")
    raise typer.Exit(1 if changes else 0)


def document(
    file: Path = typer.Argument(..., help="The SOP YAML file."),
    out: Path = typer.Option(..., "-o", "--out", help="The HTML file to write."),
    sops: Path = typer.Option(None, help="SOP library folder (level names)."),
) -> None:
    """Write the SOP as an auditor reads it: purpose, owner, diagram, every step in words."""
    import tempfile

    from engine.render import diagram_of
    from engine.render.document import to_html
    from engine.render.dot import RenderError
    from engine.render.dot import render as draw

    compiled, levels = _load(file, sops)
    svg = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            svg_path = draw(diagram_of(compiled, levels), Path(tmp) / "d.svg")
            text = svg_path.read_text(encoding="utf-8")
            svg = text[text.find("<svg"):]
        except RenderError as exc:
            print(f"note: no diagram ({exc})", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_html(compiled, levels, svg), encoding="utf-8")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("render")(render)
    app.command("diff")(diff)
    app.command("document")(document)
