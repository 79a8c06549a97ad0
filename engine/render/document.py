"""The SOP as an auditor reads it: purpose, owner, version and hash, the diagram, then every
step in words (who does it, at which level, what decides the next step, which SLA applies and
what happens on a breach). One self-contained HTML file; every text is escaped."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from engine.render.extract import label_of
from engine.sop.model import NodeSpec, NodeType, SopSpec

__all__ = ["describe_node", "to_html"]


def _e(text: object) -> str:
    return html.escape(str(text))


def _ref(spec: SopSpec, node_id: str | None) -> str:
    if not node_id:
        return "—"
    node = spec.nodes.get(node_id)
    return f'<a href="#n-{_e(node_id)}">{_e(label_of(node) if node else node_id)}</a>'


def describe_node(spec: SopSpec, n: NodeSpec, levels: dict[str, str]) -> Iterator[str]:
    """Sentences (HTML) describing one step."""
    t = n.type
    who = levels.get(n.level or "", n.level or "")
    if t is NodeType.START:
        yield f"The case starts here and continues with {_ref(spec, n.next)}."
    elif t is NodeType.ACTION:
        yield (f"The system ({_e(who or 'e-level')}) runs the automated action "
               f"<code>{_e(n.action)}</code>.")
        if n.retry.max_attempts > 1:
            delay = n.retry.delay.text if n.retry.delay else "immediately"
            yield (f"If it fails it is tried up to {n.retry.max_attempts} times in all, first "
                   f"after {_e(delay)}, each wait {n.retry.backoff:g}× longer.")
        if n.on_error:
            yield f"If it still fails, the case goes to {_ref(spec, n.on_error)}."
        else:
            yield "If it still fails, an incident is raised for the operators."
        yield f"Then: {_ref(spec, n.next)}."
    elif t is NodeType.SET:
        fields = ", ".join(f"<code>{_e(k)}</code>" for k in n.set)
        yield f"The system records {fields}; then {_ref(spec, n.next)}."
    elif t is NodeType.DECISION:
        yield "The next step is decided by these rules, checked in order; the first that holds wins:"
        items = [f"<li>if <code>{_e(b.when.source if b.when else 'true')}</code>"
                 f"{' (' + _e(b.label) + ')' if b.label else ''}: {_ref(spec, b.next)}</li>"
                 for b in n.branches]
        if n.otherwise:
            items.append(f"<li>otherwise: {_ref(spec, n.otherwise)}</li>")
        yield "<ul>" + "".join(items) + "</ul>"
    elif t is NodeType.PARALLEL:
        kind = "those branches whose condition holds" if any(b.when for b in n.branches) else "all branches"
        yield (f"The work splits; {kind} run at the same time and meet again at "
               f"{_ref(spec, n.join)}:")
        yield "<ul>" + "".join(
            f"<li>{_ref(spec, b.next)}"
            f"{' if <code>' + _e(b.when.source) + '</code>' if b.when else ''}</li>"
            for b in n.branches) + "</ul>"
    elif t is NodeType.JOIN:
        yield f"Waits until every started branch has arrived; then {_ref(spec, n.next)}."
    elif t is NodeType.HUMAN_TASK:
        yield (f"A person at <b>{_e(who)}</b>{' (role ' + _e(n.role) + ')' if n.role else ''} "
               f"does this task.")
        if n.instructions:
            yield f"Instructions: <i>{_e(n.instructions)}</i>"
        if n.form:
            yield "They record: " + ", ".join(
                f"<code>{_e(f.name)}</code>{' (required)' if f.required else ''}" for f in n.form) + "."
        yield "<ul>" + "".join(
            f"<li>outcome <b>{_e(o.name)}</b>{' — ' + _e(o.label) if o.label else ''}: "
            f"{_ref(spec, o.next)}"
            f"{'; a knowledge outcome must be recorded' if o.knowledge == 'required' else ''}</li>"
            for o in n.outcomes) + "</ul>"
        if n.timeout:
            where = f" business time ({_e(n.timeout.calendar)})" if n.timeout.calendar else ""
            yield (f"If it is not done within {_e(n.timeout.after.text)}{where}, the task is "
                   f"withdrawn and the case goes to {_ref(spec, n.timeout.next)}.")
    elif t is NodeType.ESCALATE:
        yield (f"The case is escalated to <b>{_e(levels.get(n.to or '', n.to))}</b>"
               f"{': ' + _e(n.reason) if n.reason else ''}. Then {_ref(spec, n.next)}.")
    elif t is NodeType.HAND_BACK:
        need = {"required": "A knowledge outcome is required (an article linked or drafted, "
                            "or a reason why none).", "optional": "A knowledge outcome may be recorded."}
        yield (f"The case is handed back to <b>{_e(levels.get(n.to or '', n.to))}</b>. "
               f"{need.get(n.knowledge, '')} Then {_ref(spec, n.next)}.")
    elif t is NodeType.WAIT:
        yield "The case waits; whichever of these comes first decides:"
        items = [f"<li>event <b>{_e(w.event)}</b>"
                 f"{' when <code>' + _e(w.when.source) + '</code>' if w.when else ''}: "
                 f"{_ref(spec, w.next)}</li>" for w in n.on]
        if n.timeout:
            items.append(f"<li>nothing within {_e(n.timeout.after.text)}: "
                         f"{_ref(spec, n.timeout.next)}</li>")
        yield "<ul>" + "".join(items) + "</ul>"
    elif t is NodeType.LOOP:
        yield (f"Counts how often the case passes here: up to {n.max} times it goes to "
               f"{_ref(spec, n.body)}, after that to {_ref(spec, n.exit)}.")
    elif t in (NodeType.SLA_START, NodeType.SLA_PAUSE, NodeType.SLA_RESUME, NodeType.SLA_STOP):
        verb = {"sla_start": "starts", "sla_pause": "pauses", "sla_resume": "resumes",
                "sla_stop": "stops"}[t.value]
        policy = f" under policy <code>{_e(n.policy)}</code>" if n.policy else \
            " under the first SLA policy that applies to the case (tier, priority, channel)"
        metric = f" ({_e(n.metric)})" if n.metric and t is NodeType.SLA_START else ""
        yield (f"The SLA clock <b>{_e(n.clock)}</b>{metric} {verb} here"
               f"{policy if t is NodeType.SLA_START else ''}. Then {_ref(spec, n.next)}.")
        if t is NodeType.SLA_START:
            yield ("Warnings and the breach fire at the policy's thresholds; a breach climbs the "
                   "policy's escalation ladder (see docs/sla.md).")
    elif t is NodeType.SLA_CHECK:
        yield (f"Checks the SLA clock <b>{_e(n.clock)}</b>: within target → {_ref(spec, n.ok)}; "
               f"warning → {_ref(spec, n.warning or n.ok)}; breached → {_ref(spec, n.breached)}.")
    elif t is NodeType.CALL:
        yield (f"Runs the SOP <code>{_e(n.sop)}</code> as a sub-case and waits for its outcome; "
               f"then {_ref(spec, n.next)}.")
    elif t is NodeType.END:
        ends = "ends the whole case" if n.terminate else "ends this path (the case ends when no path is left)"
        yield f"The case {ends} with outcome <b>{_e(n.outcome)}</b> (status {_e(n.status)})."


_CSS = """body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{margin-bottom:0}.meta{color:#555}.step{border-left:4px solid #90a4ae;padding:.3em 1em;margin:1em 0}
.step h3{margin:.2em 0}.kind{font-size:.8em;color:#fff;background:#607d8b;border-radius:3px;padding:1px 6px}
.human_task{border-color:#fbc02d}.action{border-color:#1e88e5}.end{border-color:#37474f}
.decision,.sla_check{border-color:#fb8c00}.escalate{border-color:#e64a19}
code{background:#f3f3f3;padding:0 3px}.diagram{overflow-x:auto;border:1px solid #ddd;padding:8px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"""


def to_html(compiled: Any, levels_doc: Any = None, svg: str | None = None) -> str:
    """The whole document; ``svg`` is the rendered diagram to embed (optional)."""
    spec: SopSpec = compiled.spec
    levels = {lv.id: lv.name for lv in levels_doc.levels} if levels_doc else {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(spec.title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{_e(spec.title)}</h1>",
             f"<p class='meta'>SOP <code>{_e(spec.id)}</code> · version {_e(spec.version)} · "
             f"sha256 <code>{_e(compiled.hash)}</code><br>Owner: {_e(spec.owner or '—')} · "
             f"category {_e(spec.category or '—')} · ITIL {_e(spec.itil)}</p>",
             f"<h2>Purpose</h2><p>{_e(spec.purpose or '—')}</p>"]
    if svg:
        parts.append(f"<h2>Diagram</h2><div class='diagram'>{svg}</div>")
    if spec.data:
        parts.append("<h2>Case data</h2><table><tr><th>field</th><th>type</th><th>meaning</th></tr>")
        parts += [f"<tr><td><code>{_e(f.name)}</code></td><td>{_e(f.type)}"
                  f"{' (' + ', '.join(map(_e, f.enum)) + ')' if f.enum else ''}</td>"
                  f"<td>{_e(f.description)}{' (given when the case starts)' if f.input else ''}</td></tr>"
                  for f in spec.data.values()]
        parts.append("</table>")
    parts.append("<h2>Steps</h2>")
    for n in spec.nodes.values():
        parts.append(f"<div class='step {n.type.value}' id='n-{_e(n.id)}'><h3>{_e(label_of(n))} "
                     f"<span class='kind'>{_e(n.type.value)}</span></h3>")
        parts += [f"<p>{s}</p>" if not s.startswith("<ul>") else s
                  for s in describe_node(spec, n, levels)]
        parts.append("</div>")
    if spec.on_event:
        parts.append("<h2>At any time</h2><ul>")
        for h in spec.on_event:
            what = (f"stops what is under way{' at ' + ', '.join(map(_e, h.scope)) if h.scope else ''}"
                    f" and continues at {_ref(spec, h.next)}" if h.interrupt
                    else "updates the case without interrupting it")
            cond = f" when <code>{_e(h.when.source)}</code>" if h.when else ""
            parts.append(f"<li>event <b>{_e(h.event)}</b>{cond}: {what}.</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
