"""IMAP polling with imaplib: new messages since the stored cursor, sizes checked first.

Per mailbox the cursor is (UIDVALIDITY, last UID handed on). A poll selects the mailbox
read-only, searches ``UID last+1:*``, fetches ``RFC822.SIZE`` for all of them, and
downloads only messages within ``limits.max_bytes`` (an oversize message is reported with
a capped header summary and never downloaded). Bodies come in batches of at most
``fetch_batch`` messages and 8 MiB. The caller hands each ``FetchedMail`` on and then
calls ``advance``; a crash in between re-delivers it on the next poll, which the inbox's
dedup makes harmless. A changed UIDVALIDITY restarts the mailbox from UID 1 (safe full
resync, deduplicated the same way).
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from connectors.email.config import EmailConfig
from connectors.email.headers import decode_text
from connectors.email.state import Cursor, CursorStore
from engine.errors import ConnectorError

__all__ = ["FetchedMail", "ImapSource"]

_BATCH_BYTES = 8 * 1024 * 1024
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One message found by a poll; ``raw`` is None when it was too big to download."""

    mailbox: str
    uidvalidity: int
    uid: int
    size: int
    raw: bytes | None
    summary: tuple[tuple[str, str], ...] = ()


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(typ: str, data: object, what: str, name: str) -> None:
    if typ != "OK":
        raise ConnectorError(name, f"IMAP {what} failed: {data!r}"[:300], retryable=True)


class ImapSource:
    """Fetches new mail from the configured mailboxes and remembers how far it got."""

    def __init__(self, config: EmailConfig, cursors: CursorStore) -> None:
        if not config.imap_host:
            raise ConnectorError(config.name, "no imap_host configured", retryable=False)
        self.config = config
        self.cursors = cursors

    def _connect(self) -> imaplib.IMAP4:
        cfg = self.config
        try:
            cls = imaplib.IMAP4_SSL if cfg.imap_ssl else imaplib.IMAP4
            client = cls(cfg.imap_host or "", cfg.imap_port, timeout=cfg.imap_timeout)
            client.login(cfg.imap_user, cfg.imap_password)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ConnectorError(
                cfg.name, f"IMAP {cfg.imap_host}:{cfg.imap_port}: {exc}", retryable=True
            ) from exc
        return client

    def iter_new(self) -> Iterator[FetchedMail]:
        """Yield new messages of every mailbox in UID order; the caller calls ``advance``.

        Raises:
            ConnectorError: the server cannot be reached or refused a command (retryable).
        """
        client = self._connect()
        try:
            for mailbox in self.config.mailboxes:
                yield from self._mailbox(client, mailbox)
        except (TimeoutError, OSError, imaplib.IMAP4.error) as exc:
            raise ConnectorError(self.config.name, f"IMAP poll: {exc}", retryable=True) from exc
        finally:
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                pass

    def advance(self, item: FetchedMail) -> None:
        """Record (in memory; ``cursors.flush()`` persists) that ``item`` has been handed on."""
        current = self.cursors.get(item.mailbox)
        if current and current.uidvalidity == item.uidvalidity and current.last_uid >= item.uid:
            return
        self.cursors.set(item.mailbox, Cursor(item.uidvalidity, item.uid), flush=False)

    def _mailbox(self, client: imaplib.IMAP4, mailbox: str) -> Iterator[FetchedMail]:
        name = self.config.name
        typ, data = client.select(_quote(mailbox), readonly=True)
        _check(typ, data, f"SELECT {mailbox}", name)
        _, values = client.response("UIDVALIDITY")
        uidvalidity = int(values[0]) if values and values[0] else 0
        cursor = self.cursors.get(mailbox)
        last = cursor.last_uid if cursor and cursor.uidvalidity == uidvalidity else 0
        if cursor and cursor.uidvalidity != uidvalidity:
            self.cursors.set(
                mailbox, Cursor(uidvalidity, 0), flush=False
            )  # full resync, dedup by intake
        typ, data = client.uid("SEARCH", f"UID {last + 1}:*")
        _check(typ, data, "UID SEARCH", name)
        uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > last)
        if not uids:
            return
        sizes = self._sizes(client, uids)
        batch: list[int] = []
        batch_bytes = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if size > self.config.limits.max_bytes:
                yield from self._download(client, mailbox, uidvalidity, batch, sizes)
                batch, batch_bytes = [], 0
                yield FetchedMail(mailbox, uidvalidity, uid, size, None, self._summary(client, uid))
                continue
            if batch and (
                len(batch) >= self.config.fetch_batch or batch_bytes + size > _BATCH_BYTES
            ):
                yield from self._download(client, mailbox, uidvalidity, batch, sizes)
                batch, batch_bytes = [], 0
            batch.append(uid)
            batch_bytes += size
        yield from self._download(client, mailbox, uidvalidity, batch, sizes)

    def _sizes(self, client: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), 500):
            chunk = ",".join(str(u) for u in uids[start : start + 500])
            typ, data = client.uid("FETCH", chunk, "(RFC822.SIZE)")
            _check(typ, data, "UID FETCH RFC822.SIZE", self.config.name)
            for line in data:
                text = line[0] if isinstance(line, tuple) else line
                if not isinstance(text, bytes):
                    continue
                uid, size = _UID.search(text), _SIZE.search(text)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    def _download(
        self,
        client: imaplib.IMAP4,
        mailbox: str,
        uidvalidity: int,
        batch: list[int],
        sizes: dict[int, int],
    ) -> Iterator[FetchedMail]:
        if not batch:
            return
        typ, data = client.uid("FETCH", ",".join(map(str, batch)), "(BODY.PEEK[])")
        _check(typ, data, "UID FETCH BODY", self.config.name)
        bodies: dict[int, bytes] = {}
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                found = _UID.search(item[0])
                if found:
                    bodies[int(found.group(1))] = item[1]
        for uid in batch:
            if uid in bodies:  # a message expunged meanwhile simply is not there
                yield FetchedMail(
                    mailbox, uidvalidity, uid, sizes.get(uid, len(bodies[uid])), bodies[uid]
                )

    def _summary(self, client: imaplib.IMAP4, uid: int) -> tuple[tuple[str, str], ...]:
        """Message-ID, From, Subject, Date of an oversize message (first 4 KiB of them only)."""
        typ, data = client.uid(
            "FETCH", str(uid), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT DATE)]<0.4096>)"
        )
        if typ != "OK":
            return ()
        raw = next((item[1] for item in data if isinstance(item, tuple)), b"")
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:4096])
        return tuple((k.lower(), decode_text(str(v), max_chars=300)) for k, v in headers.items())
