"""Benchmark report generation over 100,000 cases; prints its figures.

Run: ``.venv/bin/python benchmarks/bench_report.py [--cases N]``. Bulk-inserts N synthetic
cases (90 days, 8 channels, 6 SOPs, SLA clocks in the case state, escalations, hand-backs,
human tasks, e-level attempts, incidents) into a fresh SQLite file with Core executemany,
then times: loading the facts, computing every KPI with all cuts, the terminal tables, the
JSON and CSV exports and the HTML page (without the Graphviz diagram, which does not depend
on the case count), and the XES export.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from engine.reporting.context import context_from_org
from engine.reporting.eventlog import iter_traces
from engine.reporting.export import to_csv, to_json
from engine.reporting.facts import load_facts
from engine.reporting.html import render_html
from engine.reporting.report import build_report
from engine.reporting.terminal import print_report
from engine.reporting.xes import write_xes
from engine.store.all_models import load_all
from engine.store.db import make_engine

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = ("email", "phone", "web", "chat", "social", "letter", "fax", "sms")
SOPS = ("password_reset", "billing_question", "general_enquiry", "complaint_handling", "warranty_claim",
        "identity_check")
START = datetime(2026, 8, 1, 6, tzinfo=UTC)


def _clock(metric: str, start: datetime, rnd: random.Random) -> dict[str, object]:
    done = rnd.random() < 0.85
    took = rnd.expovariate(1 / 5400)
    return {"name": metric, "state": {
        "metric": metric, "state": "completed" if done else "running", "breached": took > 14400,
        "started_at": start.isoformat(), "first_started_at": start.isoformat(),
        "completed_at": (start + timedelta(seconds=took)).isoformat() if done else None,
        "breached_at": (start + timedelta(seconds=14400)).isoformat() if took > 14400 else None,
        "business_elapsed": int(took * 0.6)}}


def populate(url: str, n: int, seed: int = 7) -> float:
    """Insert ``n`` synthetic cases with their audit records and tasks; returns seconds taken."""
    t0 = time.perf_counter()
    engine = make_engine(url)
    base = load_all()
    base.metadata.create_all(engine)
    tables = base.metadata.tables
    rnd = random.Random(seed)
    cases, states, audit, tasks, attempts, incidents = [], [], [], [], [], []
    for i in range(n):
        cid = f"C{i:07d}"
        created = START + timedelta(seconds=rnd.randrange(90 * 86400))
        path = ["e"]
        for lvl in ("L1", "L2", "specialist"):
            if rnd.random() < (0.55 if lvl == "L1" else 0.25):
                path.append(lvl)
            else:
                break
        ended = created + timedelta(seconds=rnd.expovariate(1 / 30000)) if rnd.random() < 0.8 else None
        level = path[-1]
        state = {"data": {"intent": rnd.choice(("reset", "invoice", "warranty", "complaint", "other")),
                          "product": rnd.choice(("router", "app", "tv", "-"))},
                 "clocks": {"first_response": _clock("first_response", created, rnd),
                            "resolution_total": _clock("resolution_total", created, rnd)}}
        cases.append({"id": cid, "sop_id": rnd.choice(SOPS), "sop_hash": "h", "sop_version": "1.0.0",
                      "status": "resolved" if ended else "open", "level": level,
                      "priority": rnd.choice(("low", "normal", "normal", "high")),
                      "tier": rnd.choice(("standard", "standard", "gold")), "channel": rnd.choice(CHANNELS),
                      "customer_id": f"K{rnd.randrange(n // 3 + 1)}", "created_at": created,
                      "updated_at": created, "ended_at": ended})
        states.append({"case_id": cid, "state": state})
        seq = 0

        def step(at: datetime, *entries: tuple[str, dict[str, object], str | None]) -> None:
            """One audit record: the entries of one step."""
            nonlocal seq
            audit.append({"case_id": cid, "seq": seq + len(entries), "first_seq": seq + 1,
                          "event_seq": None, "at": at, "sop_version": "1.0.0", "sop_hash": "h",
                          "entries": [{"actor": "system", "kind": kind, "node": node,
                                       "detail": detail} for kind, detail, node in entries],
                          "prev_hash": "", "hash": "", "form": 1})
            seq += len(entries)
        step(created, ("case_started", {}, "start"),
             ("path", {"nodes": ["start", "classify"]}, None))
        for a, b in zip(path, path[1:], strict=False):
            step(created + timedelta(minutes=30),
                 ("escalated", {"source": a, "target": b, "counted": True}, None))
            tasks.append({"id": f"{cid}:{b}", "case_id": cid, "node": f"work_{b}", "level": b,
                          "status": "completed" if ended else "open", "created_at": created,
                          "completed_at": ended, "knowledge": {"article": f"kb-{rnd.randrange(40)}"}
                          if rnd.random() < 0.3 else None})
        if len(path) > 2 and rnd.random() < 0.3:
            step(created + timedelta(hours=2),
                 ("handed_back", {"source": path[-1], "target": path[-2]}, None))
        if ended:
            step(ended, ("case_ended", {"status": "resolved"}, "done"))
        attempts.append({"idempotency_key": cid, "case_id": cid, "query": "q", "language": "en",
                         "outcome": rnd.choice(("confirmed", "potential", "escalated")), "at": created,
                         "article_id": f"kb-{rnd.randrange(40)}"})
        if rnd.random() < 0.03:
            incidents.append({"case_id": cid, "node": "classify", "error": "boom", "created_at": created})
    with engine.begin() as conn:
        conn.execute(tables["sop_versions"].insert(), [{"hash": "h", "sop_id": "x", "version": "1.0.0",
                                                        "source": "", "created_at": START}])
        conn.execute(tables["cases"].insert(), cases)
        conn.execute(tables["case_states"].insert(), states)
        conn.execute(tables["audit_records"].insert(), audit)
        conn.execute(tables["human_tasks"].insert(), tasks)
        conn.execute(tables["kb_elevel_attempts"].insert(), attempts)
        conn.execute(tables["incidents"].insert(), incidents)
    entries = sum(len(r["entries"]) for r in audit)
    print(f"populate: {n:,} cases, {entries:,} audit entries in {len(audit):,} records, "
          f"{len(tasks):,} tasks in "
          f"{time.perf_counter() - t0:.1f} s")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        populate(url, args.cases)
        engine = make_engine(url)
        ctx = context_from_org(ROOT / "sop_definitions", now=START + timedelta(days=91), period="week")
        timings: dict[str, tuple[float, float]] = {}

        def timed(name: str, fn):  # type: ignore[no-untyped-def]
            t, c = time.perf_counter(), time.process_time()
            value = fn()
            timings[name] = (time.perf_counter() - t, time.process_time() - c)
            return value

        gc.disable()  # as load_report does (see its docstring)
        facts = timed("load facts (SQL)", lambda: load_facts(engine))
        report = timed("KPIs x 6 cuts", lambda: build_report(facts, ctx))
        gc.enable()
        timed("terminal tables", lambda: print_report(report, Console(file=io.StringIO(), width=160)))
        timed("JSON", lambda: len(json.dumps(to_json(report), default=str)))
        timed("CSV", lambda: len(to_csv(report)))
        html = timed("HTML (no diagram)", lambda: render_html(report))
        timed("XES export", lambda: write_xes(iter_traces(engine), Path(tmp) / "log.xes"))
    core = [v for k, v in timings.items() if k not in ("XES export", "JSON", "CSV")]
    print(f"report for {args.cases:,} cases ({ctx.period} periods in {ctx.tz}); wall / CPU seconds "
          "(CPU is the honest figure on a shared machine):")
    for name, (wall, cpu) in timings.items():
        print(f"  {name:<22} {wall:6.2f} s  {cpu:6.2f} s CPU")
    print(f"  {'report total':<22} {sum(w for w, _ in core):6.2f} s  {sum(c for _, c in core):6.2f} s CPU"
          "  (load + KPIs + terminal + HTML)")
    print(f"  HTML size              {len(html) / 1e6:6.1f} MB")


if __name__ == "__main__":
    main()
