"""A library: a folder (or several) of SOPs plus the organisation's documents, cross-checked.

``load_library(paths)`` loads every ``*.yaml``/``*.yml`` below the given folders (or the
given files), dispatches on ``kind``, compiles every SOP (latest version per id wins),
and checks references between documents:

- a policy escalation rung's ``to_level`` -> a level id (when a levels document exists);
- a policy's ``calendar`` -> a calendar id;
- a level's ``ola`` -> an SLA policy id;
- an agent's ``levels`` -> level ids (``E-LEVEL-UNKNOWN``, when a levels document exists);
- a human task's ``role`` and its outcomes' ``roles`` -> held by some agent at the task's
  level (warning ``W-ROLE-UNSTAFFED``, when an agents document exists: nobody could work
  on or decide the task);
- routing ``sop``/``fallback`` -> an SOP id;
- routing and policy ``when`` conditions compile (CEL, bool).

References made by SOP *nodes* (level, escalate/hand_back ``to``, ``timeout.calendar``,
``sla_start.policy``, ``call.sop``, ``action`` names against engine.actions.registry) are
checked by engine.sop.checks (engineer A2) with specific codes, given this Library; when
only files were given (``complete=False``) kinds that are not loaded are not checked.

Every problem of every file is reported, each at its ``file:line:col``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.errors import CompileError, SopError, SopErrors, SopPathNotFound, SourceSpan
from engine.sop.checks_base import did_you_mean
from engine.sop.compiler import CompiledSop, compile_expr, compile_spec
from engine.sop.expressions import ExpressionEnv
from engine.sop.model import (
    AgentsDoc,
    CalendarSpec,
    Document,
    Expr,
    LevelsDoc,
    NodeType,
    RoutingDoc,
    SlaPolicyDoc,
    SopSpec,
    frozen_map,
)

__all__ = [
    "POLICY_FIELDS",
    "ROUTING_FIELDS",
    "Library",
    "iter_library_errors",
    "iter_yaml_files",
    "load_library",
]

#: what an SLA policy's ``when`` reads: ``case.<name>`` (engine.sla.policy evaluates it so)
POLICY_FIELDS = ("priority", "tier", "channel", "category", "sop")
#: names a routing rule's ``when`` can read besides ``event`` (all strings)
ROUTING_FIELDS = ("channel", "subject", "body", "intent", "sender", "language")


@dataclass(frozen=True, slots=True)
class Library:
    """Every document of a library, compiled and cross-checked."""

    root: Path
    sops: Mapping[str, CompiledSop] = field(default_factory=frozen_map)
    levels: LevelsDoc | None = None
    calendars: Mapping[str, CalendarSpec] = field(default_factory=frozen_map)
    policies: tuple[SlaPolicyDoc, ...] = ()
    routing: RoutingDoc | None = None
    #: who may work on and decide human tasks; None = not enforced
    agents: AgentsDoc | None = None
    #: every version of every SOP, by (id, version)
    versions: Mapping[tuple[str, str], CompiledSop] = field(default_factory=frozen_map)
    #: loaded from folders (a whole library); False when only files were given, and then
    #: references to documents that are not there (no calendar at all, another SOP) are
    #: not checked
    complete: bool = True

    def sop(self, sop_id: str, version: str | None = None) -> CompiledSop:
        """An SOP by id (latest version, or the given one). Raises KeyError."""
        if version is None:
            return self.sops[sop_id]
        return self.versions[(sop_id, version)]

    def policy(self, policy_id: str) -> SlaPolicyDoc:
        """An SLA policy by id. Raises KeyError."""
        for p in self.policies:
            if p.id == policy_id:
                return p
        raise KeyError(policy_id)


def iter_yaml_files(paths: str | Path | Iterable[str | Path]) -> Iterator[Path]:
    """Every ``*.yaml``/``*.yml`` file given or below the given folders, sorted per folder.

    Raises:
        SopPathNotFound (a FileNotFoundError): a path does not exist.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    for item in items:
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml")
                              and f.is_file() and not any(part.startswith(".") for part in
                                                          f.relative_to(p).parts))
        elif p.is_file():
            yield p
        else:
            raise SopPathNotFound(str(p))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0].split("-")[0])[:3])


def _hint(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


D = TypeVar("D", CalendarSpec, SlaPolicyDoc)


class _Collector:
    """Loads documents and collects their errors."""

    def __init__(self) -> None:
        self.errors: list[SopError] = []
        self.docs: list[Document] = []

    def load(self, path: Path) -> None:
        from engine.sop.pipeline import load_document

        try:
            self.docs.append(load_document(path))
        except SopErrors as exc:
            self.errors.extend(exc.errors)


def _ref_error(kind: str, name: str, span: SourceSpan, path: str, choices: Iterable[str]) -> SopError:
    choices = list(choices)
    return CompileError("E-REF-UNKNOWN", f"unknown {kind} {name!r}", span=span, json_path=path,
                        hint=_hint(name, choices) or (f"known: {', '.join(sorted(choices))}"
                                                      if choices else f"no {kind} is defined"))


def _build(root: Path, docs: list[Document], errors: list[SopError], complete: bool) -> Library:
    from engine.sop.pipeline import iter_semantic_errors

    levels = [d for d in docs if isinstance(d, LevelsDoc)]
    routings = [d for d in docs if isinstance(d, RoutingDoc)]
    agents = [d for d in docs if isinstance(d, AgentsDoc)]
    extras: list[LevelsDoc | RoutingDoc | AgentsDoc] = [*levels[1:], *routings[1:], *agents[1:]]
    for extra in extras:
        errors.append(CompileError("E-LIB-DUPLICATE",
                                   f"a second {type(extra).__name__} in the library",
                                   span=extra.span,
                                   hint="keep one levels, one routing and one agents document"))
    calendars: dict[str, CalendarSpec] = {}
    policies: dict[str, SlaPolicyDoc] = {}
    for doc in docs:
        if isinstance(doc, CalendarSpec):
            _unique(calendars, doc.id, doc, "calendar", errors)
        elif isinstance(doc, SlaPolicyDoc):
            _unique(policies, doc.id, doc, "SLA policy", errors)
    versions: dict[tuple[str, str], CompiledSop] = {}
    clean: list[CompiledSop] = []  # compiled without errors: semantic checks apply
    for doc in docs:
        if not isinstance(doc, SopSpec):
            continue
        if (doc.id, doc.version) in versions:
            first = versions[(doc.id, doc.version)].spec
            errors.append(CompileError(
                "E-LIB-DUPLICATE", f"SOP {doc.id!r} version {doc.version} is defined twice "
                f"(also in {first.source}:{first.span.line})", span=doc.span, json_path="$.version",
                hint="give the new one a higher version"))
            continue
        found: list[SopError] = []
        compiled = compile_spec(doc, errors=found)
        errors.extend(found)
        versions[(doc.id, doc.version)] = compiled
        if not any(e.severity == "error" for e in found):
            clean.append(compiled)
    latest: dict[str, CompiledSop] = {}
    for (sop_id, _), compiled in sorted(versions.items(), key=lambda kv: _version_key(kv[0][1])):
        latest[sop_id] = compiled
    library = Library(
        root=root, sops=frozen_map(dict(sorted(latest.items()))),
        levels=levels[0] if levels else None, calendars=frozen_map(calendars),
        policies=tuple(sorted(policies.values(), key=lambda p: (p.order, p.id))),
        routing=routings[0] if routings else None, agents=agents[0] if agents else None,
        versions=frozen_map(versions), complete=complete)
    errors.extend(_iter_reference_errors(library))
    errors.extend(_iter_unstaffed(library))
    for compiled in clean:
        errors.extend(iter_semantic_errors(compiled, library))
    return library


def _unique(into: dict[str, D], key: str, doc: D, what: str, errors: list[SopError]) -> None:
    if key in into:
        errors.append(CompileError("E-LIB-DUPLICATE", f"{what} {key!r} is defined twice",
                                   span=getattr(doc, "span", None), json_path="$.id"))
    else:
        into[key] = doc


@dataclass(frozen=True, slots=True)
class _Known:
    """The ids references may point at; None = not checked (that kind is not loaded)."""

    levels: frozenset[str] | None
    calendars: frozenset[str] | None
    policies: frozenset[str] | None
    sops: frozenset[str] | None

    @classmethod
    def of(cls, lib: Library) -> _Known:
        def ids(values: Iterable[str], *, partial_skip: bool = False) -> frozenset[str] | None:
            found = frozenset(values)
            if lib.complete:
                return found
            return None if partial_skip or not found else found

        return cls(
            levels=frozenset(lv.id for lv in lib.levels.levels) if lib.levels else None,
            calendars=ids(lib.calendars),
            policies=ids(p.id for p in lib.policies),
            sops=ids(lib.sops, partial_skip=True),
        )


def _missing(known: frozenset[str] | None, name: str | None) -> bool:
    return known is not None and name is not None and name not in known


def _iter_reference_errors(lib: Library) -> Iterator[SopError]:
    known = _Known.of(lib)
    if lib.levels:
        for i, lv in enumerate(lib.levels.levels):
            if _missing(known.policies, lv.ola):
                yield _ref_error("SLA policy", str(lv.ola), lv.span, f"$.levels[{i}].ola",
                                 known.policies or ())
    for policy in lib.policies:
        if _missing(known.calendars, policy.calendar):
            yield _ref_error("calendar", policy.calendar, policy.span, "$.calendar",
                             known.calendars or ())
        if policy.when is not None:
            yield from _check_expr(ExpressionEnv(), policy.when, "$.when")  # reads case.*
        for name, metric in policy.metrics.items():
            for j, step in enumerate(metric.escalation):
                if _missing(known.levels, step.to_level):
                    yield _ref_error("level", str(step.to_level), step.span,
                                     f"$.metrics.{name}.escalation[{j}].to_level", known.levels or ())
    if lib.agents:
        yield from _iter_agent_errors(lib.agents, known.levels)
    if lib.routing:
        env = ExpressionEnv((n, "string", None) for n in ROUTING_FIELDS)
        for i, rule in enumerate(lib.routing.rules):
            if _missing(known.sops, rule.sop):
                yield _ref_error("SOP", rule.sop, rule.span, f"$.rules[{i}].sop", known.sops or ())
            if rule.when is not None:
                yield from _check_expr(env, rule.when, f"$.rules[{i}].when")
        if _missing(known.sops, lib.routing.fallback):
            yield _ref_error("SOP", str(lib.routing.fallback), lib.routing.span, "$.fallback",
                             known.sops or ())


def _iter_agent_errors(agents: AgentsDoc, levels: frozenset[str] | None) -> Iterator[SopError]:
    """Every level an agent names must be a level of the organisation."""
    if levels is None:
        return
    for i, agent in enumerate(agents.agents):
        for j, (level, span) in enumerate(zip(agent.levels, agent.level_spans, strict=True)):
            if level not in levels:
                yield CompileError(
                    "E-LEVEL-UNKNOWN", f"agent {agent.id!r}: unknown competence level {level!r}",
                    span=span, json_path=f"$.agents[{i}].levels[{j}]",
                    hint=did_you_mean(level, levels)
                    or f"known levels: {', '.join(sorted(levels))}")


def _iter_unstaffed(lib: Library) -> Iterator[SopError]:
    """Warnings for human tasks nobody in the agents document could work on or decide."""
    if lib.agents is None:
        return
    held: dict[str, set[str]] = {}  # level -> roles held there
    for agent in lib.agents.agents:
        for level in agent.levels:
            held.setdefault(level, set()).update(agent.roles)
    every_role = sorted({r for roles in held.values() for r in roles})
    for compiled in lib.sops.values():
        spec = compiled.spec
        for node in spec.nodes.values():
            if node.type is not NodeType.HUMAN_TASK or node.level is None:
                continue
            if node.level not in held:
                yield _unstaffed(spec, node.id, node.span, f"$.nodes.{node.id}.level",
                                 f"no agent works at level {node.level!r}",
                                 "give an agent this level in the agents document")
                continue
            roles = held[node.level]
            if node.role is not None and node.role not in roles:
                yield _unstaffed(spec, node.id, node.span, f"$.nodes.{node.id}.role",
                                 f"no agent at level {node.level!r} has role {node.role!r}",
                                 did_you_mean(node.role, every_role))
            for outcome in node.outcomes:
                if outcome.roles and not roles.intersection(outcome.roles):
                    yield _unstaffed(
                        spec, node.id, outcome.span,
                        f"$.nodes.{node.id}.outcomes.{outcome.name}.roles",
                        f"outcome {outcome.name!r}: no agent at level {node.level!r} has any "
                        f"of the roles {', '.join(outcome.roles)}", None)


def _unstaffed(spec: SopSpec, node_id: str, span: SourceSpan, path: str, why: str,
               hint: str | None) -> SopError:
    return CompileError("W-ROLE-UNSTAFFED", f"human_task {node_id!r} of {spec.id}: {why}",
                        span=span, json_path=path, severity="warning",
                        hint=hint or "add the role to an agent of that level in the agents "
                        "document")


def _check_expr(env: ExpressionEnv, expr: Expr, path: str) -> Iterator[SopError]:
    try:
        compile_expr(env, expr, expect_bool=True, json_path=path)
    except SopError as err:
        yield err


def iter_library_errors(paths: str | Path | Iterable[str | Path]) -> Iterator[SopError]:
    """Every error of every document below ``paths``, cross references included.

    Raises:
        SopPathNotFound (a FileNotFoundError): a path does not exist.
    """
    _, errors = _load(paths)
    yield from sorted(errors, key=SopError.sort_key)


def _load(paths: str | Path | Iterable[str | Path]) -> tuple[Library, list[SopError]]:
    files = list(iter_yaml_files(paths))
    collector = _Collector()
    for f in files:
        collector.load(f)
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    root = Path(items[0]) if items else Path(".")
    if root.is_file():
        root = root.parent
    complete = all(Path(item).is_dir() for item in items)
    library = _build(root, collector.docs, collector.errors, complete)
    return library, collector.errors


def load_library(paths: str | Path | Iterable[str | Path]) -> Library:
    """Load, compile and cross-check every document below ``paths``.

    Raises:
        SopErrors: every error of every file.
        SopPathNotFound (a FileNotFoundError): a path does not exist.
    """
    library, errors = _load(paths)
    SopErrors.raise_if_any(errors)
    return library
