"""The runtimes of this process, by key: what a flow run works on (engine, clock, SOPs).

Flow parameters must be JSON, so flows receive a key and look the live objects up here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from engine.clock import Clock
from engine.errors import RunError
from engine.runtime.advance import Advancer
from engine.runtime.sops import SopProvider

__all__ = ["Runtime", "register_runtime", "runtime_for", "unregister_runtime"]


@dataclass(slots=True)
class Runtime:
    """One case database with its clock, SOP provider and advancer."""

    key: str
    engine: Engine
    clock: Clock
    sops: SopProvider
    advancer: Advancer
    worker: str
    artifacts: bool = True


_RUNTIMES: dict[str, Runtime] = {}
_LOCK = threading.Lock()


def register_runtime(rt: Runtime) -> Runtime:
    with _LOCK:
        _RUNTIMES[rt.key] = rt
    return rt


def unregister_runtime(key: str) -> None:
    with _LOCK:
        _RUNTIMES.pop(key, None)


def runtime_for(key: str) -> Runtime:
    try:
        return _RUNTIMES[key]
    except KeyError:
        raise RunError(f"no careflow runtime {key!r} in this process") from None
