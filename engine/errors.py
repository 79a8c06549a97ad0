"""careflow's one exception hierarchy; every error carries its context as attributes.

The tree::

    CareflowError
    ├── SopError                 a problem in an SOP or organisation document (has a code and a span)
    │   ├── LoadError            the bytes are not a safe YAML document (size, depth, alias, duplicate key)
    │   ├── SchemaError          the document does not match its JSON Schema
    │   └── CompileError         a semantic check failed (graph, expressions, references)
    ├── SopErrors                several SopError at once (validation reports all errors)
    ├── ExpressionError          a CEL expression failed to compile or to evaluate
    ├── CalendarError            a business calendar or duration is invalid
    ├── RunError                 a runtime problem of one case (case id, node, attempt)
    │   ├── TransitionNotAllowed the event does not fit the case's state
    │   ├── TaskConflict         another agent already completed / claimed the task
    │   └── ActionFailed         an automated action raised (retryable or not)
    ├── StoreError               the case database refused or is unreachable
    ├── KnowledgeError           a knowledge-base operation was refused (unknown article, bad transition, bad query)
    └── ConnectorError           a channel connector failed (retryable or not)

Context lives in attributes, not only in the message; boundaries use ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "ActionFailed",
    "CalendarError",
    "CareflowError",
    "CompileError",
    "ConnectorError",
    "ExpressionError",
    "KnowledgeError",
    "LoadError",
    "RunError",
    "SchemaError",
    "SopError",
    "SopErrors",
    "SopPathNotFound",
    "SourceSpan",
    "StoreError",
    "TaskConflict",
    "TransitionNotAllowed",
]


@dataclass(frozen=True, slots=True, order=True)
class SourceSpan:
    """Where a YAML node stands: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class CareflowError(Exception):
    """Root of every error careflow raises on purpose."""


class SopError(CareflowError):
    """A problem in a document, reported as ``file:line:col: CODE: message (hint)``.

    Attributes:
        code: stable identifier, e.g. ``E-REF-UNKNOWN`` (see docs/sop-reference.md).
        message: plain-language description.
        span: where in the source (None only for whole-file problems before parsing).
        json_path: JSON path of the offending value, e.g. ``$.nodes.triage.next``.
        hint: how to fix it, e.g. a did-you-mean.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        span: SourceSpan | None = None,
        json_path: str = "$",
        hint: str | None = None,
        severity: str = "error",
    ) -> None:
        self.code = code
        self.message = message
        self.span = span
        self.json_path = json_path
        self.hint = hint
        self.severity = severity
        super().__init__(self.format())

    def format(self) -> str:
        where = str(self.span) if self.span else "<unknown>"
        text = f"{where}: {self.code}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.column, self.code)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.span.file if self.span else None,
            "line": self.span.line if self.span else None,
            "column": self.span.column if self.span else None,
            "json_path": self.json_path,
            "message": self.message,
            "hint": self.hint,
        }


class LoadError(SopError):
    """The file could not be read as a safe YAML document."""


class SchemaError(SopError):
    """The document does not match its JSON Schema."""


class CompileError(SopError):
    """A semantic check on the model or the compiled graph failed."""


@dataclass
class SopErrors(CareflowError):
    """All errors found in one or more documents, sorted by position."""

    errors: list[SopError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.errors = sorted(self.errors, key=SopError.sort_key)
        super().__init__("\n".join(e.format() for e in self.errors))

    def __iter__(self) -> Iterator[SopError]:
        return iter(self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    @classmethod
    def raise_if_any(cls, errors: Iterable[SopError]) -> None:
        found = [e for e in errors if e.severity == "error"]
        if found:
            raise cls(found)


class SopPathNotFound(CareflowError, FileNotFoundError):
    """An SOP file or library folder that does not exist (a FileNotFoundError too)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no SOP file or folder at {path!r} (run careflow in the folder that "
                         f"holds sop_definitions/, or pass --sops DIR)")
        self.path = path


class ExpressionError(CareflowError):
    """A CEL expression failed to compile or evaluate.

    Attributes:
        expression: the source text.
        detail: what CEL said.
        column: 1-based column inside the expression, when known.
    """

    def __init__(self, expression: str, detail: str, *, column: int | None = None) -> None:
        self.expression = expression
        self.detail = detail
        self.column = column
        super().__init__(f"expression {expression!r}: {detail}")


class CalendarError(CareflowError):
    """A business calendar, duration or instant is invalid."""


class RunError(CareflowError):
    """A runtime problem of one case.

    Attributes:
        case_id: the case.
        node_id: the SOP node, when known.
        attempt: the attempt number for actions, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        case_id: str | None = None,
        node_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        self.case_id = case_id
        self.node_id = node_id
        self.attempt = attempt
        where = ", ".join(
            f"{k}={v}"
            for k, v in (("case", case_id), ("node", node_id), ("attempt", attempt))
            if v is not None
        )
        super().__init__(f"{message} [{where}]" if where else message)
        self.message = message


class TransitionNotAllowed(RunError):
    """The event does not fit what the case is waiting for."""


class TaskConflict(RunError):
    """Another agent completed or claimed the task first."""


class ActionFailed(RunError):
    """An automated action raised; ``retryable`` says whether a retry may help."""

    def __init__(self, message: str, *, retryable: bool = True, **context: object) -> None:
        self.retryable = retryable
        super().__init__(message, **context)  # type: ignore[arg-type]


class StoreError(CareflowError):
    """The case database refused an operation or cannot be reached."""


class KnowledgeError(CareflowError):
    """A knowledge-base operation was refused.

    Attributes:
        article_id: the article concerned, when there is one.
        hint: how to fix it, when known.
    """

    def __init__(self, message: str, *, article_id: str | None = None,
                 hint: str | None = None) -> None:
        self.article_id = article_id
        self.hint = hint
        self.message = message
        text = f"{article_id}: {message}" if article_id else message
        super().__init__(f"{text} ({hint})" if hint else text)


class ConnectorError(CareflowError):
    """A channel connector failed.

    Attributes:
        connector: the connector's registered name.
        retryable: whether trying again later may succeed.
    """

    def __init__(self, connector: str, message: str, *, retryable: bool = True) -> None:
        self.connector = connector
        self.retryable = retryable
        super().__init__(f"{connector}: {message}")
