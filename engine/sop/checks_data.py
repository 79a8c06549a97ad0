"""Case-data checks: every field read is provided somehow, every field written is declared.

- ``E-DATA-NEVER-WRITTEN``: an expression reads a declared field that is not ``input: true``,
  has no ``default`` and is written by no node (``set``, an action's or call's ``set``, a
  human task's ``form`` field, a wait's ``on[].set``, a handler's ``set``, a loop ``counter``).
  Such an expression could only ever fail at run time with "no value".
- ``E-DATA-UNDECLARED``: a node writes a field that ``data`` does not declare (the target of
  ``set``, ``on[].set``, handler ``set``, a ``form`` field, or a loop ``counter``).
  Declaring it gives the field a type, so expressions that read it are type-checked.

- ``W-DATA-MAYBE-UNSET`` (warning): definite assignment. A node reads a field that is not
  provided (input/default) and is not written on **every** path from ``start`` to the node
  (must-analysis; a write counts on the edges it happens on: an action's ``set`` on its
  ``next`` but not its ``on_error``, a form on the outcomes but not the timeout, a wait's
  ``on[].set`` on that event's edge). Handlers may never fire, so their writes do not count.

Names are found with :func:`engine.sop.expressions.referenced_names` (top-level identifiers,
string literals and member names ignored), so ``case.tier`` reads ``case``, never ``tier``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

from engine.errors import SopError, SourceSpan
from engine.sop.checks_base import CheckContext, did_you_mean, error, warning
from engine.sop.checks_flow import must_fixpoint
from engine.sop.expressions import referenced_names
from engine.sop.model import Expr, NodeSpec, NodeType

__all__ = ["iter_data_errors", "iter_node_reads", "iter_reads", "iter_writes"]


def _expr_of(value: object, span: SourceSpan) -> Expr | None:
    """An input value as an expression: an ``Expr``, or a ``${ ... }`` string."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, str) and value.strip().startswith("${") and value.strip().endswith("}"):
        return Expr(value.strip()[2:-1].strip(), span)
    return None


def iter_node_reads(node: NodeSpec) -> Iterator[tuple[Expr, str]]:
    """Every expression of one node with the JSON path of where it stands."""
    base = f"$.nodes.{node.id}"
    for i, branch in enumerate(node.branches):
        if branch.when is not None:
            yield branch.when, f"{base}.branches[{i}].when"
    for name, value in node.set.items():
        yield value, f"{base}.set.{name}"
    for name, value in node.inputs.items():
        expr = _expr_of(value, node.span)
        if expr is not None:
            yield expr, f"{base}.inputs.{name}"
    for i, on in enumerate(node.on):
        if on.when is not None:
            yield on.when, f"{base}.on[{i}].when"
        for name, value in on.set.items():
            yield value, f"{base}.on[{i}].set.{name}"


def iter_reads(ctx: CheckContext) -> Iterator[tuple[Expr, str]]:
    """Every expression of the SOP with the JSON path of where it stands."""
    for node in ctx.spec.nodes.values():
        yield from iter_node_reads(node)
    for i, handler in enumerate(ctx.spec.on_event):
        if handler.when is not None:
            yield handler.when, f"$.on_event[{i}].when"
        for name, value in handler.set.items():
            yield value, f"$.on_event[{i}].set.{name}"


def iter_writes(ctx: CheckContext) -> Iterator[tuple[str, SourceSpan, str]]:
    """Every (field, span, json path) some node or handler writes."""
    for node in ctx.spec.nodes.values():
        base = f"$.nodes.{node.id}"
        for name, value in node.set.items():
            yield name, value.span, f"{base}.set.{name}"
        for form_field in node.form:
            yield form_field.name, form_field.span, f"{base}.form.{form_field.name}"
        for i, on in enumerate(node.on):
            for name, value in on.set.items():
                yield name, value.span, f"{base}.on[{i}].set.{name}"
        if node.type is NodeType.LOOP and node.counter:
            yield node.counter, node.span, f"{base}.counter"
    for i, handler in enumerate(ctx.spec.on_event):
        for name, value in handler.set.items():
            yield name, value.span, f"$.on_event[{i}].set.{name}"


def iter_data_errors(ctx: CheckContext) -> Iterator[SopError]:
    """Both data errors of one SOP."""
    data = ctx.spec.data
    written: dict[str, None] = {}
    for name, span, path in iter_writes(ctx):
        written[name] = None
        if name not in data:
            yield error(
                "E-DATA-UNDECLARED",
                f"field {name!r} is written here but not declared under 'data'",
                span,
                path,
                did_you_mean(name, data) or f"declare it: data: {{{name}: {{type: ...}}}}",
            )
    given = {name for name, spec in data.items() if spec.input or spec.default is not None}
    provided = set(written) | given
    yield from _never_written(data, provided, iter_reads(ctx))
    yield from _maybe_unset(ctx, given, provided)


@lru_cache(maxsize=4096)
def _names(source: str) -> frozenset[str]:
    return referenced_names(source)


def _never_written(
    data: Mapping[str, object], provided: set[str], reads: Iterator[tuple[Expr, str]]
) -> Iterator[SopError]:
    for expr, path in reads:
        for name in sorted(_names(expr.source)):
            if name in data and name not in provided:
                yield error(
                    "E-DATA-NEVER-WRITTEN",
                    f"{name!r} is read here but never gets a value: it is not an input, has "
                    "no default, and no node writes it",
                    expr.span,
                    path,
                    "mark it 'input: true', give it a 'default', or write it with a set "
                    "node or form field before this point",
                )


def _edge_writes(node: NodeSpec) -> list[tuple[str, frozenset[str]]]:
    """(target, fields written on that way out) for every way out of ``node``."""
    sets = frozenset(node.set)
    edges: list[tuple[str, frozenset[str]]] = []
    if node.type is NodeType.SET and node.next:
        edges.append((node.next, sets))
    elif node.type in (NodeType.ACTION, NodeType.CALL) and node.next:
        edges.append((node.next, sets))
    elif node.type is NodeType.HUMAN_TASK:
        form = frozenset(f.name for f in node.form)
        edges += [(o.next, form) for o in node.outcomes]
    elif node.type is NodeType.WAIT:
        edges += [(on.next, frozenset(on.set)) for on in node.on]
    elif node.type is NodeType.LOOP and node.counter:
        edges += [(t, frozenset({node.counter})) for t in (node.body, node.exit) if t]
    declared = {target for target, _ in edges}
    bare = {node.on_error, node.timeout.next if node.timeout else None}
    edges += [(target, frozenset()) for target, _ in node.successors()
              if target not in declared or target in bare]
    return edges


def _maybe_unset(ctx: CheckContext, given: set[str], provided: set[str]) -> Iterator[SopError]:
    tracked = sorted(name for name in ctx.spec.data if name in provided and name not in given)
    if not tracked:
        return
    bit = {name: 1 << i for i, name in enumerate(tracked)}
    gens: dict[tuple[str, str], int] = {}
    for node in ctx.spec.nodes.values():
        for target, fields in _edge_writes(node):
            mask = 0
            for name in fields:
                mask |= bit.get(name, 0)
            key = (node.id, target)
            gens[key] = gens[key] & mask if key in gens else mask  # several ways: the weakest
    assigned = must_fixpoint(ctx, (1 << len(tracked)) - 1, 0,
                             lambda p, n: gens.get((p, n), 0))
    for node in ctx.spec.nodes.values():
        if node.id not in ctx.reachable:
            continue
        nid, have = node.id, assigned.get(node.id, 0)
        for expr, path in iter_node_reads(node):
            read = _names(expr.source) & bit.keys()
            for name in sorted(read) if read else ():
                if not have & bit[name]:
                    yield warning(
                        "W-DATA-MAYBE-UNSET",
                        f"{name!r} is read here but some path to {nid!r} does not write it "
                        "(it has no default and is no input)",
                        expr.span,
                        path,
                        f"give {name!r} a default, or write it on every path before {nid!r}",
                    )
