"""Reporting for continuous improvement: KPIs, the HTML report, event log exports, conformance.

Pipeline: engine.reporting.facts (read the case store, set-based) -> derive (per-case values)
-> kpis (pure formulas) -> report (overall + cuts) -> terminal / html / export (CSV, JSON).
Process mining: eventlog (traces from the audit trail) -> xes / ocel writers; conformance
replays traces against the compiled SOP graph. See docs/reporting.md.
"""

from __future__ import annotations

__all__: list[str] = []
