"""CLI of human work and incidents: ``careflow task ...`` and ``careflow incident ...``.

``task complete`` checks the outcome, the form fields and the knowledge outcome against
the case's SOP version and says exactly what is wrong (exit 1); when two agents complete
the same task, exactly one wins and the other is told who did (exit 1). With an agents
document in the library, every task command checks the acting agent (``--agent`` /
``CAREFLOW_AGENT``): known, at the task's level, with the node's role and the outcome's
roles (exit 1 saying what is missing). On a ``four_eyes`` task ``task complete`` proposes
the outcome and ``task confirm`` (a second agent) confirms or rejects it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.tables import id_table
from engine.cli.case_cmds import DEFAULT_SOPS, DbOpt, NoRunOpt, SopsOpt, open_runtime, parse_pairs, settle

if TYPE_CHECKING:
    from engine.store.models import HumanTaskRow

__all__ = ["register"]

task_app = typer.Typer(help="Human tasks in the competence levels' queues.", no_args_is_help=True)
incident_app = typer.Typer(help="Automated steps that failed for good.", no_args_is_help=True)

def _knowledge_outcome(article: str | None, none_reason: str | None) -> dict[str, str] | None:
    """The knowledge outcome of ``--knowledge-article`` / ``--knowledge-none`` (exit 2: both)."""
    if article and none_reason:
        typer.echo("careflow: give --knowledge-article or --knowledge-none, not both", err=True)
        raise typer.Exit(2)
    if article:
        return {"kind": "linked", "article": article}
    return {"kind": "none", "reason": none_reason} if none_reason else None


KnowledgeNoneOpt = Annotated[str | None, typer.Option("--knowledge-none", help="No article applies, because ...")]
AgentOpt = Annotated[str, typer.Option("--agent", "-a", envvar="CAREFLOW_AGENT", help="Who you are.")]


@task_app.command("list")
def task_list(
    level: Annotated[str | None, typer.Option("--level", "-l", help="Queue of this level (e-level, L1, L2, ...).")] = None,
    status: Annotated[str, typer.Option(help="open (open+claimed+proposed), claimed, proposed, completed, cancelled.")] = "open",
    case: Annotated[str | None, typer.Option(help="Only tasks of this case.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """A level's task queue, earliest due first (proposed tasks say who proposed)."""
    from rich.console import Console
    from sqlalchemy.orm import Session

    from engine.store.tasks import list_tasks

    with open_runtime(db, sops) as rt, Session(rt.engine) as session:
        rows = list_tasks(session, level=level, status=status, case_id=case, limit=limit)
        table = id_table("task", "case", "level", "title", "status", "assignee", "due",
                         ids={"task": [r.id for r in rows], "case": [r.case_id for r in rows]})
        for r in rows:
            state = f"proposed by {r.proposed_by}" if r.status == "proposed" else r.status
            table.add_row(r.id, r.case_id, r.level, r.title or r.node, state,
                          r.assignee or "-", r.due_at.isoformat(timespec="minutes") if r.due_at else "-")
        Console().print(table)


@task_app.command("show")
def task_show(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """A task with who may work on it, its instructions, outcomes, form and the case data."""
    from sqlalchemy.orm import Session

    from engine.store.cases import load_case
    from engine.store.tasks import get_task

    with open_runtime(db, sops) as rt, Session(rt.engine) as session:
        task = get_task(session, task_id)
        case = load_case(session, task.case_id)
        node = rt.sops.by_hash(case.sop_hash, session).node(task.node)
        typer.echo(f"{task.id}  [{task.level}] {task.title or task.node}  ({task.status}"
                   + (f", {task.assignee}" if task.assignee else "") + ")")
        typer.echo(f"case {case.id} ({case.sop_id} {case.sop_version}), priority {case.priority}, "
                   f"tier {case.tier}, due {task.due_at or '-'}")
        typer.echo(f"role: {node.role or 'any agent of the level'}"
                   + ("; four eyes: a second agent confirms the outcome" if node.four_eyes else ""))
        if node.instructions:
            typer.echo(f"instructions: {node.instructions}")
        for o in node.outcomes:
            extra = " (knowledge outcome required)" if o.knowledge == "required" else ""
            roles = f" [roles: {', '.join(o.roles)}]" if o.roles else ""
            typer.echo(f"  outcome {o.name}{': ' + o.label if o.label else ''}{roles}{extra}")
        for f in node.form:
            req = "required" if f.required else "optional"
            enum = f" one of {', '.join(map(str, f.enum))}" if f.enum else ""
            typer.echo(f"  field {f.name}: {f.type}, {req}{enum}")
        data = (case.state or {}).get("data", {})
        typer.echo("case data: " + json.dumps(data, default=str, sort_keys=True))
        _print_decision(task)
        _print_suggestions(session, task.id)


def _print_decision(task: HumanTaskRow) -> None:
    """The proposal waiting for confirmation, the last rejection, the completion."""
    if task.status == "proposed":
        typer.echo(f"proposed by {task.proposed_by} at {task.proposed_at}: "
                   f"{task.proposed_outcome} {json.dumps(task.proposed_fields)} -- a second "
                   f"agent decides: careflow task confirm {task.id} --agent ID "
                   "(or --reject --reason R)")
    if task.rejection:
        last = task.rejection
        typer.echo(f"last proposal ({last.get('outcome')} by {last.get('proposed_by')}) "
                   f"rejected by {last.get('by')}: {last.get('reason')}")
    if task.outcome:
        confirmed = f", confirmed by {task.confirmed_by}" if task.confirmed_by else ""
        typer.echo(f"completed by {task.completed_by}{confirmed}: {task.outcome} "
                   f"{json.dumps(task.fields)}")


def _print_suggestions(session: object, task_id: str) -> None:
    """Agent assist: the knowledge articles suggested for the task's case."""
    from engine.errors import CareflowError
    from engine.knowledge.assist import suggestions_for_task

    try:
        hits = suggestions_for_task(session, task_id, limit=3)  # type: ignore[arg-type]
    except CareflowError as exc:
        typer.echo(f"suggested articles: unavailable ({exc})")
        return
    if not hits:
        typer.echo("suggested articles: none found")
    for h in hits:
        typer.echo(f"  suggested article {h.article_id}: {h.title} ({h.confidence:.2f}) "
                   "-- complete with --knowledge-article ID if it solved the case")


@task_app.command("claim")
def task_claim(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    agent: AgentOpt = "agent",
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Take a task from the queue (no one else can complete it then)."""
    from engine.runtime import ops

    with open_runtime(db, sops) as rt:
        ops.claim_task(rt, task_id, agent)
        typer.echo(f"task {task_id} claimed by {agent}")


@task_app.command("complete")
def task_complete(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    outcome: Annotated[str, typer.Option("--outcome", "-o", help="One of the task's outcomes.")],
    field: Annotated[list[str] | None, typer.Option("--field", "-f", help="Form field name=value (repeatable).")] = None,
    agent: AgentOpt = "agent",
    knowledge_article: Annotated[str | None, typer.Option("--knowledge-article", help="Solved with this knowledge article.")] = None,
    knowledge_none: KnowledgeNoneOpt = None,
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Complete a task with an outcome and form fields; the case moves on."""
    from engine.runtime import ops

    knowledge = _knowledge_outcome(knowledge_article, knowledge_none)
    fields = parse_pairs(field, "--field")
    with open_runtime(db, sops) as rt:
        task = ops.complete_task(rt, task_id, outcome, fields, agent=agent, knowledge=knowledge)
        if task.status == "proposed":
            typer.echo(f"task {task_id}: {agent} proposed {outcome}; four eyes: a second agent "
                       f"confirms it (careflow task confirm {task_id} --agent ID) or rejects it "
                       "(--reject --reason R)")
            return
        typer.echo(f"task {task_id} completed by {agent}: {outcome}")
        if not no_run:
            from engine.cli.case_cmds import _print_case_brief

            settle(rt)
            _print_case_brief(rt, task.case_id)


@task_app.command("confirm")
def task_confirm(
    task_id: Annotated[str, typer.Argument(help="The task whose proposed outcome you decide on.")],
    agent: AgentOpt = "agent",
    reject: Annotated[bool, typer.Option("--reject", help="Reject the proposal: the task is open again.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why it is rejected (with --reject).")] = None,
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Four eyes: a second agent confirms the proposed outcome (the case moves on) or rejects it."""
    from engine.runtime import ops

    if reject and not reason:
        typer.echo("careflow: --reject needs --reason", err=True)
        raise typer.Exit(2)
    if reason and not reject:
        typer.echo("careflow: --reason goes with --reject", err=True)
        raise typer.Exit(2)
    with open_runtime(db, sops) as rt:
        if reject:
            task = ops.reject_task(rt, task_id, agent=agent, reason=str(reason))
            last = task.rejection or {}
            typer.echo(f"task {task_id}: {agent} rejected {last.get('outcome')} proposed by "
                       f"{last.get('proposed_by')} ({reason}); the task is open again")
            return
        task = ops.confirm_task(rt, task_id, agent=agent)
        typer.echo(f"task {task_id} completed: {task.outcome} proposed by {task.completed_by}, "
                   f"confirmed by {agent}")
        if not no_run:
            from engine.cli.case_cmds import _print_case_brief

            settle(rt)
            _print_case_brief(rt, task.case_id)


@task_app.command("escalate")
def task_escalate(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it goes deeper.")],
    to_level: Annotated[str | None, typer.Option("--to", help="Target level (default: the next deeper one).")] = None,
    agent: AgentOpt = "agent",
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Escalate a task by hand to a deeper competence level."""
    from engine.runtime import ops

    with open_runtime(db, sops) as rt:
        task = ops.escalate_task(rt, task_id, reason, agent=agent, to_level=to_level)
        typer.echo(f"task {task_id}: escalation queued ({reason})")
        if not no_run:
            from engine.cli.case_cmds import _print_case_brief

            settle(rt)
            _print_case_brief(rt, task.case_id)


@task_app.command("hand-back")
def task_hand_back(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it goes back.")],
    to_level: Annotated[str | None, typer.Option("--to", help="Target level (default: the next shallower one).")] = None,
    agent: AgentOpt = "agent",
    knowledge_article: Annotated[str | None, typer.Option("--knowledge-article", help="What the front line should use next time.")] = None,
    knowledge_none: KnowledgeNoneOpt = None,
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Hand a task back to a shallower competence level, with what the front line should know."""
    from engine.runtime import ops

    knowledge = _knowledge_outcome(knowledge_article, knowledge_none)
    with open_runtime(db, sops) as rt:
        task = ops.hand_back_task(rt, task_id, reason, agent=agent, to_level=to_level,
                                  knowledge=knowledge)
        typer.echo(f"task {task_id}: hand-back queued ({reason})")
        if not no_run:
            from engine.cli.case_cmds import _print_case_brief

            settle(rt)
            _print_case_brief(rt, task.case_id)


@incident_app.command("list")
def incident_list(
    status: Annotated[str, typer.Option(help="open, retried, or all.")] = "open",
    case: Annotated[str | None, typer.Option(help="Only incidents of this case.")] = None,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Incidents: automated steps that failed after their retries."""
    from rich.console import Console
    from sqlalchemy.orm import Session

    from engine.store.incidents import list_incidents

    with open_runtime(db, sops) as rt, Session(rt.engine) as session:
        rows = list_incidents(session, status=None if status == "all" else status, case_id=case)
        table = id_table("id", "case", "node", "attempt", "status", "error", "created",
                         ids={"case": [r.case_id for r in rows]})
        for r in rows:
            table.add_row(str(r.id), r.case_id, r.node, str(r.attempt), r.status, r.error[:80],
                          r.created_at.isoformat(timespec="seconds"))
        Console().print(table)


@incident_app.command("retry")
def incident_retry(
    incident_id: Annotated[int, typer.Argument(help="The incident id (careflow incident list).")],
    agent: AgentOpt = "operator",
    no_run: NoRunOpt = False,
    sops: SopsOpt = DEFAULT_SOPS,
    db: DbOpt = None,
) -> None:
    """Retry the failed step of an incident (completed steps are not re-run)."""
    from engine.runtime import ops

    with open_runtime(db, sops) as rt:
        row = ops.retry_incident(rt, incident_id, actor=agent)
        typer.echo(f"incident {incident_id}: retry queued for case {row.case_id} at {row.node}")
        if not no_run:
            from engine.cli.case_cmds import _print_case_brief

            settle(rt)
            _print_case_brief(rt, row.case_id)


def register(app: typer.Typer) -> None:
    app.add_typer(task_app, name="task")
    app.add_typer(incident_app, name="incident")
