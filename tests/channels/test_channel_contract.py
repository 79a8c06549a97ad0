"""The connector contract: event JSON round trip and schema, registry checks, memory fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.base import (
    CONTRACT_VERSION,
    SCHEMA_PATH,
    Attachment,
    ChannelEvent,
    Connector,
    Delivery,
    EventFormatError,
    OutboundMessage,
    ThreadRefs,
)
from connectors.memory import MemoryConnector
from connectors.registry import ConnectorRegistry, PluginError, check_connector
from engine.errors import ConnectorError

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _event(**kw: object) -> ChannelEvent:
    base: dict[str, object] = {
        "channel": "email",
        "external_id": "<m1@example.org>",
        "direction": "inbound",
        "occurred_at": T0,
        "customer": {"email": "alice@example.org", "name": "Alice"},
        "thread": ThreadRefs(message_id="<m1@example.org>", references=("<a@x>", "<b@x>"),
                             in_reply_to="<b@x>"),
        "subject": "Cannot log in",
        "body": "Hello",
        "attachments": (Attachment("a.pdf", "application/pdf", 10, "0" * 64),),
        "metadata": {"headers": {"X-Thing": "1"}, "n": [1, 2]},
    }
    base.update(kw)
    return ChannelEvent(**base)  # type: ignore[arg-type]


def test_event_round_trips_through_json_and_schema() -> None:
    event = _event()
    text = event.to_json()
    data = json.loads(text)
    assert data["contract_version"] == CONTRACT_VERSION
    back = ChannelEvent.from_json(text)
    assert back == event
    assert back.thread.ids() == ("<b@x>", "<a@x>")
    assert back.key == ("email", "<m1@example.org>")


def test_schema_has_id_and_a_description_on_every_property() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$id"].endswith("channel_event.schema.json")
    assert schema["$schema"].endswith("2020-12/schema")

    def walk(node: dict[str, object], path: str) -> list[str]:
        missing = []
        for name, sub in (node.get("properties") or {}).items():  # type: ignore[union-attr]
            if "description" not in sub:
                missing.append(f"{path}.{name}")
            missing += walk(sub, f"{path}.{name}")
            if isinstance(sub.get("items"), dict):
                missing += walk(sub["items"], f"{path}.{name}[]")
        return missing

    assert walk(schema, "$") == []


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(channel="pigeon"), "$.channel"),
        (lambda d: d.pop("external_id"), "$"),
        (lambda d: d.update(direction="sideways"), "$.direction"),
        (lambda d: d["customer"].update(shoe_size="44"), "$.customer"),
        (lambda d: d.update(occurred_at="yesterday"), "$.occurred_at"),
        (lambda d: d.update(occurred_at="2026-03-02T09:30:00"), "$.occurred_at"),
        (lambda d: d["attachments"][0].update(sha256="xyz"), "$.attachments[0].sha256"),
        (lambda d: d.update(contract_version="2.0"), "$.contract_version"),
    ],
)
def test_invalid_event_json_is_refused_with_its_path(mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(_event().to_json())
    mutate(data)
    with pytest.raises(EventFormatError) as err:
        ChannelEvent.from_json(json.dumps(data))
    assert err.value.json_path == path
    assert isinstance(err.value, ConnectorError)


def test_not_json_is_an_event_format_error() -> None:
    with pytest.raises(EventFormatError, match="not JSON"):
        ChannelEvent.from_json(b"{nope")


def test_constructor_checks_values() -> None:
    with pytest.raises(EventFormatError, match="aware"):
        _event(occurred_at=datetime(2026, 1, 1))
    with pytest.raises(EventFormatError, match="kind"):
        _event(kind="telepathy")


class _Good:
    name = "good"
    channels = ("sms",)

    def __init__(self, config: object) -> None:
        self.config = config

    def send(self, msg: OutboundMessage) -> Delivery:
        return Delivery(msg.message_id, "x", "sent")

    def health(self):  # type: ignore[no-untyped-def]
        return None


class _NoSend:
    name = "nosend"

    def health(self) -> None:
        return None


def test_registry_checks_implementations_and_names_the_plugin() -> None:
    reg = ConnectorRegistry()
    reg.register("good", _Good)
    with pytest.raises(PluginError, match="'broken'.*_NoSend lacks send"):
        reg.register("broken", _NoSend)
    with pytest.raises(PluginError, match="'notcallable'"):
        reg.register("notcallable", 42)
    with pytest.raises(PluginError, match="already registered"):
        reg.register("good", lambda c: _Good(c))
    with pytest.raises(PluginError, match="no such connector; registered: good"):
        reg.create("nope")
    # a factory whose product lacks a name is refused when built
    reg.register("nameless", lambda c: type("X", (), {"send": lambda s, m: None,
                                                       "health": lambda s: None})())
    with pytest.raises(PluginError, match="'nameless'.*lacks name"):
        reg.create("nameless")
    # a factory that raises is reported under the plugin's name
    reg.register("boom", lambda c: 1 / 0)
    with pytest.raises(PluginError, match="'boom': factory failed: ZeroDivisionError"):
        reg.create("boom")


def test_registry_finds_connector_by_channel_and_caches_it() -> None:
    reg = ConnectorRegistry()
    reg.register("good", _Good)
    reg.register("mem-email", MemoryConnector, channels=("email",))
    sms = reg.for_channel("sms", {"k": 1})
    assert sms is reg.for_channel("sms")
    assert isinstance(sms, Connector)
    assert reg.for_channel("email").name == "memory"
    with pytest.raises(PluginError, match="no connector serves channel 'fax'"):
        reg.for_channel("fax")
    reg.register("good2", _Good)
    with pytest.raises(PluginError, match="several connectors serve channel 'sms'"):
        reg.for_channel("sms")
    assert reg.for_channel("sms", name="good2") is not sms


def test_entry_points_are_loaded_only_when_asked() -> None:
    reg = ConnectorRegistry()
    assert reg.names() == []
    names = reg.load_entry_points()
    assert {"memory", "sms_example"} <= set(names)
    assert reg.origin("memory").startswith("entry point connectors.memory")
    conn = reg.create("sms_example", {"gateway_url": "http://127.0.0.1:9/"})
    check_connector("sms_example", conn)


def test_broken_entry_point_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.registry as registry

    class _EP:
        name = "bad"
        value = "nowhere.module:Thing"

        def load(self) -> object:
            raise ImportError("No module named 'nowhere'")

    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP()])
    reg = ConnectorRegistry()
    assert reg.load_entry_points() == []
    assert "nowhere.module:Thing" in str(reg.errors["bad"])
    with pytest.raises(PluginError, match="'bad'"):
        reg.load_entry_points(strict=True)


def test_memory_connector_records_dedups_and_scripts_failures() -> None:
    conn = MemoryConnector({"name": "m"})
    msg = OutboundMessage("msg-1", "case-1", "email", "a@x", "Hi", "Body", "key-1")
    assert conn.send(msg).status == "sent"
    assert conn.send(msg).detail == "duplicate"
    assert [m.message_id for m in conn.sent] == ["msg-1"]
    assert len(conn.duplicates) == 1
    conn.fail_next("deferred", "try later")
    d = conn.send(OutboundMessage("msg-2", None, "email", "a@x", "", "", "key-2"))
    assert (d.status, d.detail) == ("deferred", "try later")
    assert conn.health().ok is False and conn.health().last_error == "try later"
    conn.fail_next("raise", "socket closed")
    with pytest.raises(ConnectorError, match="m: socket closed"):
        conn.send(OutboundMessage("msg-3", None, "email", "a@x", "", "", "key-3"))
    assert conn.send(OutboundMessage("msg-4", None, "email", "a@x", "", "", "key-4")).status == "sent"
    assert conn.health().ok is True
    conn.push(_event())
    assert [e.external_id for e in conn.receive()] == ["<m1@example.org>"]


def test_channel_bindings_choose_the_connector(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from connectors import registry as registry_mod
    from connectors.registry import load_bindings

    reg = ConnectorRegistry()
    reg.load_entry_points()
    reg.register("mem-email", MemoryConnector, channels=("email",))
    reg.bind_channel("email", "memory", {"name": "outbox-fake"})
    conn = reg.for_channel("email")
    assert isinstance(conn, MemoryConnector) and conn.name == "outbox-fake"
    reg.bind_channel("email", "mem-email")  # rebinding drops the cached instance
    assert reg.for_channel("email") is not conn
    path = tmp_path / "connectors.yaml"
    path.write_text("channels:\n  sms: {connector: sms_example, config: {gateway_url: 'http://gw/'}}\n"
                    "  chat: memory\n")
    assert load_bindings(path, reg) == {"sms": "sms_example", "chat": "memory"}
    assert reg.for_channel("sms").gateway_url == "http://gw/"  # type: ignore[attr-defined]
    assert isinstance(reg.for_channel("chat"), MemoryConnector)
    path.write_text("channels:\n  fax: {config: {}}\n")
    with pytest.raises(PluginError, match="'fax'.*connector"):
        load_bindings(path, reg)
    with pytest.raises(PluginError, match="cannot read"):
        load_bindings(tmp_path / "missing.yaml", reg)
    # the default registry reads $CAREFLOW_CONNECTORS in load_connectors()
    path.write_text('{"channels": {"letter": "memory"}}')
    monkeypatch.setenv("CAREFLOW_CONNECTORS", str(path))
    registry_mod.load_connectors()
    try:
        assert registry_mod.default_registry.bindings()["letter"] == "memory"
    finally:
        registry_mod.default_registry._bindings.pop("letter", None)


def test_bindings_can_be_scoped_and_removed() -> None:
    reg = ConnectorRegistry()
    reg.register("mem-a", MemoryConnector, channels=("chat",))
    reg.register("mem-b", MemoryConnector, channels=("chat",))
    reg.bind_channel("chat", "mem-a", {"name": "a"})
    with reg.bound({"chat": ("mem-b", {"name": "b"}), "fax": "mem-b"}):
        assert reg.for_channel("chat").name == "b"
        assert reg.bindings() == {"chat": "mem-b", "fax": "mem-b"}
    assert reg.bindings() == {"chat": "mem-a"}
    assert reg.for_channel("chat").name == "a"
    reg.unbind_channel("chat")
    with pytest.raises(PluginError, match="several connectors serve channel 'chat'"):
        reg.for_channel("chat")
