"""careflow's command line: one Typer app assembled from one small module per area.

Each module in ``COMMAND_MODULES`` exposes ``register(app: typer.Typer) -> None`` and keeps
its heavy imports (Prefect, SQLAlchemy, FastAPI) inside the command functions, so that
``careflow validate`` and friends start fast and never import Prefect.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["COMMAND_MODULES", "build_app"]

#: modules under engine.cli, in help order; a module not yet present is skipped
COMMAND_MODULES = (
    "sop_cmds",  # validate, compile, schema
    "case_cmds",  # case start/event/show/list, run, worker, serve, db
    "task_cmds",  # task list/claim/complete/escalate/hand-back/show, incident
    "demo_cmds",  # demo
    "sla_cmds",  # calendar add/diff, sla list
    "channel_cmds",  # api, deadletter, customer, connectors
    "render_cmds",  # render, diff, document
    "report_cmds",  # report, export-log, conformance
    "kb_cmds",  # kb list/show/import/publish/retire/gaps
)


#: commands people run often and want fast: their module alone is registered when the
#: command line starts with one of them (``careflow --help`` still lists everything);
#: tests/test_core_contracts.py checks that each module really defines its commands
FAST_PATH = {
    "validate": "sop_cmds", "compile": "sop_cmds", "schema": "sop_cmds",
    "render": "render_cmds", "diff": "render_cmds", "document": "render_cmds",
    "calendar": "sla_cmds",
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The CLI; with ``argv`` naming a fast-path command, only that command's module."""
    only = FAST_PATH.get(argv[0]) if argv else None
    app = typer.Typer(
        name="careflow",
        help="Run a Customer Care Center on declarative Standard Operating Procedures.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in COMMAND_MODULES:
        if only is not None and name != only:
            continue
        qualified = f"{__name__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                continue
            raise
        module.register(app)
    return app
