"""Case-data checks: every field read is provided somehow, every field written is declared.

- ``E-DATA-NEVER-WRITTEN``: an expression reads a declared field that is not ``input: true``,
  has no ``default`` and is written by no node (``set``, an action's or call's ``set``, a
  human task's ``form`` field, a wait's ``on[].set``, a handler's ``set``, a loop ``counter``).
  Such an expression could only ever fail at run time with "no value".
- ``E-DATA-UNDECLARED``: a node writes a field that ``data`` does not declare (the target of
  ``set``, ``on[].set``, handler ``set``, a ``form`` field, or a loop ``counter``).
  Declaring it gives the field a type, so expressions that read it are type-checked.

Names are found with :func:`engine.sop.expressions.referenced_names` (top-level identifiers,
string literals and member names ignored), so ``case.tier`` reads ``case``, never ``tier``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from engine.errors import SopError, SourceSpan
from engine.sop.checks_base import CheckContext, did_you_mean, error
from engine.sop.expressions import referenced_names
from engine.sop.model import Expr, NodeType

__all__ = ["iter_data_errors", "iter_reads", "iter_writes"]


def _expr_of(value: object, span: SourceSpan) -> Expr | None:
    """An input value as an expression: an ``Expr``, or a ``${ ... }`` string."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, str) and value.strip().startswith("${") and value.strip().endswith("}"):
        return Expr(value.strip()[2:-1].strip(), span)
    return None


def iter_reads(ctx: CheckContext) -> Iterator[tuple[Expr, str]]:
    """Every expression of the SOP with the JSON path of where it stands."""
    for node in ctx.spec.nodes.values():
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
    provided = set(written) | {
        name for name, spec in data.items() if spec.input or spec.default is not None
    }
    yield from _never_written(data, provided, iter_reads(ctx))


def _never_written(
    data: Mapping[str, object], provided: set[str], reads: Iterator[tuple[Expr, str]]
) -> Iterator[SopError]:
    for expr, path in reads:
        for name in sorted(referenced_names(expr.source)):
            if name in data and name not in provided:
                yield error(
                    "E-DATA-NEVER-WRITTEN",
                    f"{name!r} is read here but never gets a value: it is not an input, has "
                    "no default, and no node writes it",
                    expr.span,
                    path,
                    f"mark it 'input: true', give it a 'default', or write it with a set "
                    f"node or form field before this point",
                )
