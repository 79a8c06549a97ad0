"""Fixtures of the SOP-pipeline tests: the canonical example and a small organisation library."""

from __future__ import annotations

from pathlib import Path

import pytest
from sop_pipeline_helpers import CALENDAR, EXAMPLE, LEVELS, POLICY, ROUTING


@pytest.fixture()
def example_text() -> str:
    """The canonical example SOP as text."""
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture()
def org_library(tmp_path: Path, example_text: str) -> Path:
    """A folder with the example SOP plus levels, a calendar, a policy and routing."""
    (tmp_path / "org").mkdir()
    (tmp_path / "password_reset.yaml").write_text(example_text, encoding="utf-8")
    for name, text in (("levels", LEVELS), ("calendar", CALENDAR), ("policy", POLICY),
                       ("routing", ROUTING)):
        (tmp_path / "org" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path
