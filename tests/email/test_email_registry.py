"""Both connectors register through the careflow.connectors entry points and fit the contract."""

from __future__ import annotations

from pathlib import Path

from connectors.base import Connector, PollingConnector
from connectors.email import EmailConnector
from connectors.filedrop import FileDropConnector
from connectors.registry import ConnectorRegistry, check_connector


def test_entry_points_build_both_connectors(tmp_path: Path) -> None:
    registry = ConnectorRegistry()
    names = registry.load_entry_points(strict=True)
    assert {"email", "filedrop"} <= set(names)
    email = registry.create("email", {"from_address": "care@careflow.example"})
    drop = registry.create("filedrop", {"root": str(tmp_path)})
    assert isinstance(email, EmailConnector)
    assert isinstance(drop, FileDropConnector)
    assert registry.names_for_channel("email") == ["email"]
    assert registry.names_for_channel("letter") == registry.names_for_channel("fax") == ["filedrop"]


def test_connectors_satisfy_the_protocols(tmp_path: Path) -> None:
    for conn in (EmailConnector({}), FileDropConnector({"root": str(tmp_path)})):
        assert isinstance(conn, Connector)
        assert isinstance(conn, PollingConnector)
        assert check_connector(conn.name, conn) is conn
