"""Knowledge actions for SOPs (kb_answer, kb_suggest); filled in below."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ACTIONS: Mapping[str, Callable[..., Any]] = {}
