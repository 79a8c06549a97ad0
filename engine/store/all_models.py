"""Import every table module so ``Base.metadata`` holds the whole schema (Alembic, create_all)."""

from __future__ import annotations

import importlib

from engine.store.base import Base

__all__ = ["MODEL_MODULES", "load_all"]

#: one module per area; a module not yet present is skipped
MODEL_MODULES = (
    "engine.store.models",
    "engine.store.models_crm",
    "engine.store.models_knowledge",
    "engine.store.models_channels",
)


def load_all() -> type[Base]:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base
