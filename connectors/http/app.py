"""careflow's HTTP API: signed webhook intake for the push channels, customer status links,
health, and the OpenAPI description at ``/openapi.json``.

Intake endpoints (``POST /v1/intake/{webform,chat,cti,social,sms}``) take JSON or form
bodies. A request is processed in two steps so that nothing acknowledged is lost and the
sender gets its answer fast (Slack retries after 3 s):

1. in the request: size cap, signature check (engine-independent, connectors.http.signing),
   replay check on ``Careflow-Delivery``, conversion to a ChannelEvent, and one transaction
   that writes the inbox row (deduplicated on channel + external id) and the delivery id;
   then ``202`` with the delivery id. A body that cannot be converted goes to the
   dead-letter store in the same transaction and gets ``422`` with the dead letter's id.
2. after the response (BackgroundTasks): engine.intake.process_inbox -- customer,
   correlation, case start or signal, timeline. Rows left ``received`` by a crash are picked
   up by a sweeper thread (at start and every ``sweep_interval`` seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import BackgroundTasks, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CONTRACT_VERSION, Connector, EventFormatError
from connectors.http.adapters import MODELS, parse_endpoint
from connectors.http.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    verify_signature,
    verify_status,
)
from engine.clock import Clock, SystemClock

__all__ = ["ApiSettings", "create_app", "status_link"]

log = logging.getLogger("careflow.api")

MAX_BODY = 1 << 20  # 1 MiB


@dataclass
class ApiSettings:
    """Everything the API needs; ``careflow api`` builds it from the environment."""

    session_factory: sessionmaker[Session]
    secrets: Sequence[str]
    library: Any = None  # engine.sop.library.Library (routing + SOPs); None: record only
    clock: Clock = field(default_factory=SystemClock)
    status_secret: str | None = None
    tolerance: int = 300
    max_body: int = MAX_BODY
    connectors: Sequence[Connector] = ()
    sweep_interval: float | None = 30.0  # None: no sweeper thread (tests call sweep())
    delivery_retention_days: int = 7  # replay protection lasts longer than any sender retries
    process: bool = True  # False: accept only (benchmarks of the acknowledgement path)


class Accepted(BaseModel):
    status: str = Field(description="accepted | duplicate")
    delivery_id: str = Field(description="The delivery id (Careflow-Delivery, or one we made).")
    inbox_id: int | None = Field(None, description="The inbox row holding the event.")


class Problem(BaseModel):
    detail: str = Field(description="What is wrong.")
    dead_letter_id: int | None = Field(None, description="Where the unprocessable body was kept.")


class TimelineItem(BaseModel):
    at: datetime
    channel: str
    direction: str
    kind: str
    subject: str
    excerpt: str


class CaseStatusView(BaseModel):
    case_id: str
    status: str = Field(description="open | resolved | closed | cancelled")
    level: str | None = Field(None, description="The competence level holding the case.")
    priority: str
    opened_at: datetime
    updated_at: datetime
    timeline: list[TimelineItem] = Field(
        description="Public interactions of this case, oldest first.")


class Health(BaseModel):
    status: str = Field(description="ok | degraded")
    contract_version: str
    database: bool
    pending_inbox: int | None = Field(
        None, description="Inbox rows accepted but not processed yet.")
    connectors: list[dict[str, Any]]


#: endpoints whose senders post HTML-form bodies (Zammad CTI, Twilio-style SMS gateways)
FORM_ENDPOINTS = frozenset({"cti", "sms"})


def _without_null(schema: Any) -> Any:
    """A form can't say null: ``anyOf [X, null]`` -> X (an absent field is the form's None)."""
    if isinstance(schema, dict):
        if "anyOf" in schema:
            options = [o for o in schema["anyOf"] if o.get("type") != "null"]
            if len(options) == 1:
                rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
                return _without_null({**options[0], **rest})
        return {k: _without_null(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_without_null(v) for v in schema]
    return schema


def _request_body_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    content = {"application/json": {"schema": schema}}
    if name in FORM_ENDPOINTS:
        form = _without_null(schema)
        form["properties"] = {k: v for k, v in form.get("properties", {}).items()
                              if v.get("type") in ("string", "integer", "boolean")}
        content["application/x-www-form-urlencoded"] = {"schema": form}
    return {"required": True, "content": content}


def _decode(raw: bytes, content_type: str) -> Any:
    """JSON, or a form (empty fields count as absent)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        return {k: v for k, v in pairs if v != ""}
    return json.loads(raw)


class _Intake:
    """The request-side half of intake for one app."""

    def __init__(self, settings: ApiSettings) -> None:
        self.s = settings

    def now(self) -> datetime:
        return self.s.clock.now()

    def process(self, inbox_id: int) -> None:
        from engine.intake.pipeline import process_inbox

        try:
            with self.s.session_factory() as session, session.begin():
                process_inbox(session, inbox_id, library=self.s.library, clock=self.s.clock)
        except Exception:  # noqa: BLE001 -- the sweeper retries rows left 'received'
            log.exception("processing inbox row %s failed; the sweeper will retry", inbox_id)

    def sweep(self) -> int:
        from engine.intake.pipeline import process_pending

        with self.s.session_factory() as session, session.begin():
            return len(process_pending(session, library=self.s.library, clock=self.s.clock))

    def prune(self) -> int:
        """Forget delivery ids older than the retention (the inbox keeps its own rows)."""
        from datetime import timedelta

        from sqlalchemy import delete

        from engine.store.models_channels import WebhookDeliveryRow

        cutoff = self.now() - timedelta(days=self.s.delivery_retention_days)
        with self.s.session_factory() as session, session.begin():
            result = session.execute(delete(WebhookDeliveryRow)
                                     .where(WebhookDeliveryRow.received_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    def receive(self, endpoint: str, raw: bytes,
                headers: Any) -> tuple[int, dict[str, Any], int | None]:
        """Steps 1: returns (http status, body, inbox id to process or None)."""
        from engine.intake.inbox import accept, dead_letter
        from engine.store.models_channels import WebhookDeliveryRow

        verify_signature(headers.get(SIGNATURE_HEADER), raw, self.s.secrets, now=self.now(),
                         tolerance=self.s.tolerance)
        # without a delivery id, the signature itself names the request: a byte-identical
        # replay (same t, same body) carries the same signature and is caught as well
        delivery = (headers.get(DELIVERY_HEADER) or "").strip()[:200] or "sig-" + hashlib.sha256(
            str(headers.get(SIGNATURE_HEADER)).encode()).hexdigest()[:40]
        now = self.now()
        try:
            with self.s.session_factory() as session, session.begin():
                seen = session.execute(
                    select(WebhookDeliveryRow.delivery_id)
                    .where(WebhookDeliveryRow.delivery_id == delivery)).first()
                if seen is not None:
                    return 200, {"status": "duplicate", "delivery_id": delivery}, None
                row = {"delivery_id": delivery, "endpoint": endpoint, "received_at": now}
                body: Any = None
                try:
                    body = _decode(raw, headers.get("content-type", "application/json"))
                    if not isinstance(body, dict):
                        raise EventFormatError("the body must be a JSON object",
                                               connector=f"http:{endpoint}")
                    event = parse_endpoint(endpoint, body, now, delivery)
                except (EventFormatError, ValueError, RecursionError) as exc:
                    reason = (str(exc) if isinstance(exc, EventFormatError)
                              else f"not decodable: {exc}")
                    payload = {"endpoint": endpoint,
                               "body": {**body, "_delivery_id": delivery}
                               if isinstance(body, dict) else None,
                               "raw": raw.decode("utf-8", "replace")[:100_000]}
                    dl = dead_letter(session, f"http:{endpoint}", reason, payload, now=now)
                    session.execute(insert(WebhookDeliveryRow).values(
                        **row, dead_letter_id=dl, status="dead_letter"))
                    return 422, {"detail": reason, "dead_letter_id": dl}, None
                inbox_id, duplicate = accept(session, event, now=now)
                # a concurrent request with the same delivery id makes this INSERT (or the
                # commit) fail: the whole transaction, inbox row included, is rolled back
                session.execute(insert(WebhookDeliveryRow).values(
                    **row, inbox_id=inbox_id, status="duplicate" if duplicate else "accepted"))
        except IntegrityError:
            # the same delivery id arrived concurrently and the other request won
            return 200, {"status": "duplicate", "delivery_id": delivery}, None
        if duplicate:
            return 200, {"status": "duplicate", "delivery_id": delivery, "inbox_id": inbox_id}, None
        return 202, {"status": "accepted", "delivery_id": delivery, "inbox_id": inbox_id}, inbox_id


def _status_view(session: Session, case_id: str) -> CaseStatusView | None:
    from engine.store.models import CaseRow
    from engine.store.models_crm import InteractionRow

    case = session.get(CaseRow, case_id)
    if case is None:
        return None
    rows = session.scalars(select(InteractionRow).where(
        InteractionRow.case_id == case_id, InteractionRow.public.is_(True))
        .order_by(InteractionRow.occurred_at, InteractionRow.id))
    return CaseStatusView(
        case_id=case.id, status=case.status, level=case.level, priority=case.priority,
        opened_at=case.created_at, updated_at=case.updated_at,
        timeline=[TimelineItem(at=r.occurred_at, channel=r.channel, direction=r.direction,
                               kind=r.kind, subject=r.subject, excerpt=r.excerpt) for r in rows])


def _sweeper(intake: _Intake, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            intake.sweep()
            intake.prune()
        except Exception:  # noqa: BLE001 -- keep sweeping
            log.exception("inbox sweep failed")


def _lifespan(intake: _Intake) -> Callable[[FastAPI], Any]:
    """Startup: process rows a crash left 'received', start the sweeper; shutdown: stop it."""
    settings = intake.s

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if settings.process:
            try:
                intake.sweep()
            except Exception:  # noqa: BLE001
                log.exception("initial inbox sweep failed")
            if settings.sweep_interval:
                thread = threading.Thread(target=_sweeper, name="careflow-inbox-sweeper",
                                          args=(intake, settings.sweep_interval, stop),
                                          daemon=True)
                thread.start()
        yield
        stop.set()
        if thread is not None:
            thread.join(timeout=5)

    return lifespan


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"body larger than {limit} bytes"}, 413)


def _intake_handler(intake: _Intake, endpoint: str) -> Callable[..., Any]:
    """The request handler of ``POST /v1/intake/<endpoint>``."""
    settings = intake.s

    async def handler(request: Request, background: BackgroundTasks) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body):
            return _too_large(settings.max_body)
        raw = await request.body()
        if len(raw) > settings.max_body:
            return _too_large(settings.max_body)
        try:
            status, body, inbox_id = await run_in_threadpool(
                intake.receive, endpoint, raw, request.headers)
        except SignatureError as exc:
            return JSONResponse({"detail": exc.reason}, 401)
        except OperationalError:
            log.exception("intake store unavailable")
            return JSONResponse({"detail": "store unavailable, retry later"}, 503,
                                headers={"Retry-After": "5"})
        if inbox_id is not None and settings.process:
            background.add_task(intake.process, inbox_id)
        return JSONResponse(body, status)

    handler.__name__ = f"intake_{endpoint}"
    return handler


INTAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "Accepted; processed asynchronously."},
    200: {"model": Accepted,
          "description": "A replay or duplicate: acknowledged, not processed again."},
    401: {"model": Problem,
          "description": "Signature missing, malformed, wrong or outside the time window."},
    413: {"model": Problem, "description": "Body too large."},
    422: {"model": Problem,
          "description": "Authentic but not convertible: kept as a dead letter."},
    503: {"model": Problem, "description": "The case store is unavailable; retry later."},
}
INTAKE_HEADERS = [
    {"name": SIGNATURE_HEADER, "in": "header", "required": True,
     "schema": {"type": "string"}, "description": "t=<unix>,v1=<hex>[,v1=<hex>]"},
    {"name": DELIVERY_HEADER, "in": "header", "required": False,
     "schema": {"type": "string", "maxLength": 200},
     "description": "The sender's delivery id (replay protection)."},
]


def _add_status_route(app: FastAPI, settings: ApiSettings) -> None:
    @app.get("/v1/cases/{case_id}/status", response_model=CaseStatusView, tags=["customer"],
             responses={403: {"model": Problem, "description": "Bad or expired link."},
                        404: {"model": Problem, "description": "No such case."}})
    def case_status(
        case_id: str,
        exp: int = Query(..., ge=0, le=10**11, description="Expiry, unix seconds."),
        sig: str = Query(..., max_length=128, description="HMAC of case id and expiry."),
    ) -> Any:
        """The status, level and public timeline of a case, for its customer (signed link)."""
        secret = settings.status_secret
        if not secret or not verify_status(secret, case_id, exp, sig, now=settings.clock.now()):
            return JSONResponse({"detail": "invalid or expired link"}, 403)
        with settings.session_factory() as session:
            view = _status_view(session, case_id)
        if view is None:
            return JSONResponse({"detail": "no such case"}, 404)
        return view


def _connector_reports(settings: ApiSettings) -> list[dict[str, Any]]:
    from connectors.registry import default_registry

    reports = []
    for conn in [*settings.connectors, *default_registry.instances()]:
        try:
            reports.append(conn.health().as_dict())
        except Exception as exc:  # noqa: BLE001 -- a broken connector is reported, not fatal
            reports.append({"name": getattr(conn, "name", "?"), "ok": False,
                            "last_error": f"health() raised {type(exc).__name__}: {exc}"})
    return reports


def _add_health_route(app: FastAPI, settings: ApiSettings) -> None:
    @app.get("/v1/health", response_model=Health, tags=["operations"])
    def health() -> Health:
        """Database reachability, inbox backlog and every connector's health."""
        from engine.store.models import InboxRow

        database, pending = True, None
        try:
            with settings.session_factory() as session:
                session.execute(text("SELECT 1"))
                pending = int(session.scalar(select(func.count()).select_from(InboxRow)
                                             .where(InboxRow.status == "received")) or 0)
        except OperationalError:
            database = False
        reports = _connector_reports(settings)
        ok = database and all(r.get("ok") for r in reports)
        return Health(status="ok" if ok else "degraded", contract_version=CONTRACT_VERSION,
                      database=database, pending_inbox=pending, connectors=reports)


def create_app(settings: ApiSettings) -> FastAPI:
    """The FastAPI application for ``settings``."""
    intake = _Intake(settings)
    app = FastAPI(
        title="careflow API",
        version=CONTRACT_VERSION,
        description="Signed webhook intake for the push channels (web form, chat, phone/CTI, "
                    "social, SMS), the customer's case status link, and health. Every intake "
                    "request carries `Careflow-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256 of "
                    "`t + '.' + raw body`) and should carry a `Careflow-Delivery` id.",
        lifespan=_lifespan(intake),
    )
    app.state.intake = intake
    for name, model in MODELS.items():
        app.add_api_route(
            f"/v1/intake/{name}", _intake_handler(intake, name), methods=["POST"],
            status_code=202, summary=f"Receive a {name} event",
            description=(model.__doc__ or "").strip(), responses=INTAKE_RESPONSES,
            openapi_extra={"requestBody": _request_body_schema(name, model),
                           "parameters": INTAKE_HEADERS},
            tags=["intake"],
        )
    _add_status_route(app, settings)
    _add_health_route(app, settings)
    return app


def status_link(base_url: str, case_id: str, secret: str, expires: datetime) -> str:
    """A signed customer link to a case's status page."""
    from connectors.http.signing import sign_status

    exp = int(expires.astimezone(UTC).timestamp())
    sig = sign_status(secret, case_id, exp)
    return f"{base_url.rstrip('/')}/v1/cases/{case_id}/status?exp={exp}&sig={sig}"
