"""careflow's e-mail channel: IMAP polling in, SMTP out, capped parsing, threading, loop
protection and bounces (docs/channels-email-letter.md).

Registered as the ``email`` connector (entry point group ``careflow.connectors``).
"""

from __future__ import annotations

from connectors.email.config import EmailConfig
from connectors.email.connector import EmailConnector, PollReport, Rejection
from connectors.email.limits import MailLimits, MailRejected
from connectors.email.parse import ParsedMail, parse_mail

__all__ = [
    "EmailConfig",
    "EmailConnector",
    "MailLimits",
    "MailRejected",
    "ParsedMail",
    "PollReport",
    "Rejection",
    "parse_mail",
]
