"""A library: a folder (or several) of SOPs plus the organisation's documents, cross-checked.

``load_library(paths)`` loads every ``*.yaml``/``*.yml`` below the given folders (or the
given files), dispatches on ``kind``, compiles every SOP (latest version per id wins),
and checks references between documents:

- node ``level`` / escalate & hand_back ``to`` / escalation ``to_level`` -> a level id
  (only when a levels document exists);
- ``timeout.calendar`` and a policy's ``calendar`` -> a calendar id;
- ``sla_start.policy`` and a level's ``ola`` -> an SLA policy id;
- ``call.sop`` and routing ``sop``/``fallback`` -> an SOP id;
- ``action`` names -> engine.actions.registry.known_actions(), when that module exists.

Every problem of every file is reported, each at its ``file:line:col``.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import CompileError, SopError, SopErrors, SourceSpan
from engine.sop.compiler import CompiledSop, compile_expr, compile_spec
from engine.sop.expressions import ExpressionEnv
from engine.sop.model import (
    CalendarSpec,
    Document,
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

#: names an SLA policy's ``when`` can read (all strings)
POLICY_FIELDS = ("priority", "tier", "channel", "category", "sop", "itil")
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
    #: every version of every SOP, by (id, version)
    versions: Mapping[tuple[str, str], CompiledSop] = field(default_factory=frozen_map)

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
        FileNotFoundError: a path does not exist.
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
            raise FileNotFoundError(str(p))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0].split("-")[0])[:3])


def _hint(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _known_actions() -> frozenset[str] | None:
    name = "engine.actions.registry"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, "engine.actions"):
            return None
        raise
    known = getattr(module, "known_actions", None)
    return frozenset(known()) if known is not None else None


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


def _build(root: Path, docs: list[Document], errors: list[SopError]) -> Library:
    from engine.sop.pipeline import iter_semantic_errors

    levels = [d for d in docs if isinstance(d, LevelsDoc)]
    routings = [d for d in docs if isinstance(d, RoutingDoc)]
    for extra in levels[1:] + routings[1:]:
        errors.append(CompileError("E-LIB-DUPLICATE",
                                   f"a second {type(extra).__name__} in the library",
                                   span=extra.span, hint="keep one levels and one routing document"))
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
        routing=routings[0] if routings else None, versions=frozen_map(versions))
    errors.extend(_iter_reference_errors(library))
    for compiled in clean:
        errors.extend(iter_semantic_errors(compiled, library))
    return library


def _unique(into: dict[str, object], key: str, doc: object, what: str, errors: list[SopError]) -> None:
    if key in into:
        errors.append(CompileError("E-LIB-DUPLICATE", f"{what} {key!r} is defined twice",
                                   span=getattr(doc, "span", None), json_path="$.id"))
    else:
        into[key] = doc


def _iter_reference_errors(lib: Library) -> Iterator[SopError]:
    level_ids = {lv.id for lv in lib.levels.levels} if lib.levels else None
    policy_ids = {p.id for p in lib.policies}
    actions = _known_actions()
    for compiled in lib.versions.values():
        yield from _iter_sop_refs(compiled.spec, lib, level_ids, policy_ids, actions)
    if lib.levels:
        for i, lv in enumerate(lib.levels.levels):
            if lv.ola is not None and lv.ola not in policy_ids:
                yield _ref_error("SLA policy", lv.ola, lv.span, f"$.levels[{i}].ola", policy_ids)
    for policy in lib.policies:
        if policy.calendar not in lib.calendars:
            yield _ref_error("calendar", policy.calendar, policy.span, "$.calendar", lib.calendars)
        if policy.when is not None:
            yield from _check_expr(ExpressionEnv((n, "string", None) for n in POLICY_FIELDS),
                                   policy.when, "$.when")
        for name, metric in policy.metrics.items():
            for j, step in enumerate(metric.escalation):
                if level_ids is not None and step.to_level and step.to_level not in level_ids:
                    yield _ref_error("level", step.to_level, step.span,
                                     f"$.metrics.{name}.escalation[{j}].to_level", level_ids)
    if lib.routing:
        env = ExpressionEnv((n, "string", None) for n in ROUTING_FIELDS)
        for i, rule in enumerate(lib.routing.rules):
            if rule.sop not in lib.sops:
                yield _ref_error("SOP", rule.sop, rule.span, f"$.rules[{i}].sop", lib.sops)
            if rule.when is not None:
                yield from _check_expr(env, rule.when, f"$.rules[{i}].when")
        fallback = lib.routing.fallback
        if fallback is not None and fallback not in lib.sops:
            yield _ref_error("SOP", fallback, lib.routing.span, "$.fallback", lib.sops)


def _check_expr(env: ExpressionEnv, expr: object, path: str) -> Iterator[SopError]:
    try:
        compile_expr(env, expr, expect_bool=True, json_path=path)  # type: ignore[arg-type]
    except SopError as err:
        yield err


def _iter_sop_refs(spec: SopSpec, lib: Library, level_ids: set[str] | None,
                   policy_ids: set[str], actions: frozenset[str] | None) -> Iterator[SopError]:
    for node_id, node in spec.nodes.items():
        base = f"$.nodes.{node_id}"
        if level_ids is not None:
            if node.level is not None and node.level not in level_ids:
                yield _ref_error("level", node.level, node.span, f"{base}.level", level_ids)
            if node.type in (NodeType.ESCALATE, NodeType.HAND_BACK) and node.to \
                    and node.to not in level_ids:
                yield _ref_error("level", node.to, node.span, f"{base}.to", level_ids)
        if node.timeout is not None and node.timeout.calendar is not None \
                and node.timeout.calendar not in lib.calendars:
            yield _ref_error("calendar", node.timeout.calendar, node.timeout.span,
                             f"{base}.timeout.calendar", lib.calendars)
        if node.policy is not None and node.policy not in policy_ids:
            yield _ref_error("SLA policy", node.policy, node.span, f"{base}.policy", policy_ids)
        if node.type is NodeType.CALL and node.sop and node.sop not in lib.sops:
            yield _ref_error("SOP", node.sop, node.span, f"{base}.sop", lib.sops)
        if actions is not None and node.action is not None and node.action not in actions:
            yield _ref_error("action", node.action, node.span, f"{base}.action", actions)


def iter_library_errors(paths: str | Path | Iterable[str | Path]) -> Iterator[SopError]:
    """Every error of every document below ``paths``, cross references included.

    Raises:
        FileNotFoundError: a path does not exist.
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
    library = _build(root, collector.docs, collector.errors)
    return library, collector.errors


def load_library(paths: str | Path | Iterable[str | Path]) -> Library:
    """Load, compile and cross-check every document below ``paths``.

    Raises:
        SopErrors: every error of every file.
        FileNotFoundError: a path does not exist.
    """
    library, errors = _load(paths)
    SopErrors.raise_if_any(errors)
    return library
