"""Interpreter events as the JSON the case store keeps (via engine.interpreter.codec).

Intake queues ``Signal`` and ``CaseStarted`` inputs; the store wants them in the
interpreter codec's JSON form. The codec is imported lazily; until it exists a stand-in
with the same shape idea (``{"type": <class name>, <fields>}``) is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.interpreter.types import CaseStarted, Signal

__all__ = ["event_json"]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def event_json(event: Signal | CaseStarted) -> Any:
    """The codec JSON of an interpreter event."""
    try:
        from engine.interpreter.codec import event_to_json
    except ModuleNotFoundError as exc:
        if exc.name != "engine.interpreter.codec":
            raise
    else:
        return event_to_json(event)
    fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"type": type(event).__name__, **fields}
