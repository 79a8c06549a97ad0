"""Fixtures of the interpreter tests; the helpers themselves live in interp_helpers.py (a
uniquely named module, so test folders never import each other's conftest by accident)."""

from __future__ import annotations

from interp_helpers import ctx, org_ctx, password_reset

__all__ = ["ctx", "org_ctx", "password_reset"]
