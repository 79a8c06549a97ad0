"""Who may work on and decide a human task: the rules of the agents document, pure.

Checked by engine.runtime.ops before anything is written, and only when the library holds
an agents document (``kind: agents``); without one, nothing about agents is checked.

1. The acting agent is in the directory (else: an unknown agent, with did-you-mean and
   the known ids).
2. The agent works at the task's level (a task of a node without any level, ``unassigned``,
   has no level to check).
3. The agent holds the node's ``role``, when the node names one.
4. To choose an outcome that lists ``roles`` -- also by hand: ``escalate`` and
   ``hand_back`` are outcomes too -- the agent holds at least one of them.

Four eyes (a node with ``four_eyes: true``): the confirming agent must pass rules 1-3 and
must not be the agent who proposed the outcome.

Every refusal is a ``RunError`` naming the agent, the task and what is missing.
"""

from __future__ import annotations

import difflib

from engine.errors import RunError
from engine.sop.model import AgentsDoc, AgentSpec, NodeSpec

__all__ = ["NO_LEVEL", "check_confirmer", "check_on_task", "check_outcome"]

#: the level of a task whose node and case have none (engine.interpreter.nodes)
NO_LEVEL = "unassigned"


def _roles(agent: AgentSpec) -> str:
    return ", ".join(agent.roles) or "none"


def _agent(agents: AgentsDoc, agent_id: str, task_id: str, doing: str) -> AgentSpec:
    agent = agents.get(agent_id)
    if agent is not None:
        return agent
    known = [a.id for a in agents.agents]
    close = difflib.get_close_matches(agent_id, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f" ({agents.source})" if agents.source else ""
    raise RunError(f"unknown agent {agent_id!r}{hint}: only the agents of the agents "
                   f"document{where} may {doing} task {task_id}; known: {', '.join(known)} "
                   "(give --agent ID or set CAREFLOW_AGENT)")


def check_on_task(agents: AgentsDoc | None, agent_id: str, *, task_id: str, level: str,
                  node: NodeSpec, doing: str) -> AgentSpec | None:
    """Rules 1-3: ``agent_id`` may ``doing`` (claim, complete ...) the task ``task_id`` at
    ``level`` of ``node``. Returns the agent (None when no agents document is loaded).

    Raises:
        RunError: unknown agent, wrong level, or a missing role.
    """
    if agents is None:
        return None
    agent = _agent(agents, agent_id, task_id, doing)
    if level != NO_LEVEL and level not in agent.levels:
        raise RunError(f"{agent.id} may not {doing} task {task_id} ({node.id}): it is a level "
                       f"{level} task and {agent.id} works at {', '.join(agent.levels)}",
                       node_id=node.id)
    if node.role is not None and node.role not in agent.roles:
        raise RunError(f"{agent.id} may not {doing} task {task_id} ({node.id}): it needs role "
                       f"{node.role!r}, which {agent.id} does not have (roles: {_roles(agent)})",
                       node_id=node.id)
    return agent


def check_outcome(agent: AgentSpec | None, *, task_id: str, node: NodeSpec,
                  outcome: str) -> None:
    """Rule 4: ``agent`` may choose ``outcome`` of ``node`` (nothing to check without an
    agent, or for an outcome that is not there or lists no roles).

    Raises:
        RunError: the outcome lists roles and the agent holds none of them.
    """
    spec = node.outcome_spec(outcome)
    if agent is None or spec is None or not spec.roles:
        return
    if not set(spec.roles) & set(agent.roles):
        raise RunError(f"{agent.id} may not choose outcome {outcome!r} of task {task_id} "
                       f"({node.id}): it needs one of the roles {', '.join(spec.roles)}, and "
                       f"{agent.id} has {_roles(agent)}", node_id=node.id)


def check_confirmer(agents: AgentsDoc | None, agent_id: str, *, task_id: str, level: str,
                    node: NodeSpec, proposed_by: str | None, doing: str = "confirm") -> None:
    """Four eyes: ``agent_id`` may confirm or reject the outcome proposed on ``task_id``.

    The second person is never the first -- also without an agents document.

    Raises:
        RunError: the agent proposed it, or fails rules 1-3.
    """
    if proposed_by is not None and agent_id == proposed_by:
        raise RunError(f"{agent_id} proposed the outcome of task {task_id} ({node.id}) and "
                       f"cannot {doing} it too: four eyes means a second agent decides",
                       node_id=node.id)
    check_on_task(agents, agent_id, task_id=task_id, level=level, node=node, doing=doing)
