"""The e-mail connector's configuration: one frozen value, built from the registry's mapping.

Keys (all optional except the servers you use) are documented in
docs/channels-email-letter.md; ``EmailConfig.from_mapping`` names an unknown or mistyped
key in its error instead of ignoring it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from connectors.email.limits import MailLimits
from connectors.email.threadrefs import DEFAULT_RULES, RULES
from engine.errors import ConnectorError

__all__ = ["EmailConfig", "config_from_env"]

#: environment variable naming a JSON file with the config keys (used when the registry
#: builds the connector with an empty mapping, as the outbox dispatcher does)
CONFIG_ENV = "CAREFLOW_EMAIL_CONFIG"


def config_from_env(config: Mapping[str, Any] | None, env: str) -> dict[str, Any]:
    """``config`` if it has keys, else the JSON object in the file ``$env`` names (or {}).

    Raises:
        ConnectorError: the file cannot be read or is not a JSON object.
    """
    if config:
        return dict(config)
    path = os.environ.get(env)
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConnectorError(
            env, f"cannot read connector config {path}: {exc}", retryable=False
        ) from exc
    if not isinstance(data, dict):
        raise ConnectorError(env, f"{path}: a JSON object expected", retryable=False)
    return data


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """Where to fetch, where to send, how to thread and what to refuse."""

    name: str = "email"
    # IMAP (inbound)
    imap_host: str | None = None
    imap_port: int = 143
    imap_ssl: bool = False
    imap_user: str = ""
    imap_password: str = ""
    mailboxes: tuple[str, ...] = ("INBOX",)
    imap_timeout: float = 30.0
    fetch_batch: int = 50
    # SMTP (outbound)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_ssl: bool = False
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 30.0
    from_address: str = "care@careflow.invalid"
    from_name: str = "Customer Care"
    #: Message-ID domain; default: the domain of ``from_address``
    domain: str = ""
    #: value of our loop header; mail coming back with it is our own
    loop_id: str = "careflow"
    thread_rules: tuple[str, ...] = DEFAULT_RULES
    limits: MailLimits = field(default_factory=MailLimits)
    #: where the IMAP cursors (UIDVALIDITY + last UID) and rate counts are kept
    state_dir: str | None = None
    #: where attachment bytes are stored under their SHA-256 (None: metadata only)
    attachment_dir: str | None = None
    auto_reply_limit: int = 5
    auto_reply_window_minutes: int = 60
    #: where automatic replies are counted: "memory" (this process) or "outbox" (the case
    #: database named by CAREFLOW_DATABASE_URL, shared by every worker)
    auto_reply_store: str = "memory"

    def __post_init__(self) -> None:
        unknown = [r for r in self.thread_rules if r not in RULES]
        if unknown:
            raise ConnectorError(
                self.name,
                f"unknown thread_rules {unknown} (known: {', '.join(RULES)})",
                retryable=False,
            )
        if self.auto_reply_store not in {"memory", "outbox"}:
            raise ConnectorError(
                self.name,
                f"auto_reply_store must be memory or outbox, not {self.auto_reply_store!r}",
                retryable=False,
            )
        if not self.domain:
            object.__setattr__(
                self, "domain", self.from_address.rpartition("@")[2] or "careflow.invalid"
            )

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> EmailConfig:
        """Build from a plain mapping (YAML / entry-point config); ``limits`` may be a mapping.

        Raises:
            ConnectorError: an unknown key, naming it and the known ones.
        """
        known = {f.name for f in fields(cls)}
        data = dict(config)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConnectorError(
                str(data.get("name", "email")),
                f"unknown config key(s) {unknown}; known: {', '.join(sorted(known))}",
                retryable=False,
            )
        if isinstance(data.get("limits"), Mapping):
            data["limits"] = replace(MailLimits(), **dict(data["limits"]))
        for key in ("mailboxes", "thread_rules"):
            if key in data and isinstance(data[key], str):
                data[key] = (data[key],)
            elif key in data:
                data[key] = tuple(data[key])
        return cls(**data)
