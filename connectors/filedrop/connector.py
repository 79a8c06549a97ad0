"""The letter/fax connector: scans dropped into a folder become channel events.

Per complete file (``scan.StabilityScanner``): the name and the file are checked
(``safety``), the type is taken from magic bytes (PDF, PNG, TIFF, JPEG, or a zip of
them, checked by ``zips``), the text comes from ``pdftotext`` or Tesseract
(``extract``), an optional sidecar ``<name>.json`` adds channel, sender and dates
(``sidecar``), and the original is copied into ``archive/<sha256><ext>``. The event's
``external_id`` is the file's SHA-256, so the same scan dropped twice is deduplicated by
the inbox. The file leaves the drop folder only after the caller has taken the event
(``receive()`` resumed), so a crash re-reads it instead of losing it. Refused files move
to ``quarantine/`` and are reported as ``Rejection`` (dead letters), never deleted.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors.base import (
    Attachment,
    ChannelEvent,
    ConnectorHealth,
    Delivery,
    DeliveryStatus,
    OutboundMessage,
)
from connectors.email.config import config_from_env
from connectors.email.connector import Rejection
from connectors.filedrop.config import CONFIG_ENV, FileDropConfig
from connectors.filedrop.extract import ExtractedText, extract_text, kind_of
from connectors.filedrop.safety import check_name, inside_root
from connectors.filedrop.scan import StabilityScanner
from connectors.filedrop.sidecar import Sidecar, SidecarError, parse_sidecar
from connectors.filedrop.zips import ZipRejected, extract_zip
from connectors.health import HealthTracker
from engine.clock import Clock, SystemClock
from engine.errors import ConnectorError

__all__ = ["FileDropConnector"]

_EXT = {"pdf": ".pdf", "png": ".png", "tiff": ".tif", "jpeg": ".jpg", "zip": ".zip"}
_CTYPE = {
    "pdf": "application/pdf",
    "png": "image/png",
    "tiff": "image/tiff",
    "jpeg": "image/jpeg",
    "zip": "application/zip",
}


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class FileDropConnector:
    """careflow's letter and fax channel; ``FileDropConnector(config_mapping)`` is the factory."""

    channels = ("letter", "fax")

    def __init__(
        self,
        config: Mapping[str, Any] | FileDropConfig | None = None,
        *,
        clock: Clock | None = None,
        on_reject: Callable[[Rejection], None] | None = None,
    ) -> None:
        cfg = (
            config
            if isinstance(config, FileDropConfig)
            else FileDropConfig.from_mapping(config_from_env(config, CONFIG_ENV))
        )
        self.config = cfg
        self.name: str = cfg.name
        self.clock = clock or SystemClock()
        self.on_reject = on_reject
        self.root = Path(cfg.root)
        self.archive = cfg.work / "archive"
        self.quarantine = cfg.work / "quarantine"
        self.scanner = StabilityScanner(self.root, cfg.stable_scans)
        self.rejected: deque[Rejection] = deque(maxlen=10_000)
        self._pending: list[tuple[str, Path]] = []
        self._lock = threading.Lock()
        self._health = HealthTracker(self.name, self.clock)

    # ---- inbound ---------------------------------------------------------------------

    def receive(self, *, autocommit: bool = True) -> Iterator[ChannelEvent]:
        """Events for every complete file; each file is removed only after its event was taken
        (the caller asked for the next one) -- or, without ``autocommit``, only by ``commit()``
        after the caller's own commit (``intake_bridge``); ``rollback()`` keeps them.

        Raises:
            ConnectorError: the drop folder is missing, or a text tool is not installed.
        """
        if not self.root.is_dir():
            self._failed(f"drop folder {self.root} does not exist")
            raise ConnectorError(
                self.name, f"drop folder {self.root} does not exist", retryable=True
            )
        for directory in (self.archive, self.quarantine):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            for candidate in self.scanner.scan():
                if not candidate.ready:
                    continue
                event = self._one(candidate.name, candidate.path)
                if event is not None:
                    yield event
                    if autocommit:
                        self._done(candidate.name, candidate.path)
                    else:
                        self._pending.append((candidate.name, candidate.path))
        except ConnectorError as exc:
            self._failed(str(exc))
            raise
        self._succeeded()

    def _one(self, name: str, path: Path) -> ChannelEvent | None:
        try:
            return self._event(name, path)
        except _Refused as exc:
            self._refuse(name, path, exc.reason, exc.detail)
        except ZipRejected as exc:
            self._refuse(name, path, exc.reason, exc.detail)
        return None

    def _event(self, name: str, path: Path) -> ChannelEvent:
        problem = check_name(name) or inside_root(self.root, path)
        if problem:
            raise _Refused("unsafe_file", problem)
        copy, sha, size, kind = self._snapshot(path)
        try:
            sidecar, sidecar_error = self._sidecar(name)
            notes: list[str] = []
            if sidecar_error:
                notes.append(f"sidecar ignored: {sidecar_error}")
            if kind == "zip":
                attachments, texts = self._zip(copy, notes)
            else:
                texts = [self._text(copy, kind, name, notes)]
            original = self._archive(copy, sha, kind, name)  # only once everything worked
        finally:
            copy.unlink(missing_ok=True)
        if kind != "zip":
            attachments = [original]
        else:
            notes.append(f"original archive kept as {original.path}")
        return self._build(name, sha, kind, size, sidecar, attachments, texts, notes)

    def _snapshot(self, path: Path) -> tuple[Path, str, int, str]:
        """Copy the dropped file ONCE, through a no-follow descriptor, into ``work/tmp``.

        Everything after this (type, hash, text, zip checks) reads careflow's own copy, so
        a file swapped for a link or rewritten after the checks cannot be read instead.
        Returns (copy, sha256, size, kind); the caller archives or deletes the copy.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise _Refused(
                "unsafe_file", f"cannot open without following links: {exc.strerror}"
            ) from exc
        with os.fdopen(fd, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Refused("unsafe_file", "not a regular file")
            if info.st_nlink > 1:
                raise _Refused("unsafe_file", "hard link (the file has several names)")
            if info.st_size > self.config.max_file_bytes:
                raise _Refused(
                    "oversize", f"{info.st_size:,} bytes, cap {self.config.max_file_bytes:,}"
                )
            digest = hashlib.sha256()
            work = self.config.work / "tmp"
            work.mkdir(parents=True, exist_ok=True)
            tmp_fd, tmp = tempfile.mkstemp(dir=work, prefix="drop-")
            size = 0
            head = b""
            try:
                with os.fdopen(tmp_fd, "wb") as dst:
                    while chunk := src.read(1024 * 1024):
                        head = head or chunk[:16]
                        size += len(chunk)
                        if size > self.config.max_file_bytes:
                            raise _Refused(
                                "oversize", f"grew beyond {self.config.max_file_bytes:,} bytes"
                            )
                        digest.update(chunk)
                        dst.write(chunk)
                kind = kind_of(head)
                if kind is None:
                    raise _Refused(
                        "unsupported_type", "not a PDF, PNG, TIFF, JPEG or zip (by content)"
                    )
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return Path(tmp), digest.hexdigest(), size, kind

    def _sidecar(self, name: str) -> tuple[Sidecar, str | None]:
        side = self.root / f"{name}.json"
        if not side.exists() or side.is_symlink():
            return Sidecar(), None
        try:
            return parse_sidecar(side.read_bytes()), None
        except (SidecarError, OSError) as exc:
            return Sidecar(), str(exc)

    def _text(self, path: Path, kind: str, name: str, notes: list[str]) -> ExtractedText:
        try:
            return extract_text(path, kind, self.config.ocr)
        except ConnectorError as exc:
            if exc.retryable:  # a tool is missing: stop and alarm, the file stays
                raise
            notes.append(f"{name}: no text ({exc})")
            return ExtractedText("", "none", 0)

    def _archive(self, path: Path, sha: str, kind: str, name: str) -> Attachment:
        """Move careflow's own temp copy to ``archive/<sha256><ext>`` (kept if already there)."""
        target = self.archive / f"{sha}{_EXT[kind]}"
        size = path.stat().st_size
        if not target.exists():
            os.replace(path, target)
        return Attachment(name, _CTYPE[kind], size, sha, str(target))

    def _zip(self, path: Path, notes: list[str]) -> tuple[list[Attachment], list[ExtractedText]]:
        attachments: list[Attachment] = []
        texts: list[ExtractedText] = []
        work = self.config.work / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            for member in extract_zip(path, Path(tmp), self.config.zip_limits):
                with open(member.path, "rb") as fh:
                    kind = kind_of(fh.read(16))
                if kind is None or kind == "zip":
                    notes.append(f"zip member {member.name!r} skipped: not a scan")
                    continue
                texts.append(self._text(member.path, kind, member.name, notes))
                attachments.append(
                    self._archive(member.path, _sha256(member.path), kind, member.name)
                )
        if not attachments:
            raise _Refused("zip_empty", "the archive holds no PDF, PNG, TIFF or JPEG scan")
        return attachments, texts

    def _build(
        self,
        name: str,
        sha: str,
        kind: str,
        size: int,
        sidecar: Sidecar,
        attachments: list[Attachment],
        texts: list[ExtractedText],
        notes: list[str],
    ) -> ChannelEvent:
        scanned_at = self.clock.now()
        received = sidecar.received_at or scanned_at
        occurred = (
            sidecar.postmark
            if self.config.sla_anchor == "postmark" and sidecar.postmark
            else received
        )
        channel = sidecar.channel or self.config.channel
        sender = dict(sidecar.sender)
        customer: dict[str, str] = {
            k: sender[k] for k in ("name", "customer_number", "email", "phone") if k in sender
        }
        body = "\n\n".join(t.text for t in texts if t.text)[:200_000]
        first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
        subject = sidecar.subject or (
            f"{channel.capitalize()} from {sender['name']}"
            if "name" in sender
            else first_line[:120] or f"{channel.capitalize()} {name}"
        )
        metadata: dict[str, Any] = {
            "file_name": name,
            "file_type": kind,
            "size": size,
            "sha256": sha,
            "scanned_at": scanned_at.isoformat(),
            "received_at": received.isoformat(),
            "postmark": sidecar.postmark.isoformat() if sidecar.postmark else None,
            "sla_anchor": self.config.sla_anchor,
            "text_method": sorted({t.method for t in texts}),
            "pages": sum(t.pages for t in texts),
        }
        if "address" in sender:
            metadata["sender_address"] = sender["address"]
        if sidecar.extra:
            metadata["sidecar_extra"] = dict(sidecar.extra)
        if notes:
            metadata["notes"] = notes
        return ChannelEvent(
            channel=channel,
            external_id=sha,
            direction="inbound",
            occurred_at=occurred,
            kind="message",
            customer=customer,
            subject=subject,
            body=body,
            attachments=tuple(attachments),
            metadata=metadata,
        )

    def commit(self) -> None:
        """The caller committed the events taken so far: their files leave the drop folder."""
        pending, self._pending = self._pending, []
        for name, path in pending:
            self._done(name, path)

    def rollback(self) -> None:
        """The caller's commit failed: the files stay and are read again by the next scan."""
        self._pending = []

    def _done(self, name: str, path: Path) -> None:
        """The event was taken: the original (archived) and its sidecar/marker leave the drop."""
        for leftover in (path, self.root / f"{name}.json", self.root / f"{name}.ready"):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
        self.scanner.forget(name)

    def _refuse(self, name: str, path: Path, reason: str, detail: str) -> None:
        """Move a refused file (or link) into quarantine under a safe name; report it."""
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%S")
        safe = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        target = self.quarantine / f"{stamp}-{safe}"
        try:
            os.rename(path, target)  # renames a symlink itself, never its target
            moved: str | None = str(target)
        except OSError:
            moved = None
        # its sidecar goes along; the marker is not needed any more (a name from scandir
        # never holds "/" or NUL, so both stay direct children of the root)
        side = self.root / f"{name}.json"
        if side.exists() and not side.is_symlink():
            os.rename(side, target.with_suffix(".json"))
        (self.root / f"{name}.ready").unlink(missing_ok=True)
        self.scanner.forget(name)
        rejection = Rejection(
            f"{self.name}:{self.root}",
            reason,
            f"{name!r}: {detail}",
            {"file_name": name, "quarantined": moved},
        )
        self.rejected.append(rejection)
        if self.on_reject is not None:
            self.on_reject(rejection)

    # ---- outbound and health -----------------------------------------------------------

    def send(self, msg: OutboundMessage) -> Delivery:
        """Letters and faxes are not sent from here (print/fax gateways are not modelled):
        the message is refused for good so the outbox does not retry it."""
        return Delivery(
            msg.message_id,
            None,
            DeliveryStatus.FAILED,
            f"{self.name} cannot send on channel {msg.channel!r}: outbound letters "
            "and faxes need a print/fax gateway connector",
        )

    def _succeeded(self) -> None:
        self._health.succeeded()

    def _failed(self, detail: str) -> None:
        self._health.failed(detail)

    def health(self) -> ConnectorHealth:
        return self._health.snapshot()
