"""Build the frozen model (engine.sop.model) from a schema-valid YAML document.

The builder trusts the JSON Schema for shapes (it runs after validation) and adds what a
schema cannot: durations become ``Duration`` (seconds), ``${ expr }`` action inputs and CEL
sources become ``Expr`` with the span of the expression's first character, and every
model value keeps the span it was written at. Problems (an unreadable duration) are
collected as ``SopError`` and raised together.

Document kinds: ``sop`` -> SopSpec, ``levels`` -> LevelsDoc, ``calendar`` -> CalendarSpec,
``sla_policy`` -> SlaPolicyDoc, ``routing`` -> RoutingDoc, ``agents`` -> AgentsDoc (an
agent id given twice is ``E-AGENT-DUPLICATE``, citing the first).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import CalendarError, CompileError, SopError, SopErrors, SourceSpan
from engine.sla.duration import parse_duration
from engine.sop.loader import JsonPath, YamlDocument, format_json_path
from engine.sop.model import (
    AgentsDoc,
    AgentSpec,
    BranchSpec,
    CalendarSpec,
    DataFieldSpec,
    Document,
    Duration,
    EscalationStepSpec,
    EventHandlerSpec,
    Expr,
    FormFieldSpec,
    LevelsDoc,
    LevelSpec,
    MetricSpec,
    NodeSpec,
    NodeType,
    OutcomeSpec,
    RetrySpec,
    RoutingDoc,
    RoutingRuleSpec,
    SlaPolicyDoc,
    SopSpec,
    TimeoutSpec,
    WaitOnSpec,
    WarningSpec,
    frozen_map,
)

__all__ = ["INTERPOLATION", "NODE_FIELDS", "SOP_FIELDS", "build_document"]

#: an action/call input of this form is an expression, anything else a literal
INTERPOLATION = re.compile(r"^\$\{(\s*)(.*?)\s*\}$", re.DOTALL)

#: YAML keys of a node the builder reads, mapped to the NodeSpec field they fill
NODE_FIELDS: Mapping[str, str] = {
    name: name
    for name in (
        "type", "title", "description", "level", "next", "action", "inputs", "set", "retry",
        "on_error", "branches", "otherwise", "join", "instructions", "role", "skills",
        "outcomes", "form", "four_eyes", "timeout", "to", "reason", "knowledge", "on",
        "correlate", "counter", "max", "body", "exit", "clock", "metric", "policy", "ok",
        "warning", "breached", "sop", "outcome", "status", "terminate",
    )
}
#: YAML keys at the top of an SOP, mapped to the SopSpec field they fill (``kind`` selects the class)
SOP_FIELDS: Mapping[str, str] = {
    name: name
    for name in ("id", "version", "title", "nodes", "data", "on_event", "owner", "purpose",
                 "category", "itil")
}


class _Builder:
    """Reads values at JSON paths of one document, recording spans and problems."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.errors: list[SopError] = []

    def span(self, path: JsonPath) -> SourceSpan:
        return self.doc.span(path)

    def get(self, path: JsonPath) -> Any:
        value: Any = self.doc.data
        for part in path:
            if isinstance(value, Mapping):
                value = value.get(part)
            elif isinstance(value, list) and isinstance(part, int) and part < len(value):
                value = value[part]
            else:
                return None
        return value

    def expr(self, path: JsonPath) -> Expr | None:
        source = self.get(path)
        if source is None:
            return None
        text = str(source) if not isinstance(source, bool) else str(source).lower()
        lead = len(text) - len(text.lstrip())
        return Expr(text.strip(), self.doc.text_span(path, lead))

    def exprs(self, path: JsonPath) -> Mapping[str, Expr]:
        values = self.get(path) or {}
        out: dict[str, Expr] = {}
        for key in values:
            e = self.expr((*path, key))
            if e is not None:
                out[key] = e
        return frozen_map(out)

    def duration(self, path: JsonPath, *, allow_zero: bool = False) -> Duration | None:
        text = self.get(path)
        if text is None:
            return None
        try:
            seconds = parse_duration(str(text), allow_zero=allow_zero)
        except CalendarError as exc:
            self.errors.append(SopError("E-DURATION", str(exc), span=self.span(path),
                                        json_path=format_json_path(path),
                                        hint="write e.g. PT4H, P2D, 4h, 45m, 3h30m or 1d"))
            return Duration(str(text), 0, self.span(path))
        return Duration(str(text), seconds, self.span(path))

    def strs(self, path: JsonPath) -> tuple[str, ...]:
        value = self.get(path)
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        return (str(value),)

    def opt(self, path: JsonPath) -> str | None:
        value = self.get(path)
        return None if value is None else str(value)

    def text(self, path: JsonPath, default: str = "") -> str:
        value = self.get(path)
        return default if value is None else str(value)

    def inputs(self, path: JsonPath) -> Mapping[str, object]:
        values = self.get(path) or {}
        out: dict[str, object] = {}
        for key, value in values.items():
            m = INTERPOLATION.match(value) if isinstance(value, str) else None
            if m:
                offset = 2 + len(m.group(1))
                out[key] = Expr(m.group(2), self.doc.text_span((*path, key), offset))
            else:
                out[key] = value
        return frozen_map(out)

    # ---- sop ----------------------------------------------------------------------------

    def sop(self) -> SopSpec:
        data_fields = {
            name: self.data_field(name, ("data", name)) for name in (self.get(("data",)) or {})
        }
        nodes = {nid: self.node(nid, ("nodes", nid)) for nid in (self.get(("nodes",)) or {})}
        handlers = tuple(
            self.handler(("on_event", i)) for i in range(len(self.get(("on_event",)) or []))
        )
        return SopSpec(
            id=self.text(("id",)),
            version=self.text(("version",)),
            title=self.text(("title",)),
            span=self.span(()),
            nodes=frozen_map(nodes),
            data=frozen_map(data_fields),
            on_event=handlers,
            owner=self.text(("owner",)),
            purpose=self.text(("purpose",)).strip(),
            category=self.text(("category",)),
            itil=self.text(("itil",), "service_request"),
            source=self.doc.file,
        )

    def data_field(self, name: str, path: JsonPath) -> DataFieldSpec:
        raw = self.get(path) or {}
        return DataFieldSpec(
            name=name,
            type=str(raw.get("type", "string")),
            span=self.doc.key_span(path),
            description=str(raw.get("description", "")),
            enum=tuple(raw.get("enum") or ()),
            input=bool(raw.get("input", False)),
            default=raw.get("default"),
            items=raw.get("items"),
        )

    def node(self, node_id: str, path: JsonPath) -> NodeSpec:
        raw: Mapping[str, Any] = self.get(path) or {}
        p = path

        def opt(key: str) -> str | None:
            value = raw.get(key)
            return None if value is None else str(value)

        def text(key: str, default: str = "") -> str:
            value = raw.get(key)
            return default if value is None else str(value)

        retry = RetrySpec()
        if raw.get("retry") is not None:
            r = raw["retry"]
            retry = RetrySpec(
                max_attempts=int(r.get("max_attempts", 1)),
                delay=self.duration((*p, "retry", "delay")),
                backoff=float(r.get("backoff", 2.0)),
                max_delay=self.duration((*p, "retry", "max_delay")),
            )
        timeout = None
        if raw.get("timeout") is not None:
            timeout = TimeoutSpec(
                after=self.duration((*p, "timeout", "after")) or Duration("", 0, self.span(p)),
                next=self.text((*p, "timeout", "next")),
                span=self.span((*p, "timeout")),
                calendar=self.opt((*p, "timeout", "calendar")),
            )
        max_value = raw.get("max")
        return NodeSpec(
            id=node_id,
            type=NodeType(raw["type"]),
            span=self.doc.key_span(path),
            title=text("title"),
            description=text("description"),
            level=opt("level"),
            next=opt("next"),
            action=opt("action"),
            inputs=self.inputs((*p, "inputs")) if "inputs" in raw else frozen_map(),
            set=self.exprs((*p, "set")) if "set" in raw else frozen_map(),
            retry=retry,
            on_error=opt("on_error"),
            branches=tuple(self.branch((*p, "branches", i))
                           for i in range(len(raw.get("branches") or []))),
            otherwise=opt("otherwise"),
            join=opt("join"),
            instructions=text("instructions").strip(),
            role=opt("role"),
            skills=self.strs((*p, "skills")) if "skills" in raw else (),
            outcomes=tuple(self.outcome(name, (*p, "outcomes", name))
                           for name in (raw.get("outcomes") or {})),
            form=tuple(self.form_field(name, (*p, "form", name)) for name in (raw.get("form") or {})),
            four_eyes=bool(raw.get("four_eyes", False)),
            timeout=timeout,
            to=opt("to"),
            reason=text("reason").strip(),
            knowledge=text("knowledge", "none"),
            on=tuple(self.wait_on((*p, "on", i)) for i in range(len(raw.get("on") or []))),
            correlate=text("correlate", "case"),
            counter=opt("counter"),
            max=None if max_value is None else int(max_value),
            body=opt("body"),
            exit=opt("exit"),
            clock=opt("clock"),
            metric=opt("metric"),
            policy=opt("policy"),
            ok=opt("ok"),
            warning=opt("warning"),
            breached=opt("breached"),
            sop=opt("sop"),
            outcome=opt("outcome"),
            status=text("status", "resolved"),
            terminate=bool(raw.get("terminate", False)),
        )

    def branch(self, path: JsonPath) -> BranchSpec:
        return BranchSpec(next=self.text((*path, "next")), span=self.span(path),
                          when=self.expr((*path, "when")), label=self.text((*path, "label")))

    def outcome(self, name: str, path: JsonPath) -> OutcomeSpec:
        return OutcomeSpec(name=name, next=self.text((*path, "next")),
                           span=self.doc.key_span(path), label=self.text((*path, "label")),
                           roles=self.strs((*path, "roles")),
                           knowledge=self.text((*path, "knowledge"), "none"))

    def form_field(self, name: str, path: JsonPath) -> FormFieldSpec:
        raw = self.get(path) or {}
        return FormFieldSpec(name=name, type=str(raw.get("type", "string")),
                             span=self.doc.key_span(path), required=bool(raw.get("required", False)),
                             enum=tuple(raw.get("enum") or ()),
                             description=str(raw.get("description", "")))

    def wait_on(self, path: JsonPath) -> WaitOnSpec:
        return WaitOnSpec(event=self.text((*path, "event")), next=self.text((*path, "next")),
                          span=self.span(path), when=self.expr((*path, "when")),
                          set=self.exprs((*path, "set")))

    def handler(self, path: JsonPath) -> EventHandlerSpec:
        return EventHandlerSpec(event=self.text((*path, "event")), span=self.span(path),
                                when=self.expr((*path, "when")),
                                interrupt=bool(self.get((*path, "interrupt")) or False),
                                next=self.opt((*path, "next")), set=self.exprs((*path, "set")),
                                scope=self.strs((*path, "scope")))

    # ---- organisation documents ---------------------------------------------------------

    def levels(self) -> LevelsDoc:
        items = self.get(("levels",)) or []
        levels = tuple(
            LevelSpec(id=self.text(("levels", i, "id")), name=self.text(("levels", i, "name")),
                      rank=int(self.get(("levels", i, "rank")) or 0), span=self.span(("levels", i)),
                      automated=bool(self.get(("levels", i, "automated")) or False),
                      description=self.text(("levels", i, "description")).strip(),
                      ola=self.opt(("levels", i, "ola")))
            for i in range(len(items))
        )
        return LevelsDoc(levels=levels, span=self.span(()), source=self.doc.file)

    def agents(self) -> AgentsDoc:
        agents: list[AgentSpec] = []
        first: dict[str, AgentSpec] = {}
        for i in range(len(self.get(("agents",)) or [])):
            path: JsonPath = ("agents", i)
            levels = self.strs((*path, "levels"))
            agent = AgentSpec(
                id=self.text((*path, "id")), name=self.text((*path, "name")), levels=levels,
                span=self.span(path), roles=self.strs((*path, "roles")),
                skills=self.strs((*path, "skills")),
                level_spans=tuple(self.span((*path, "levels", j)) for j in range(len(levels))))
            if agent.id in first:
                seen = first[agent.id].span
                self.errors.append(CompileError(
                    "E-AGENT-DUPLICATE", f"agent {agent.id!r} is defined twice (also at line "
                    f"{seen.line})", span=self.span((*path, "id")),
                    json_path=format_json_path((*path, "id")),
                    hint="keep one entry per agent; list all its levels and roles there"))
                continue
            first[agent.id] = agent
            agents.append(agent)
        return AgentsDoc(agents=tuple(agents), span=self.span(()), source=self.doc.file)

    def calendar(self) -> CalendarSpec:
        week: dict[str, tuple[tuple[str, str], ...]] = {}
        for day, intervals in (self.get(("week",)) or {}).items():
            pairs: list[tuple[str, str]] = []
            for item in intervals or []:
                if isinstance(item, str):
                    start, _, end = item.partition("-")
                    pairs.append((start.strip(), end.strip()))
                else:
                    pairs.append((str(item[0]), str(item[1])))
            week[day] = tuple(pairs)
        return CalendarSpec(
            id=self.text(("id",)), timezone=self.text(("timezone",)), span=self.span(()),
            week=frozen_map(week), always=bool(self.get(("always",)) or False),
            recurring_holidays=self.strs(("recurring_holidays",)),
            closures=self.strs(("closures",)), country=self.opt(("country",)),
            subdivision=self.opt(("subdivision",)), ical=self.opt(("ical",)),
            description=self.text(("description",)).strip(), source=self.doc.file,
        )

    def sla_policy(self) -> SlaPolicyDoc:
        metrics = {name: self.metric(name, ("metrics", name)) for name in (self.get(("metrics",)) or {})}
        return SlaPolicyDoc(
            id=self.text(("id",)), order=int(self.get(("order",)) or 0),
            calendar=self.text(("calendar",)), span=self.span(()), metrics=frozen_map(metrics),
            when=self.expr(("when",)), description=self.text(("description",)).strip(),
            reopen_window=self.duration(("reopen_window",)), source=self.doc.file,
        )

    def metric(self, name: str, path: JsonPath) -> MetricSpec:
        raw = self.get(path) or {}

        def durations(key: str) -> Mapping[str, Duration]:
            out = {}
            for k in raw.get(key) or {}:
                d = self.duration((*path, key, k))
                if d is not None:
                    out[k] = d
            return frozen_map(out)

        warnings = tuple(
            WarningSpec(span=self.span((*path, "warnings", i)), percent=w.get("percent"),
                        minutes_before=w.get("minutes_before"))
            for i, w in enumerate(raw.get("warnings") or [])
        )
        escalation = tuple(
            EscalationStepSpec(
                after=self.duration((*path, "escalation", i, "after"), allow_zero=True)
                or Duration("", 0, self.span(path)),
                span=self.span((*path, "escalation", i)), to_level=e.get("to_level"),
                notify=e.get("notify"))
            for i, e in enumerate(raw.get("escalation") or [])
        )
        kwargs: dict[str, Any] = {}
        if "counts_as_response" in raw:
            kwargs["counts_as_response"] = self.strs((*path, "counts_as_response"))
        return MetricSpec(
            metric=name, span=self.doc.key_span(path), target=self.duration((*path, "target")),
            by_priority=durations("by_priority"), by_tier=durations("by_tier"),
            unit=str(raw.get("unit", "business_hours")), warnings=warnings, escalation=escalation,
            on_reopen=str(raw.get("on_reopen", "resume")),
            pause_if_breached=bool(raw.get("pause_if_breached", True)), **kwargs,
        )

    def routing(self) -> RoutingDoc:
        rules = tuple(
            RoutingRuleSpec(sop=self.text(("rules", i, "sop")), span=self.span(("rules", i)),
                            channels=self.strs(("rules", i, "channels")),
                            when=self.expr(("rules", i, "when")),
                            priority=self.opt(("rules", i, "priority")))
            for i in range(len(self.get(("rules",)) or []))
        )
        return RoutingDoc(rules=rules, span=self.span(()), fallback=self.opt(("fallback",)),
                          source=self.doc.file)


_KINDS: Mapping[str, Callable[[_Builder], Document]] = {
    "sop": _Builder.sop,
    "levels": _Builder.levels,
    "calendar": _Builder.calendar,
    "sla_policy": _Builder.sla_policy,
    "routing": _Builder.routing,
    "agents": _Builder.agents,
}


def build_document(doc: YamlDocument) -> Document:
    """Turn a schema-valid document into its model value.

    Raises:
        SopErrors: durations that cannot be read (``E-DURATION``), an unknown ``kind``.
    """
    kind = doc.data.get("kind") if isinstance(doc.data, Mapping) else None
    builder = _Builder(doc)
    make = _KINDS.get(str(kind))
    if make is None:
        raise SopErrors([SopError("E-SCHEMA-KIND", f"unknown document kind {kind!r}",
                                  span=doc.span(("kind",)), json_path="$.kind",
                                  hint=f"one of {', '.join(_KINDS)}")])
    result = make(builder)
    SopErrors.raise_if_any(builder.errors)
    return result
