"""``careflow demo``: a simulated day of the care center, summarised at a glance."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def demo(
    db: Path = typer.Option(Path("out/demo/careflow-demo.db"), help="SQLite file for the day (replaced)."),
    sops: Path = typer.Option(Path("sop_definitions"), help="SOP library folder."),
    limit: int = typer.Option(0, help="Only the first N contacts (0 = the whole day)."),
    follow_days: int = typer.Option(2, help="Days simulated after the contact day."),
    no_prefect: bool = typer.Option(False, "--no-prefect", help="Advance without Prefect flows."),
    report: Path = typer.Option(Path("out/demo/report.html"), help="Where the HTML report goes."),
) -> None:
    """Simulate a day of customer contacts through the real engine on a simulated clock."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.demo.render import print_summary, write_report
    from engine.demo.simulation import DemoConfig, Simulation
    from engine.demo.summary import summarise

    console = Console()
    if not sops.is_dir():
        typer.echo(f"careflow demo: no SOP library at {sops}: run it in the careflow checkout "
                   f"(bash scripts/demo.sh does) or pass --sops DIR", err=True)
        raise typer.Exit(2)
    cfg = DemoConfig(db_path=db, sop_dir=sops, limit=limit or None, follow_days=follow_days,
                     use_prefect=not no_prefect)
    sim = Simulation(cfg)
    console.print(f"[bold]careflow demo[/]: {len(sim._contacts)} contacts on {cfg.day:%A %d %B %Y}"
                  f" ({cfg.timezone}), SOPs from {sops}, database {db}")
    with console.status("setting up: migrations, SOP library, CRM master data, knowledge base"):
        sim.setup()
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} ticks"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("simulating", total=len(sim.ticks()))

        def on_tick(done: int, total: int, instant: object) -> None:
            local = sim.clock.now().astimezone(sim.tz)
            progress.update(task, completed=done,
                            description=f"{local:%a %H:%M} contacts {sim.run.contacts:>3}")

        run = sim.execute(on_tick)
    summary = summarise(sim.rt.engine)
    written = write_report(sim.rt.engine, report, sops)
    print_summary(console, cfg, run, summary, written)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
