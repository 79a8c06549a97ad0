"""Small persistent state for a polling connector: one JSON file, replaced atomically.

Holds the IMAP cursors (per mailbox: UIDVALIDITY and the last UID handed to intake). The
file is written with write-to-temp + ``os.replace`` so a crash leaves the old or the new
state, never half of one; a lost update only means a re-poll, which the inbox's dedup on
``(channel, external_id)`` makes harmless. Without a directory the state lives in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Cursor", "CursorStore"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where polling of one mailbox stands."""

    uidvalidity: int
    last_uid: int


class CursorStore:
    """Mailbox -> ``Cursor``, persisted in ``<directory>/<name>.json`` when a directory is given."""

    def __init__(
        self, directory: str | os.PathLike[str] | None, name: str = "imap-cursors"
    ) -> None:
        self.path = Path(directory) / f"{name}.json" if directory else None
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}
        self._dirty = False
        self._data: dict[str, Any] = self._read()

    def get(self, mailbox: str) -> Cursor | None:
        with self._lock:
            item = self._data.get(mailbox)
        if not isinstance(item, dict):
            return None
        return Cursor(int(item.get("uidvalidity", 0)), int(item.get("last_uid", 0)))

    def set(self, mailbox: str, cursor: Cursor, *, flush: bool = True) -> None:
        """Move ``mailbox``'s cursor; with ``flush=False`` only in memory until ``flush()``."""
        with self._lock:
            self._data[mailbox] = {"uidvalidity": cursor.uidvalidity, "last_uid": cursor.last_uid}
            self._dirty = True
        if flush:
            self.flush()

    def reload(self) -> None:
        """Forget unflushed moves: back to what the file says (after a failed commit)."""
        with self._lock:
            self._data = self._read()
            self._dirty = False

    def _read(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {} if self.path is not None else dict(self._saved)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # unreadable state: a full resync, deduplicated by intake
        return data if isinstance(data, dict) else {}

    def flush(self) -> None:
        """Write the cursors (atomically, fsync'd) if anything moved since the last flush."""
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            if self.path is None:
                self._saved = dict(self._data)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cursor-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(self._data, fh, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
