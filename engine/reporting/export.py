"""The data behind every number: the Report as JSON (nested) and CSV (one row per figure).

Each figure carries its case ids (``cases``: the population, ``hits``: the numerator), so a
spreadsheet or a notebook can drill down exactly as the HTML page does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from engine.reporting.kpis import Figure
from engine.reporting.report import Report

__all__ = ["CSV_COLUMNS", "iter_rows", "to_csv", "to_json"]

CSV_COLUMNS = ("kpi", "figure", "dimension", "group", "value", "unit", "n", "hits", "case_ids", "hit_ids")


def _fig(f: Figure) -> dict[str, Any]:
    return {"value": f.value, "unit": f.unit, "n": f.n, "hits": len(f.hits),
            "cases": list(f.cases), "hit_cases": list(f.hits)}


def _figs(figs: Mapping[str, Figure]) -> dict[str, Any]:
    return {name: _fig(f) for name, f in figs.items()}


def to_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-able dict (KPIs with formulas, cuts, flow, feedback)."""
    ctx = report.ctx
    return {
        "as_of": ctx.now.isoformat(), "business_tz": ctx.tz, "period": ctx.period,
        "calendar": getattr(ctx.calendar, "id", None), "cases": report.cases,
        "kpis": [{"id": r.kpi.id, "title": r.kpi.title, "formula": r.kpi.formula,
                  "overall": _figs(r.overall),
                  "cuts": {dim: {g: _figs(figs) for g, figs in groups.items()}
                           for dim, groups in r.cuts.items()}} for r in report.results],
        "flow": {p: _figs(figs) for p, figs in report.flow.items()},
        "feedback": report.feedback,
    }


def iter_rows(report: Report) -> Iterator[tuple[Any, ...]]:
    """One tuple per figure (CSV_COLUMNS); ``dimension``/``group`` are ``all`` for the overall."""
    def row(kpi: str, name: str, dim: str, group: str, f: Figure) -> tuple[Any, ...]:
        value = "" if f.value is None else round(f.value, 3)
        return (kpi, name, dim, group, value, f.unit, f.n, len(f.hits), " ".join(f.cases), " ".join(f.hits))

    for r in report.results:
        for name, f in r.overall.items():
            yield row(r.kpi.id, name, "all", "all", f)
        for dim, groups in r.cuts.items():
            for group, figs in groups.items():
                for name, f in figs.items():
                    yield row(r.kpi.id, name, dim, group, f)
    for period, figs in report.flow.items():
        for name, f in figs.items():
            yield row("flow", name, "period", period, f)
    fb = report.feedback
    for dim in ("by_category", "by_product", "by_channel"):
        for group, ids in fb[dim].items():
            yield ("contacts", "cases", dim.removeprefix("by_"), group, len(ids), "n", len(ids), len(ids),
                   " ".join(ids), " ".join(ids))
    for article, levels in fb["articles"].items():
        for level, ids in levels.items():
            yield ("knowledge", article, "level", level, len(ids), "n", len(ids), len(ids),
                   " ".join(ids), " ".join(ids))


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(iter_rows(report))
    return buf.getvalue()
