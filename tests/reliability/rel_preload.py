"""Compiles the reliability SOPs at import, so a forkserver that preloads this module hands
every (re)spawned worker an already compiled library (respawn in ~0.1 s, not ~1 s)."""

from __future__ import annotations

from rel_support import SOP_DIR

from engine.runtime.sops import SopProvider

PROVIDER = SopProvider(SOP_DIR)
PROVIDER.library  # noqa: B018 -- compile now, in the forkserver
PROVIDER.context  # noqa: B018
