"""The worked example connector (connectors/example_sms) against a real HTTP gateway on
127.0.0.1: registration through the entry point, send outcomes, health, inbound parsing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.base import ChannelEvent, EventFormatError, OutboundMessage
from connectors.example_sms import ExampleSmsConnector, parse_inbound
from connectors.registry import ConnectorRegistry

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Gateway:
    """A tiny SMS gateway: answers with the next scripted status, records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.requests.append({"headers": dict(self.headers), "json": json.loads(body)})
                status = gateway.script.pop(0) if gateway.script else 201
                reply = json.dumps({"id": f"gw-{len(gateway.requests)}"} if status < 400
                                   else {"error": "nope"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.close()


def _msg(n: int = 1) -> OutboundMessage:
    return OutboundMessage(f"msg-{n}", "C1", "sms", "+31612345678", "", "Your case is solved",
                           f"C1:msg-{n}", automatic=True)


def test_registered_through_the_entry_point_and_found_by_channel(gateway: Gateway) -> None:
    reg = ConnectorRegistry()
    reg.load_entry_points()
    conn = reg.for_channel("sms", {"gateway_url": gateway.url, "sender": "+3197010", "token": "t0k"})
    assert isinstance(conn, ExampleSmsConnector)
    delivery = conn.send(_msg())
    assert (delivery.status, delivery.external_id) == ("sent", "gw-1")
    [req] = gateway.requests
    assert req["json"] == {"from": "+3197010", "to": "+31612345678", "body": "Your case is solved",
                           "reference": "msg-1"}
    assert req["headers"]["Idempotency-Key"] == "C1:msg-1"
    assert req["headers"]["Authorization"] == "Bearer t0k"
    health = conn.health()
    assert health.ok and health.errors == 0 and health.last_success is not None


def test_gateway_refusals_map_to_failed_or_deferred(gateway: Gateway) -> None:
    conn = ExampleSmsConnector({"gateway_url": gateway.url})
    gateway.script = [503, 400]
    deferred = conn.send(_msg(1))
    assert (deferred.status, deferred.detail) == ("deferred", "gateway answered 503")
    failed = conn.send(_msg(2))
    assert failed.status == "failed" and "refused (400)" in failed.detail
    health = conn.health()
    assert (health.ok, health.errors) == (False, 2)
    assert conn.send(_msg(3)).status == "sent"
    assert conn.health().ok


def test_unreachable_gateway_is_deferred_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = ExampleSmsConnector({"gateway_url": f"http://127.0.0.1:{port}/", "timeout": 1})
    d = conn.send(_msg())
    assert d.status == "deferred" and "unreachable" in d.detail
    unconfigured = ExampleSmsConnector({})
    assert unconfigured.send(_msg()).status == "failed"
    assert unconfigured.health().last_error == "no gateway_url configured"


def test_parse_inbound_makes_a_valid_channel_event() -> None:
    event = parse_inbound({"MessageSid": "SM9", "From": "+31612345678", "To": "+3197010",
                           "Body": "Thanks!"}, received_at=AT)
    assert isinstance(event, ChannelEvent)
    assert (event.channel, event.external_id, event.customer["phone"]) == ("sms", "SM9",
                                                                          "+31612345678")
    assert ChannelEvent.from_json(event.to_json()) == event
    with pytest.raises(EventFormatError, match=r"\$\.From"):
        parse_inbound({"MessageSid": "SM9", "Body": "x"}, received_at=AT)
    with pytest.raises(EventFormatError, match="longer than 1600"):
        parse_inbound({"MessageSid": "S", "From": "1", "Body": "x" * 1601}, received_at=AT)
