"""Fast construction of frozen slots dataclasses, for the interpreter's and SLA engine's
hot paths (one home for both).

The ``__init__`` a frozen dataclass gets sets each field through ``object.__setattr__``,
and ``dataclasses.replace`` reflects on the fields on every call. ``slot_functions`` writes,
once per class, a ``make`` and an ``evolve`` that fill the slots through their descriptors
in one straight function: equal objects, about twice as fast.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

__all__ = ["fast_constructor", "slot_functions"]


def slot_functions(cls: type) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``make(*fields)`` (in field order, keywords too; the trailing fields with plain
    defaults may be left out) and
    ``evolve(value, **changes)`` (like ``dataclasses.replace``) for ``cls``.

    Raises:
        TypeError: ``cls`` is not a slots dataclass, or has a ``__post_init__`` (which these
            would skip).
    """
    specs = fields(cls)
    names = [f.name for f in specs]
    if hasattr(cls, "__post_init__") or not all(
            isinstance(cls.__dict__.get(n), types.MemberDescriptorType) for n in names):
        raise TypeError(f"{cls.__name__}: not a slots dataclass without __post_init__")
    namespace: dict[str, object] = {"new": object.__new__, "cls": cls, "KEEP": object()}
    namespace.update({f"set_{n}": cls.__dict__[n].__set__ for n in names})
    defaults: dict[str, object] = {}  # the trailing fields with plain defaults
    for f in reversed(specs):
        if f.default is MISSING:
            break
        defaults[f.name] = f.default
    namespace.update({f"default_{n}": v for n, v in defaults.items()})
    params = ", ".join(f"{n}=default_{n}" if n in defaults else n for n in names)
    make_body = "".join(f"    set_{n}(o, {n})\n" for n in names)
    evolve_body = "".join(f"    set_{n}(o, c.{n} if {n} is KEEP else {n})\n" for n in names)
    source = (
        f"def make({params}):\n    o = new(cls)\n{make_body}    return o\n"
        f"def evolve(c, *, {', '.join(f'{n}=KEEP' for n in names)}):\n"
        f"    o = new(cls)\n{evolve_body}    return o\n"
    )
    exec(compile(source, f"<slot functions {cls.__name__}>", "exec"), namespace)  # noqa: S102 - own text
    make: Callable[..., Any] = namespace["make"]  # type: ignore[assignment]
    evolve: Callable[..., Any] = namespace["evolve"]  # type: ignore[assignment]
    make.__doc__ = f"``{cls.__name__}(...)`` through the slots (see engine.slots)."
    evolve.__doc__ = "A copy of ``c`` with ``changes`` (like dataclasses.replace)."
    return make, evolve


def fast_constructor(cls: type) -> Callable[..., Any]:
    """``cls(*values)`` through the slots (``slot_functions(cls)[0]``)."""
    return slot_functions(cls)[0]
