"""Find and build the organisation's business calendars and SLA policies from YAML files.

A calendar is named either by a file path (``sop_definitions/org/calendar_office_nl.yaml``)
or by its id (``office_nl``), looked up among the ``kind: calendar`` documents of the
organisation folder: ``--org`` / ``org_dir``, else ``$CAREFLOW_ORG_DIR``, else
``sop_definitions/org`` under the current directory, else the one next to this package.
Documents are read with the SOP loader (engine.sop.load_document: safe YAML, JSON Schema,
positions), so errors point at file:line:col.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from engine.errors import CalendarError
from engine.sla.calendar import BusinessCalendar

__all__ = ["find_org_dir", "iter_org_documents", "load_calendar", "load_calendars", "load_policies"]

_PACKAGE_ORG = Path(__file__).resolve().parents[2] / "sop_definitions" / "org"


def find_org_dir(org_dir: Path | None = None) -> Path:
    """The organisation folder to read (see the module docstring for the search order)."""
    if org_dir is not None:
        return org_dir
    env = os.environ.get("CAREFLOW_ORG_DIR")
    if env:
        return Path(env)
    local = Path("sop_definitions") / "org"
    return local if local.is_dir() else _PACKAGE_ORG


def iter_org_documents(org_dir: Path | None = None, kind: str | None = None) -> Iterator[object]:
    """Every organisation document (levels, calendars, policies...) in the folder.

    With ``kind``, files whose text has no ``kind: <kind>`` line are skipped unread by the
    YAML loader (a cheap pre-filter; what is loaded is still fully validated).

    Raises:
        CalendarError: the folder does not exist.
        SopErrors: a document is invalid (with file:line:col).
    """
    from engine.sop import load_document

    folder = find_org_dir(org_dir)
    if not folder.is_dir():
        raise CalendarError(f"organisation folder {folder} does not exist (give --org)")
    wanted = re.compile(rf"^kind:\s*['\"]?{re.escape(kind)}\b", re.M) if kind else None
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        if wanted is not None and not wanted.search(path.read_text(errors="replace")):
            continue
        yield load_document(path)


def load_calendar(name_or_file: str, org_dir: Path | None = None) -> BusinessCalendar:
    """The calendar in file ``name_or_file``, or the one with that id in the org folder.

    Raises:
        CalendarError: no such calendar (the message lists the known ids), or it is invalid.
        SopErrors: the YAML document is invalid.
    """
    from engine.sop import load_document
    from engine.sop.model import CalendarSpec

    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise CalendarError(f"calendar file {path} does not exist")
        doc = load_document(path)
        if not isinstance(doc, CalendarSpec):
            raise CalendarError(f"{path} is not a calendar (kind: calendar)")
        return BusinessCalendar.from_spec(doc)
    specs = {
        d.id: d for d in iter_org_documents(org_dir, "calendar") if isinstance(d, CalendarSpec)
    }
    if name_or_file not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise CalendarError(
            f"unknown calendar {name_or_file!r} in {find_org_dir(org_dir)} (known: {known})"
        )
    return BusinessCalendar.from_spec(specs[name_or_file])


def load_calendars(org_dir: Path | None = None) -> dict[str, BusinessCalendar]:
    """Every calendar of the organisation folder, by id."""
    from engine.sop.model import CalendarSpec

    return {
        d.id: BusinessCalendar.from_spec(d)
        for d in iter_org_documents(org_dir, "calendar")
        if isinstance(d, CalendarSpec)
    }


def load_policies(org_dir: Path | None = None) -> tuple[object, ...]:
    """Every SLA policy (``SlaPolicyDoc``) of the organisation folder, in ``order``."""
    from engine.sop.model import SlaPolicyDoc

    found = [d for d in iter_org_documents(org_dir, "sla_policy") if isinstance(d, SlaPolicyDoc)]
    return tuple(sorted(found, key=lambda p: (p.order, p.id)))
