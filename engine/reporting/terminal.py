"""The terminal summary of a Report: rich tables, one per KPI family, plus the cut by one dimension."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from engine.reporting.kpis import Figure
from engine.reporting.report import Report

__all__ = ["fmt", "print_report"]


def fmt(f: Figure | None) -> str:
    """A figure for humans: ``93.1%``, ``1.5h``, ``12``, ``-`` when undefined."""
    if f is None or f.value is None:
        return "-"
    if f.unit == "%":
        return f"{f.value:.1f}%"
    if f.unit == "s":
        s = f.value
        if s < 90:
            return f"{s:.0f}s"
        if s < 5400:
            return f"{s / 60:.0f}m"
        if s < 172800:
            return f"{s / 3600:.1f}h"
        return f"{s / 86400:.1f}d"
    return f"{f.value:.0f}"


def _kpi_table(title: str, overall: Mapping[str, Figure],
               cuts: Mapping[str, Mapping[str, Figure]], dim: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column(dim)
    names = list(overall)
    for name in names:
        table.add_column(name, justify="right")
    table.add_row("[bold]all", *(f"[bold]{fmt(overall[n])}" for n in names))
    for group, figs in cuts.items():
        table.add_row(group, *(fmt(figs.get(n)) for n in names))
    return table


def print_report(report: Report, console: Console, *, by: str = "channel") -> None:
    """Print every KPI (overall and per value of ``by``), the flow per period and the feedback."""
    ctx = report.ctx
    console.rule(f"[bold]careflow report: {report.cases} cases, as of {ctx.now:%Y-%m-%d %H:%M} UTC, "
                 f"periods per {ctx.period} in {ctx.tz}")
    for r in report.results:
        console.print(_kpi_table(r.kpi.title, r.overall, r.cuts.get(by, {}), by))
        console.print(f"[dim]{r.kpi.formula}[/dim]\n")
    flow = Table(title="Inflow / outflow per period", title_justify="left", show_edge=False)
    flow.add_column("period")
    flow.add_column("inflow", justify="right")
    flow.add_column("outflow", justify="right")
    for period, figs in report.flow.items():
        flow.add_row(period, fmt(figs["inflow"]), fmt(figs["outflow"]))
    console.print(flow)
    fb = Table(title="What customers contact us about", title_justify="left", show_edge=False)
    fb.add_column("category")
    fb.add_column("cases", justify="right")
    for cat, ids in list(report.feedback["by_category"].items())[:15]:
        fb.add_row(cat, str(len(ids)))
    console.print(fb)
    kb = Table(title="Knowledge articles that resolved cases", title_justify="left", show_edge=False)
    kb.add_column("article")
    kb.add_column("cases per level", justify="right")
    for article, levels in list(report.feedback["articles"].items())[:15]:
        kb.add_row(article, ", ".join(f"{lv} {len(ids)}" for lv, ids in levels.items()))
    console.print(kb)
