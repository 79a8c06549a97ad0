"""Throwaway local mail servers on 127.0.0.1 for tests, benchmarks and the demo.

``LocalDovecot`` runs the Debian ``dovecot`` binary (package ``dovecot-imapd``) in the
foreground with a generated config in a temporary directory: IMAP only, plaintext login,
no TLS, a passwd-file with one user, Maildir storage. ``LocalSmtp`` is an aiosmtpd
``Controller`` (test extra) that records every delivered message and can be told to
refuse the next ones. Neither is used by the connector itself.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConnectorError

__all__ = ["LocalDovecot", "LocalSmtp", "ReceivedMail", "free_port"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
default_login_user = {login_user}
default_internal_user = {internal_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
  default_fields = home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class LocalDovecot:
    """A private Dovecot IMAP server; use as a context manager.

    >>> with LocalDovecot() as server:                      # doctest: +SKIP
    ...     server.append(b"From: a@example.com\\r\\n\\r\\nhello")
    """

    def __init__(self, user: str = "care", password: str = "secret") -> None:
        self.user = user
        self.password = password
        self.port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalDovecot:
        binary = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
        )
        if binary is None:
            raise ConnectorError(
                "dovecot",
                "the dovecot binary is missing (apt-get install dovecot-imapd)",
                retryable=False,
            )
        self.root = Path(tempfile.mkdtemp(prefix="careflow-dovecot-"))
        self.root.chmod(0o755)
        if os.geteuid() == 0:  # dovecot refuses mail access as root
            entry = pwd.getpwnam("nobody")
            uid, gid = entry.pw_uid, entry.pw_gid
            names = {"login_user": "dovenull", "internal_user": "dovecot"}
        else:
            uid, gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(uid).pw_name
            names = {"login_user": me, "internal_user": me}
        for sub in ("mail", "home"):
            (self.root / sub).mkdir()
            os.chown(self.root / sub, uid, gid) if os.geteuid() == 0 else None
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        self.port = free_port()
        conf = self.root / "dovecot.conf"
        conf.write_text(_CONF.format(root=self.root, uid=uid, gid=gid, port=self.port, **names))
        self._proc = subprocess.Popen(
            [binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise ConnectorError(
                    "dovecot", f"dovecot exited: {err.strip()[:500]}", retryable=False
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise ConnectorError(
            "dovecot", f"no IMAP greeting on port {self.port} within 10 s", retryable=False
        )

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalDovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self, **extra: Any) -> dict[str, Any]:
        """Connector config keys pointing at this server."""
        return {
            "imap_host": "127.0.0.1",
            "imap_port": self.port,
            "imap_user": self.user,
            "imap_password": self.password,
            **extra,
        }

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login(self.user, self.password)
        return client

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        """Deliver raw messages into ``mailbox`` by IMAP APPEND (creating the mailbox)."""
        client = self.client()
        try:
            if mailbox != "INBOX":
                client.create(f'"{mailbox}"')
            for raw in messages:
                typ, data = client.append(f'"{mailbox}"', None, None, raw)
                if typ != "OK":
                    raise ConnectorError("dovecot", f"APPEND failed: {data!r}")
        finally:
            client.logout()

    def recreate_mailbox(self, mailbox: str) -> None:
        """Delete ``mailbox`` and create it again with the same messages: a new UIDVALIDITY,
        as after a server migration (the resync case). Not for INBOX."""
        client = self.client()
        try:
            client.select(f'"{mailbox}"', readonly=True)
            typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
            raws = [item[1] for item in data if isinstance(item, tuple)]
            client.close()
            client.delete(f'"{mailbox}"')
        finally:
            client.logout()
        time.sleep(1.1)  # Dovecot's UIDVALIDITY is a timestamp in seconds
        self.append(*raws, mailbox=mailbox)


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message the local SMTP server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class LocalSmtp:
    """An aiosmtpd server on 127.0.0.1 that records messages; ``refuse_next(code, text)``
    makes the next DATA answer with that reply (e.g. ``550`` or ``451``)."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = dict(users or {})
        self.messages: list[ReceivedMail] = []
        self._refusals: list[str] = []
        self._lock = threading.Lock()
        self._controller: Any = None
        self.port = 0

    def refuse_next(self, code: int, text: str = "refused") -> None:
        with self._lock:
            self._refusals.append(f"{code} {text}")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd hook name
        with self._lock:
            if self._refusals:
                return self._refusals.pop(0)
            self.messages.append(
                ReceivedMail(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                )
            )
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> LocalSmtp:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if self.users:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> LocalSmtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, **extra}
