"""Name rules for dropped files and zip members (R16), as pure functions."""

from __future__ import annotations

import pytest

from connectors.filedrop.safety import check_member_name, check_name


@pytest.mark.parametrize(
    "name",
    [
        "../../x",
        "/etc/passwd",
        "a/b.pdf",
        "a\\b.pdf",
        "x\x00.pdf",
        "x\n.pdf",
        "x\r.pdf",
        "..",
        ".",
        "",
        "-x.pdf",
        "a" * 300,
    ],
)
def test_bad_names(name: str) -> None:
    assert check_name(name) is not None


@pytest.mark.parametrize(
    "name", ["scan-0001.pdf", "Brief an Müller.pdf", "fax 2026-03-02.tif", "a..pdf"]
)
def test_good_names(name: str) -> None:
    assert check_name(name) is None


@pytest.mark.parametrize(
    "name", ["../x", "a/../../x", "/abs", "C:/x", "c:x", "a\\b", "x\x00y", "x\ny"]
)
def test_bad_member_names(name: str) -> None:
    assert check_member_name(name) is not None


def test_good_member_names() -> None:
    assert check_member_name("scans/page1.pdf") is None
