"""SMTP submission with smtplib, mapping the server's answer to a ``Delivery`` status.

5xx replies are permanent (``failed``: the outbox must not retry), 4xx and connection
problems are temporary (``deferred``: retry later). A login failure is our own
misconfiguration and raises ``ConnectorError`` so the dispatcher alarms instead of
marking every message failed.
"""

from __future__ import annotations

import smtplib
import ssl

from connectors.base import Delivery, DeliveryStatus
from connectors.email.compose import ComposedMail
from connectors.email.config import EmailConfig
from engine.errors import ConnectorError

__all__ = ["send_smtp"]


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _status(code: int) -> str:
    return DeliveryStatus.FAILED if 500 <= code < 600 else DeliveryStatus.DEFERRED


def _open(cfg: EmailConfig) -> smtplib.SMTP:
    if cfg.smtp_ssl:
        return smtplib.SMTP_SSL(
            cfg.smtp_host or "",
            cfg.smtp_port,
            timeout=cfg.smtp_timeout,
            context=ssl.create_default_context(),
        )
    client = smtplib.SMTP(cfg.smtp_host or "", cfg.smtp_port, timeout=cfg.smtp_timeout)
    if cfg.smtp_starttls:
        client.starttls(context=ssl.create_default_context())
    return client


def send_smtp(mail: ComposedMail, cfg: EmailConfig, *, message_id: str) -> Delivery:
    """Submit ``mail``; ``message_id`` is the outbox's id, echoed in the ``Delivery``.

    Raises:
        ConnectorError: no SMTP host configured, or the login was refused.
    """
    if not cfg.smtp_host:
        raise ConnectorError(cfg.name, "no smtp_host configured", retryable=False)
    try:
        client = _open(cfg)
    except (OSError, smtplib.SMTPException) as exc:
        return Delivery(
            message_id,
            mail.message_id,
            DeliveryStatus.DEFERRED,
            f"cannot connect to {cfg.smtp_host}:{cfg.smtp_port}: {exc}",
        )
    try:
        if cfg.smtp_user:
            client.login(cfg.smtp_user, cfg.smtp_password)
        refused = client.sendmail(mail.sender, list(mail.recipients), mail.data)
    except smtplib.SMTPAuthenticationError as exc:
        raise ConnectorError(
            cfg.name, f"SMTP login refused: {exc.smtp_code} {exc.smtp_error!r}", retryable=True
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise ConnectorError(
            cfg.name, f"SMTP server {cfg.smtp_host} offers no AUTH: {exc}", retryable=False
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        status = (
            DeliveryStatus.DEFERRED if any(400 <= c < 500 for c in codes) else DeliveryStatus.FAILED
        )
        return Delivery(
            message_id, mail.message_id, status, f"recipients refused: {exc.recipients!r}"[:500]
        )
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
        return Delivery(
            message_id,
            mail.message_id,
            _status(exc.smtp_code),
            f"{exc.smtp_code} {_text(exc.smtp_error)}"[:500],
        )
    except (OSError, smtplib.SMTPException) as exc:
        return Delivery(message_id, mail.message_id, DeliveryStatus.DEFERRED, f"SMTP: {exc}"[:500])
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    if refused:
        return Delivery(
            message_id, mail.message_id, DeliveryStatus.FAILED, f"refused: {refused!r}"[:500]
        )
    return Delivery(message_id, mail.message_id, DeliveryStatus.SENT, "accepted")
