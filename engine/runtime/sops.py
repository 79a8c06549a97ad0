"""Which compiled SOP a case runs on: the library folder, plus every stored version by hash.

A case is pinned to the content hash of the SOP version it started on. New cases start on
the library's latest version of an SOP; running cases find theirs by hash -- in the
library when it is still there, else recompiled once from the source text stored in
``sop_versions`` (and cached), so deploying version N+1 never moves a running case.

The provider also hands out the library's agents document (``agents``), which the task
operations enforce (engine.runtime.permissions).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import RunError
from engine.interpreter.context import StepContext
from engine.sop.model import AgentsDoc
from engine.store.cases import register_sop_version
from engine.store.models import SopVersionRow

__all__ = ["DEFAULT_SOP_DIR", "SopProvider", "build_context"]

DEFAULT_SOP_DIR = "sop_definitions"


def build_context(library: Any) -> StepContext:
    """The interpreter's StepContext from a loaded library (calendars, policies, levels)."""
    from engine.sla.calendar import BusinessCalendar

    calendars = {}
    for cal_id, spec in getattr(library, "calendars", {}).items():
        base = Path(spec.source).parent if getattr(spec, "source", "") else None
        calendars[cal_id] = BusinessCalendar.from_spec(spec, base)
    default = next(iter(calendars), None)
    return StepContext(calendars=calendars, policies=tuple(getattr(library, "policies", ())),
                       levels=getattr(library, "levels", None), default_calendar=default)


class SopProvider:
    """Compiled SOPs by id (latest in the library) and by hash (any stored version)."""

    def __init__(self, sop_dir: str | Path = DEFAULT_SOP_DIR, *, library: Any = None) -> None:
        self.sop_dir = Path(sop_dir)
        self._library = library
        self._by_hash: dict[str, Any] = {}
        self._context: StepContext | None = None
        self._lock = threading.Lock()

    @property
    def library(self) -> Any:
        if self._library is None:
            from engine.sop.library import load_library

            if not self.sop_dir.exists():
                raise RunError(f"SOP folder {str(self.sop_dir)!r} does not exist (use --sops)")
            self._library = load_library(self.sop_dir)
        return self._library

    @property
    def agents(self) -> AgentsDoc | None:
        """The library's agents document: who may work on and decide tasks (None: nobody
        is checked; engine.runtime.permissions)."""
        agents: AgentsDoc | None = getattr(self.library, "agents", None)
        return agents

    @property
    def context(self) -> StepContext:
        if self._context is None:
            self._context = build_context(self.library)
        return self._context

    def by_id(self, sop_id: str) -> Any:
        """The latest version of ``sop_id`` in the library.

        Raises:
            RunError: no such SOP (names the known ones).
        """
        try:
            compiled = self.library.sops[sop_id]
        except KeyError:
            known = ", ".join(sorted(self.library.sops)) or "none"
            raise RunError(f"unknown SOP {sop_id!r} in {self.sop_dir} (known: {known})") from None
        self._by_hash.setdefault(compiled.hash, compiled)
        return compiled

    def by_hash(self, sop_hash: str, session: Session | None = None, engine: Engine | None = None) -> Any:
        """The compiled SOP with content hash ``sop_hash``.

        Raises:
            RunError: the hash is neither in the library nor stored.
        """
        found = self._by_hash.get(sop_hash)
        if found is not None:
            return found
        with self._lock:
            for compiled in getattr(self.library, "versions", self.library.sops).values():
                self._by_hash.setdefault(compiled.hash, compiled)
            if sop_hash in self._by_hash:
                return self._by_hash[sop_hash]
            source = self._stored_source(sop_hash, session, engine)
            from engine.sop.pipeline import compile_text

            compiled = compile_text(source[0], source[1] or f"<sop {sop_hash[:12]}>")
            if compiled.hash != sop_hash:
                raise RunError(f"stored SOP {sop_hash[:12]} recompiles to {compiled.hash[:12]}: "
                               "the compiler changed what it hashes; migrate the cases explicitly")
            self._by_hash[sop_hash] = compiled
            return compiled

    @staticmethod
    def _stored_source(sop_hash: str, session: Session | None, engine: Engine | None) -> tuple[str, str | None]:
        stmt = select(SopVersionRow.source, SopVersionRow.source_path).where(SopVersionRow.hash == sop_hash)
        if session is not None:
            row = session.execute(stmt).first()
        elif engine is not None:
            with Session(engine) as s:
                row = s.execute(stmt).first()
        else:
            row = None
        if row is None or not row[0]:
            raise RunError(f"SOP version {sop_hash[:12]} is neither in the library nor stored")
        return row[0], row[1]

    def register_all(self, engine: Engine, clock: Clock) -> None:
        """Store every SOP version of the library (idempotent; needed before cases start)."""
        versions = {c.hash: c for c in getattr(self.library, "versions", self.library.sops).values()}
        with Session(engine, expire_on_commit=False) as session, session.begin():
            known = set(session.scalars(select(SopVersionRow.hash)
                                        .where(SopVersionRow.hash.in_(list(versions)))))
            for digest, compiled in versions.items():
                if digest not in known:
                    register_sop_version(session, compiled, now=clock.now())
