"""Print the demo's summary (rich tables) and write the HTML report of the day."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from engine.demo.simulation import DemoConfig, DemoRun
from engine.demo.summary import DemoSummary

__all__ = ["print_summary", "write_report"]


def write_report(engine: Any, out: Path, sop_dir: Path) -> Path | None:
    """The process owner's HTML report of the day (engine.reporting), when available."""
    try:
        from engine.reporting.html import write_html_report
    except ModuleNotFoundError:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_html_report(engine, out, sop_dir=sop_dir)
    return out


def _table(title: str, rows: dict[str, Any], first: str, second: str = "cases") -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column(first)
    table.add_column(second, justify="right")
    for key, value in rows.items():
        table.add_row(str(key), str(value))
    return table


def print_summary(console: Console, cfg: DemoConfig, run: DemoRun, s: DemoSummary,
                  report: Path | None) -> None:
    console.rule("[bold]the day at a glance")
    console.print(
        f"{run.contacts} contacts -> {s.cases} cases; intake: "
        + ", ".join(f"{k} {v}" for k, v in sorted(run.intake.items()))
        + f"; {run.customer_replies} customer replies; tasks done "
        + ", ".join(f"{k} {v}" for k, v in run.tasks_completed.items())
        + (f" ({run.hand_backs} of them handed back by hand)" if run.hand_backs else "")
        + f"; {run.timers_fired} timers fired; "
        + (f"{run.flow_runs} Prefect flow runs; " if cfg.use_prefect else "without Prefect; ")
        + f"{run.wall_seconds:.1f} s")
    grid = Table.grid(padding=(0, 4))
    grid.add_row(_table("by channel", s.by_channel, "channel"),
                 _table("by SOP", s.by_sop, "SOP"),
                 _table("deepest level reached", s.deepest_level, "level"))
    console.print(grid)
    grid = Table.grid(padding=(0, 4))
    sla = Table(title="SLA clocks", title_justify="left", show_edge=False, pad_edge=False)
    sla.add_column("clock")
    sla.add_column("met / breached / other", justify="right")
    for name, counts in s.sla.items():
        other = sum(v for k, v in counts.items() if k not in ("met", "breached"))
        sla.add_row(name, f"{counts.get('met', 0)} / {counts.get('breached', 0)} / {other}")
    grid.add_row(_table("outcomes", s.by_outcome, "outcome"), sla,
                 _table("status", s.by_status, "status"))
    console.print(grid)
    console.print(f"incidents open: {s.incidents_open}   dead letters: {s.dead_letters}   "
                  f"outbox: {s.outbox}   audit trail entries: {s.audit_rows}")
    console.rule("[bold]where to look next")
    db = cfg.db_path
    env = f"CAREFLOW_DATABASE_URL=sqlite:///{db}"
    for what, case_id in list(s.sample_cases.items())[:4]:
        console.print(f"  {what:<22} {env} careflow case show {case_id}")
    console.print(f"  open work queues       {env} careflow task list --level L1")
    end = datetime.combine(cfg.day + timedelta(days=cfg.follow_days), cfg.closes,
                           ZoneInfo(cfg.timezone))
    console.print(f"  SLA breaches soon      {env} careflow sla list --breaching-within 4h "
                  f"--at {end.isoformat()}")
    if report is not None:
        console.print(f"  the day's report       {report}")
    console.print(f"  KPIs in the terminal   {env} careflow report")
    console.print(f"  audit trails intact?   {env} careflow case verify")
    console.print("  the Prefect UI         careflow serve  (then http://127.0.0.1:4200)")
