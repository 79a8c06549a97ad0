"""Compile an SopSpec into a CompiledSop: a networkx graph, checked CEL programs, a content hash.

The graph (``networkx.DiGraph``) has one node per SOP node, with attributes ``type``,
``level``, ``title``, ``span`` and ``spec`` (the NodeSpec), and one edge per way a node can
continue, with ``label``, ``kind`` and ``condition`` (CEL source or None). Edge kinds:

``next``, ``branch``, ``otherwise``, ``outcome``, ``event`` (a wait's ``on``), ``timeout``,
``error`` (``on_error``), ``loop_body``, ``loop_exit``, ``sla_ok``, ``sla_warning``,
``sla_breached`` and ``handler``.

Case-wide ``on_event`` handlers can fire wherever the case stands, so their targets are
reached from a virtual node ``HANDLERS_NODE`` (``"__handlers__"``, attribute
``virtual=True``) by ``handler`` edges; it exists only when some handler has a ``next``.
Graph checks should treat it as reachable whenever the start is.

When two ways lead from the same node to the same target (a DiGraph keeps one edge), the
edge keeps the first kind/label/condition and lists all of them in ``kinds``/``labels``.

The graph is frozen (``networkx.freeze``): a compiled SOP is immutable; copy it
(``graph.copy()``) to experiment.

Every expression is compiled against the SOP's ``data`` declaration
(``engine.sop.expressions.ExpressionEnv``); conditions must be bool. Errors point at the
expression's own line and column in the YAML.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from engine.errors import ExpressionError, SopError, SopErrors, SourceSpan
from engine.sop.expressions import ExpressionEnv, Program
from engine.sop.hashing import canonical_json, content_hash
from engine.sop.model import Expr, NodeSpec, NodeType, SopSpec

__all__ = [
    "HANDLERS_NODE",
    "CompiledSop",
    "canonical_json",
    "compile_spec",
    "content_hash",
    "iter_compile_errors",
    "iter_edges",
]

HANDLERS_NODE = "__handlers__"
_UNDECLARED = re.compile(r"undeclared reference to '([^']+)'")


@dataclass(frozen=True, slots=True)
class CompiledSop:
    """An SOP ready to run: its spec, its graph, its compiled expressions and its hash."""

    spec: SopSpec
    graph: nx.DiGraph
    hash: str
    env: ExpressionEnv
    programs: Mapping[Expr, Program] = field(repr=False)
    #: the programs by identity of the spec's own Expr objects, each entry holding its Expr
    #: (so an id is never taken for another object's): the interpreter's look-up skips
    #: hashing the Expr and its span
    by_id: Mapping[int, tuple[Expr, Program]] = field(default_factory=dict, repr=False,
                                                      compare=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    def node(self, node_id: str) -> NodeSpec:
        """The NodeSpec with id ``node_id`` (KeyError when there is none)."""
        return self.spec.nodes[node_id]

    def program(self, expr: Expr) -> Program:
        """The compiled program of an expression of this SOP.

        Raises:
            KeyError: ``expr`` does not belong to this SOP.
        """
        hit = self.by_id.get(id(expr))
        return hit[1] if hit is not None and hit[0] is expr else self.programs[expr]

    def to_node_link(self) -> dict[str, Any]:
        """networkx node-link data, JSON-serialisable, plus id, version and hash."""
        graph = nx.DiGraph()
        for node_id, attrs in self.graph.nodes(data=True):
            graph.add_node(node_id, **_plain_attrs(attrs))
        for u, v, attrs in self.graph.edges(data=True):
            graph.add_edge(u, v, **_plain_attrs(attrs))
        data: dict[str, Any] = nx.node_link_data(graph, edges="edges")
        data["graph"] = {"id": self.id, "version": self.version, "hash": self.hash,
                         "title": self.spec.title}
        return data

    def to_graphml(self) -> str:
        """The graph as GraphML text (scalar attributes only)."""
        graph = nx.DiGraph(id=self.id, version=self.version, hash=self.hash)
        for node_id, attrs in self.graph.nodes(data=True):
            graph.add_node(node_id, **{k: v for k, v in _plain_attrs(attrs).items()
                                       if isinstance(v, (str, int, float, bool))})
        for u, v, attrs in self.graph.edges(data=True):
            graph.add_edge(u, v, **{k: v for k, v in _plain_attrs(attrs).items()
                                    if isinstance(v, (str, int, float, bool))})
        return "\n".join(nx.generate_graphml(graph))


def _plain_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key == "spec":
            continue
        if isinstance(value, SourceSpan):
            out[key] = str(value)
        elif isinstance(value, (list, tuple)):
            out[key] = " | ".join(str(v) for v in value) if key in ("kinds", "labels") else list(value)
        elif value is None:
            continue
        else:
            out[key] = value
    return out


# ---- edges --------------------------------------------------------------------------------


def iter_edges(node: NodeSpec) -> Iterator[tuple[str, str, str, Expr | None]]:
    """Every (target, kind, label, condition) of ``node``, in declared order.

    Consistent with ``NodeSpec.successors()``, with an edge kind added.
    """
    t = node.type
    if node.next is not None and t is not NodeType.END:
        yield node.next, "next", "", None
    if t in (NodeType.DECISION, NodeType.PARALLEL):
        for b in node.branches:
            yield b.next, "branch", b.label or (b.when.source if b.when else ""), b.when
        if t is NodeType.DECISION and node.otherwise is not None:
            yield node.otherwise, "otherwise", "otherwise", None
    elif t is NodeType.HUMAN_TASK:
        for o in node.outcomes:
            yield o.next, "outcome", o.label or o.name, None
    elif t is NodeType.WAIT:
        for w in node.on:
            yield w.next, "event", w.event, w.when
    elif t is NodeType.LOOP:
        if node.body:
            yield node.body, "loop_body", "repeat", None
        if node.exit:
            yield node.exit, "loop_exit", "done", None
    elif t is NodeType.SLA_CHECK:
        for target, state in ((node.ok, "ok"), (node.warning, "warning"),
                              (node.breached, "breached")):
            if target:
                yield target, f"sla_{state}", state, None
    if node.on_error is not None:
        yield node.on_error, "error", "error", None
    if node.timeout is not None:
        yield node.timeout.next, "timeout", f"timeout {node.timeout.after.text}", None


def _did_you_mean(name: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _build_graph(spec: SopSpec, errors: list[SopError]) -> nx.DiGraph:
    graph = nx.DiGraph(id=spec.id, version=spec.version)
    for node_id, node in spec.nodes.items():
        graph.add_node(node_id, type=node.type.value, level=node.level,
                       title=node.title or node_id, span=node.span, spec=node)
    for node_id, node in spec.nodes.items():
        for index, (target, kind, label, cond) in enumerate(iter_edges(node)):
            if target not in spec.nodes:
                span, path = _where(node, kind, index)
                errors.append(SopError(
                    "E-REF-UNKNOWN", f"node {node_id!r} leads to unknown node {target!r}",
                    span=span, json_path=f"$.nodes.{node_id}{path}",
                    hint=_did_you_mean(target, spec.nodes) or "declare the node under 'nodes'"))
                continue
            _add_edge(graph, node_id, target, kind, label, cond)
    handlers = [h for h in spec.on_event if h.next is not None]
    if handlers:
        graph.add_node(HANDLERS_NODE, type="handlers", level=None, title="event handlers",
                       span=handlers[0].span, virtual=True, spec=None)
        for i, h in enumerate(handlers):
            assert h.next is not None
            if h.next not in spec.nodes:
                errors.append(SopError(
                    "E-REF-UNKNOWN", f"event handler for {h.event!r} leads to unknown node {h.next!r}",
                    span=h.span, json_path=f"$.on_event[{i}].next",
                    hint=_did_you_mean(h.next, spec.nodes) or "declare the node under 'nodes'"))
                continue
            _add_edge(graph, HANDLERS_NODE, h.next, "handler", h.event, h.when)
    return graph


_KIND_FIELD = {"next": "next", "otherwise": "otherwise", "error": "on_error", "loop_body": "body",
               "loop_exit": "exit", "sla_ok": "ok", "sla_warning": "warning",
               "sla_breached": "breached"}


def _where(node: NodeSpec, kind: str, index: int) -> tuple[SourceSpan, str]:
    """The span and JSON-path suffix of the ``index``-th edge (of ``kind``) of ``node``."""
    key = _KIND_FIELD.get(kind)
    if key is not None:  # the model keeps no span per key: point at the node
        return node.span, f".{key}"
    if kind == "timeout" and node.timeout is not None:
        return node.timeout.span, ".timeout.next"
    offset = 1 if node.next is not None and node.type is not NodeType.END else 0
    position = index - offset
    if kind == "branch" and 0 <= position < len(node.branches):
        return node.branches[position].span, f".branches[{position}].next"
    if kind == "outcome" and 0 <= position < len(node.outcomes):
        outcome = node.outcomes[position]
        return outcome.span, f".outcomes.{outcome.name}.next"
    if kind == "event" and 0 <= position < len(node.on):
        return node.on[position].span, f".on[{position}].next"
    return node.span, ""


def _add_edge(graph: nx.DiGraph, u: str, v: str, kind: str, label: str, cond: Expr | None) -> None:
    if graph.has_edge(u, v):
        attrs = graph.edges[u, v]
        attrs["kinds"].append(kind)
        attrs["labels"].append(label)
        return
    graph.add_edge(u, v, kind=kind, label=label, condition=cond.source if cond else None,
                   kinds=[kind], labels=[label])


def _check_reserved(spec: SopSpec, errors: list[SopError]) -> None:
    if HANDLERS_NODE in spec.nodes:
        node = spec.nodes[HANDLERS_NODE]
        errors.append(SopError("E-NAME-RESERVED", f"the node id {HANDLERS_NODE!r} is reserved",
                               span=node.span, json_path=f"$.nodes.{HANDLERS_NODE}",
                               hint="choose another id"))


def _check_starts(spec: SopSpec, errors: list[SopError]) -> None:
    starts = [n for n in spec.nodes.values() if n.type is NodeType.START]
    if not starts:
        errors.append(SopError("E-START-MISSING", "the SOP has no start node", span=spec.span,
                               json_path="$.nodes", hint="add a node with 'type: start'"))
    for extra in starts[1:]:
        errors.append(SopError(
            "E-START-DUPLICATE",
            f"second start node {extra.id!r} (the first is {starts[0].id!r})",
            span=extra.span, json_path=f"$.nodes.{extra.id}",
            hint="an SOP has exactly one start; use a decision to choose between paths"))


# ---- expressions --------------------------------------------------------------------------


def _iter_exprs(spec: SopSpec) -> Iterator[tuple[Expr, bool, str]]:
    """Every expression of the SOP: (expr, must be bool, JSON path)."""
    for node_id, node in spec.nodes.items():
        base = f"$.nodes.{node_id}"
        for i, b in enumerate(node.branches):
            if b.when is not None:
                yield b.when, True, f"{base}.branches[{i}].when"
        for key, e in node.set.items():
            yield e, False, f"{base}.set.{key}"
        for key, value in node.inputs.items():
            if isinstance(value, Expr):
                yield value, False, f"{base}.inputs.{key}"
        for i, w in enumerate(node.on):
            if w.when is not None:
                yield w.when, True, f"{base}.on[{i}].when"
            for key, e in w.set.items():
                yield e, False, f"{base}.on[{i}].set.{key}"
    for i, h in enumerate(spec.on_event):
        if h.when is not None:
            yield h.when, True, f"$.on_event[{i}].when"
        for key, e in h.set.items():
            yield e, False, f"$.on_event[{i}].set.{key}"


def expression_env(spec: SopSpec) -> ExpressionEnv:
    """The typing environment of ``spec``: its declared case-data fields."""
    return ExpressionEnv((f.name, f.type, f.items) for f in spec.data.values())


def compile_expr(env: ExpressionEnv, expr: Expr, *, expect_bool: bool, json_path: str,
                 cache: dict[tuple[str, bool], Program] | None = None) -> Program:
    """Compile one expression, turning a CEL error into a SopError at its YAML position.

    Raises:
        SopError: ``E-CEL-SYNTAX`` or ``E-CEL-TYPE``.
    """
    key = (expr.source, expect_bool)
    if cache is not None and key in cache:
        return cache[key]
    try:
        program = env.compile(expr.source, expect_bool=expect_bool)
    except ExpressionError as exc:
        detail = exc.detail
        lowered = detail.lower()
        syntax = "syntax" in lowered or "mismatched input" in lowered or "extraneous" in lowered \
            or "empty" in lowered or "longer than" in lowered
        code = "E-CEL-SYNTAX" if syntax else "E-CEL-TYPE"
        span = expr.span
        if exc.column is not None:
            span = SourceSpan(span.file, span.line, span.column + exc.column - 1)
        hint = None
        if "undeclared reference" in lowered:
            m = _UNDECLARED.search(detail)
            hint = (_did_you_mean(m.group(1), env.names) if m else None) \
                or "declare the field under 'data' or use case/event/result/now"
        elif "must be bool" in lowered:
            hint = "compare with ==, <, in ... to get true/false"
        raise SopError(code, f"{detail} in {expr.source!r}", span=span, json_path=json_path,
                       hint=hint) from exc
    if cache is not None:
        cache[key] = program
    return program


def _compile_programs(spec: SopSpec, env: ExpressionEnv,
                      errors: list[SopError]) -> dict[Expr, Program]:
    programs: dict[Expr, Program] = {}
    cache: dict[tuple[str, bool], Program] = {}
    for expr, expect_bool, path in _iter_exprs(spec):
        try:
            programs[expr] = compile_expr(env, expr, expect_bool=expect_bool, json_path=path,
                                          cache=cache)
        except SopError as err:
            errors.append(err)
    return programs


def _by_id(spec: SopSpec, programs: Mapping[Expr, Program]) -> dict[int, tuple[Expr, Program]]:
    """``programs`` keyed by ``id`` of every Expr object the spec holds (equal Exprs that are
    distinct objects each get their own entry)."""
    return {id(expr): (expr, programs[expr]) for expr, _, _ in _iter_exprs(spec)
            if expr in programs}


# ---- entry points -------------------------------------------------------------------------


def _compile(spec: SopSpec) -> tuple[CompiledSop, list[SopError]]:
    errors: list[SopError] = []
    _check_reserved(spec, errors)
    _check_starts(spec, errors)
    graph = _build_graph(spec, errors)
    env = expression_env(spec)
    programs = _compile_programs(spec, env, errors)
    compiled = CompiledSop(spec=spec, graph=nx.freeze(graph), hash=content_hash(spec), env=env,
                           programs=programs, by_id=_by_id(spec, programs))
    return compiled, errors


def iter_compile_errors(spec: SopSpec) -> Iterator[SopError]:
    """Every compile error of ``spec`` (references, start node, expressions)."""
    _, errors = _compile(spec)
    yield from errors


def compile_spec(spec: SopSpec, *, errors: list[SopError] | None = None) -> CompiledSop:
    """Compile ``spec``.

    Args:
        errors: when given, problems are appended here and a (partial) CompiledSop is
            returned anyway; otherwise they are raised.

    Raises:
        SopErrors: every compile error, when ``errors`` is None.
    """
    compiled, found = _compile(spec)
    if errors is not None:
        errors.extend(found)
        return compiled
    SopErrors.raise_if_any(found)
    return compiled
