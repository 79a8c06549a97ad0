"""The process owner's report as one self-contained HTML page (inline CSS, SVG and a tiny script).

Sections: KPI cards, trends per period, SLA breaches by weekday and hour (business time zone),
the level funnel from e-level to specialists, the SOP diagram with the heat-map overlay (the
SOP with the most cases, drawn by Graphviz), KPI tables cut by every dimension, and product
feedback. Every figure is clickable: the case ids behind it are embedded as JSON (at most
``DRILL_CAP`` per figure; the complete lists are in ``careflow report --json``).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter, defaultdict
from html import escape
from pathlib import Path
from typing import Any

from engine.reporting.context import ReportContext, context_from_org, period_for_span
from engine.reporting.kpis import Figure
from engine.reporting.report import Report, activity_span, load_report
from engine.reporting.svg import bars, funnel, heat_grid, line_chart
from engine.reporting.terminal import fmt

__all__ = ["DRILL_CAP", "render_html", "write_html_report"]

DRILL_CAP = 500
#: the SOP diagram at this share of Graphviz's natural size (labels stay legible)
DIAGRAM_SCALE = 0.62
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CARDS = (("sla_compliance", None, "SLA met"), ("first_response", "median_business", "first response (median, business)"),
         ("resolution", "median_business", "resolution (median, business)"), ("fcr", "first_contact", "first-contact resolution"),
         ("fcr", "first_level", "first-level resolution"), ("elevel", "containment", "e-level containment"),
         ("reopen", "rate", "reopen rate"), ("backlog", "open", "open backlog"), ("incidents", "count", "incidents"))

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
header{background:#16324f;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.8}
main{padding:18px 28px;max-width:1340px}section{background:#fff;border-radius:10px;padding:14px 18px;margin:0 0 18px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{font-size:17px;margin:0 0 10px}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
.card{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 3px rgba(0,0,0,.08);cursor:pointer;border-top:4px solid #1565c0}
.card b{display:block;font-size:26px}.card span{color:#5f6b7a;font-size:12px}.card.bad{border-top-color:#c62828}.card.good{border-top-color:#2e7d32}
.row{display:flex;flex-wrap:wrap;gap:18px}.row>div{flex:1 1 560px}.ax{font-size:11px;fill:#5f6b7a}.fn{font-size:13px;fill:#1d2733}
.drill{cursor:pointer}.drill:hover{stroke:#000;stroke-width:1.5}table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px}
td,th{padding:3px 9px;border-bottom:1px solid #eceff1;text-align:right}td:first-child,th:first-child{text-align:left}
td.drill:hover{background:#e3f2fd}.formula{color:#5f6b7a;font-size:12px;margin:2px 0 8px}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
#panel{position:fixed;right:18px;top:18px;width:330px;max-height:80vh;overflow:auto;background:#fff;border-radius:10px;
box-shadow:0 4px 18px rgba(0,0,0,.25);padding:12px 14px;display:none;z-index:9}#panel code{display:block;font-size:12px}
#panel button{float:right}.diagram{overflow:auto;max-height:900px;border:1px solid #eceff1;border-radius:6px}.diagram svg{display:block}
.muted{color:#5f6b7a}
"""

_JS = """
(function(){
  var data = JSON.parse(document.getElementById('drill-data').textContent);
  var panel = document.getElementById('panel');
  function show(key){
    var d = data[key]; if(!d){return;}
    var html = '<button onclick="this.parentNode.style.display=\\'none\\'">close</button><h3>' + d.t + '</h3><p>' +
      d.n + ' case(s)' + (d.ids.length < d.n ? ' (first ' + d.ids.length + '; all in --json)' : '') + '</p>';
    function list(ids){return ids.map(function(i){return '<code>' + i + '</code>';}).join('');}
    if(d.h){
      html += '<h4>counted (' + d.hn + ')</h4>' + list(d.h) + '<h4>all ' + d.n + '</h4>';
    }
    html += list(d.ids);
    panel.innerHTML = html; panel.style.display = 'block';
  }
  document.addEventListener('click', function(ev){
    var el = ev.target.closest ? ev.target.closest('[data-k]') : null;
    if(el){show(el.getAttribute('data-k'));}
  });
  document.body.setAttribute('data-report-ready', 'ok');
})();
"""


class _Drill:
    """Collects drill-down keys -> (title, case ids), embedded once as JSON."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def key(self, title: str, ids: tuple[str, ...] | list[str]) -> str:
        k = f"k{len(self.data)}"
        self.data[k] = {"t": title, "n": len(ids), "ids": list(ids[:DRILL_CAP])}
        return k

    def fig(self, title: str, f: Figure) -> str:
        """A figure's key: counts list their cases; rates list the population and the numerator."""
        if f.unit == "n":
            return self.key(title, f.hits)
        k = self.key(title, f.cases)
        if f.unit == "%":
            self.data[k]["h"] = list(f.hits[:DRILL_CAP])
            self.data[k]["hn"] = len(f.hits)
        return k


def _cards(report: Report, drill: _Drill) -> str:
    out = ['<div class="cards">']
    for kpi_id, name, label in CARDS:
        overall = report.result(kpi_id).overall
        if name is None:
            pairs = [(f"SLA {m} met", f) for m, f in overall.items() if not m.endswith("_breaches") and f.n]
        else:
            pairs = [(label, overall[name])] if name in overall else []
        for text, f in pairs:
            tone = ""
            if f.unit == "%" and f.value is not None:
                good = f.value >= 80 if "reopen" not in text else f.value <= 5
                tone = " good" if good else " bad"
            out.append(f'<div class="card{tone}" data-k="{drill.fig(text, f)}"><b>{fmt(f)}</b>'
                       f'<span>{escape(text)} · n={f.n}</span></div>')
    out.append("</div>")
    return "".join(out)


def _trends(report: Report, drill: _Drill) -> str:
    periods = list(report.flow)
    vol = {"inflow": [], "outflow": []}
    for p in periods:
        for name in vol:
            f = report.flow[p][name]
            vol[name].append((f.value, drill.fig(f"{name} {p}", f)))
    rates: dict[str, list[tuple[float | None, str | None]]] = {}
    sla = report.result("sla_compliance").cuts["period"]
    metrics = sorted({m for figs in sla.values() for m in figs if not m.endswith("_breaches")})
    for m in metrics[:3]:
        rates[f"SLA {m}"] = [(sla.get(p, {}).get(m, Figure(None, "%")).value,
                              drill.fig(f"SLA {m} {p}", sla[p][m]) if m in sla.get(p, {}) else None)
                             for p in periods]
    for kpi_id, name, label in (("fcr", "first_contact", "FCR"), ("elevel", "containment", "containment")):
        cut = report.result(kpi_id).cuts["period"]
        rates[label] = [(cut[p][name].value, drill.fig(f"{label} {p}", cut[p][name])) if p in cut else (None, None)
                        for p in periods]
    return (f'<div class="row"><div><h3>Cases in and out per {report.ctx.period}</h3>{line_chart(periods, vol)}</div>'
            f'<div><h3>Rates per {report.ctx.period}</h3>{line_chart(periods, rates, unit="%", ymax=100)}</div></div>')


def _breach_heat(report: Report, drill: _Drill) -> str:
    zone = report.ctx.zone()
    cells: dict[tuple[int, int], list[str]] = defaultdict(list)
    for v in report.views:
        for c in v.f.clocks:
            if c.breached and c.breached_at is not None:
                local = c.breached_at.astimezone(zone)
                cells[(local.weekday(), local.hour)].append(v.f.id)
    total = sum(len(ids) for ids in cells.values())
    grid = {rc: (len(ids), drill.key(f"breaches {WEEKDAYS[rc[0]]} {rc[1]:02d}:00", ids)) for rc, ids in cells.items()}
    return (f"<p class='muted'>{total} SLA breach(es) by the weekday and hour they happened ({escape(report.ctx.tz)}).</p>"
            + heat_grid(WEEKDAYS, [f"{h:02d}" for h in range(24)], grid, title="breaches"))


def _funnel(report: Report, drill: _Drill) -> str:
    ranks = sorted(report.ctx.level_rank.items(), key=lambda kv: kv[1])
    stages = []
    for level, _rank in ranks:
        reached = [v.f.id for v in report.views if level in v.visited]
        resolved_here = sum(1 for v in report.views if v.f.resolved and v.deepest == level)
        stages.append((level, len(reached), drill.key(f"cases that reached {level}", reached),
                       f"(resolved here: {resolved_here})"))
    return funnel(stages)


def _diagram(report: Report, engine: Any, sop_dir: Path | None) -> str:
    if sop_dir is None or not report.views:
        return "<p class='muted'>no SOP folder given</p>"
    top = Counter(v.f.sop for v in report.views).most_common(1)[0][0]
    try:
        from engine.render import diagram_of
        from engine.render.dot import render
        from engine.render.heatmap import collect, overlay
        from engine.sop import load_library

        lib = load_library(sop_dir)
        diagram = overlay(diagram_of(lib.sops[top], lib.levels), collect(engine, top))
        with tempfile.TemporaryDirectory() as tmp:
            svg = render(diagram, Path(tmp) / "sop.svg").read_text(encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - the rest of the report is still worth having
        return f"<p class='muted'>diagram of {escape(top)} not available: {escape(str(exc))}</p>"
    svg = _scaled(svg[svg.find("<svg"):], DIAGRAM_SCALE)
    return f"<h3>{escape(top)} (the SOP with the most cases)</h3><div class='diagram'>{svg}</div>"


def _scaled(svg: str, factor: float) -> str:
    """Graphviz writes ``width="1234pt"``; a scaled copy keeps big SOPs readable without a zoom."""
    head_end = svg.find(">")
    head = svg[:head_end]
    for attr in ("width", "height"):
        m = re.search(rf'{attr}="([0-9.]+)pt"', head)
        if m:
            head = head.replace(m.group(0), f'{attr}="{float(m.group(1)) * factor:.0f}pt"')
    return head + svg[head_end:]


def _tables(report: Report, drill: _Drill) -> str:
    out = []
    for r in report.results:
        names = list(r.overall)
        out.append(f"<details><summary>{escape(r.kpi.title)}</summary><p class='formula'>{escape(r.kpi.formula)}</p>")
        for dim, groups in r.cuts.items():
            out.append(f"<table><tr><th>{escape(dim)}</th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>")
            rows = [("all", r.overall)] + list(groups.items())
            for group, figs in rows:
                cells = []
                for n in names:
                    f = figs.get(n)
                    if f is None:
                        cells.append("<td>-</td>")
                    else:
                        cells.append(f'<td class="drill" data-k="{drill.fig(f"{r.kpi.id} {n} {dim}={group}", f)}">'
                                     f"{fmt(f)}</td>")
                out.append(f"<tr><td>{escape(group)}</td>{''.join(cells)}</tr>")
            out.append("</table>")
        out.append("</details>")
    return "".join(out)


def _feedback(report: Report, drill: _Drill) -> str:
    fb = report.feedback
    parts = ['<div class="row">']
    for dim, title in (("by_category", "What customers contact us about"), ("by_channel", "by channel"),
                       ("by_product", "by product")):
        items = [(k if k != "-" else "(not recorded)", float(len(ids)), drill.key(f"{dim} {k}", ids))
                 for k, ids in list(fb[dim].items())[:12]]
        parts.append(f"<div><h3>{title}</h3>{bars(items)}</div>")
    parts.append("</div><h3>Knowledge articles that resolved cases, per level</h3>")
    if not fb["articles"]:
        parts.append("<p class='muted'>no resolved case names an article yet</p>")
    else:
        levels = sorted({lv for lvls in fb["articles"].values() for lv in lvls}, key=report.ctx.rank)
        parts.append("<table><tr><th>article</th>" + "".join(f"<th>{escape(lv)}</th>" for lv in levels) + "</tr>")
        for article, lvls in list(fb["articles"].items())[:30]:
            cells = "".join(
                f'<td class="drill" data-k="{drill.key(f"{article} at {lv}", lvls[lv])}">{len(lvls[lv])}</td>'
                if lv in lvls else "<td>-</td>" for lv in levels)
            parts.append(f"<tr><td>{escape(article)}</td>{cells}</tr>")
        parts.append("</table>")
    return "".join(parts)


def render_html(report: Report, *, engine: Any = None, sop_dir: Path | None = None) -> str:
    """The whole page as a string (see the module docstring)."""
    drill = _Drill()
    ctx = report.ctx
    body = [
        f"<header><h1>careflow · continuous improvement report</h1><p>{report.cases} cases · as of "
        f"{ctx.now.astimezone(ctx.zone()):%Y-%m-%d %H:%M %Z} · periods per {ctx.period} in {escape(ctx.tz)} · "
        "click any figure for its cases</p></header><main>",
        f"<section><h2>At a glance</h2>{_cards(report, drill)}</section>",
        f"<section><h2>Trends</h2>{_trends(report, drill)}</section>",
        f"<section><div class='row'><div><h2>Where SLAs break: weekday × hour</h2>{_breach_heat(report, drill)}</div>"
        f"<div><h2>From e-level to specialists</h2>{_funnel(report, drill)}</div></div></section>",
        f"<section><h2>The SOP as it really runs</h2>{_diagram(report, engine, sop_dir) if engine is not None else ''}</section>",
        f"<section><h2>Feedback to product management</h2>{_feedback(report, drill)}</section>",
        f"<section><h2>Every KPI, cut by SOP, channel, level, priority, tier and period</h2>{_tables(report, drill)}</section>",
        "</main><div id='panel'></div>",
    ]
    data = json.dumps(drill.data, separators=(",", ":")).replace("</", "<\\/")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>careflow report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}"
            f"<script type='application/json' id='drill-data'>{data}</script><script>{_JS}</script></body></html>")


def write_html_report(engine: Any, out: Path, sop_dir: Path, *, ctx: ReportContext | None = None) -> Path:
    """Write the HTML report of the case store behind ``engine`` to ``out`` (called by the demo).

    Without ``ctx`` the report is as of the latest case activity (so a simulated day reads as
    that day), per day, in the default calendar's zone.
    """
    if ctx is None:
        first, last = activity_span(engine)
        ctx = context_from_org(sop_dir, now=last, period=period_for_span((last - first).total_seconds()))
    report = load_report(engine, ctx)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report, engine=engine, sop_dir=sop_dir), encoding="utf-8")
    return out
