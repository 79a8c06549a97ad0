"""The file-drop connector's configuration (letters and faxes scanned into a folder)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from connectors.filedrop.extract import OcrSettings
from connectors.filedrop.zips import ZipLimits
from engine.errors import ConnectorError

__all__ = ["CONFIG_ENV", "FileDropConfig"]

CONFIG_ENV = "CAREFLOW_FILEDROP_CONFIG"
#: suffixes of files still being written: never read
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".filepart", ".uploading")


@dataclass(frozen=True, slots=True)
class FileDropConfig:
    """Where scans arrive and how they are read.

    ``work_dir`` (default ``<root>/.careflow``) holds ``archive/`` (originals under their
    SHA-256), ``quarantine/`` (refused files) and ``tmp/``; entries starting with a dot are
    never scanned, so it may live inside the root.
    """

    root: str = ""
    name: str = "filedrop"
    channel: str = "letter"  # default when a sidecar does not say letter|fax
    work_dir: str | None = None
    #: scans in a row with the same size and mtime before a file counts as complete
    stable_scans: int = 2
    max_file_bytes: int = 50 * 1024 * 1024
    #: which instant starts the SLA: "received" (sidecar received_at, else scan time) or "postmark"
    sla_anchor: str = "received"
    zip_limits: ZipLimits = field(default_factory=ZipLimits)
    ocr: OcrSettings = field(default_factory=OcrSettings)

    def __post_init__(self) -> None:
        if not self.root:
            raise ConnectorError(self.name, "no drop folder: set 'root'", retryable=False)
        if self.channel not in {"letter", "fax"}:
            raise ConnectorError(
                self.name, f"channel must be letter or fax, not {self.channel!r}", retryable=False
            )
        if self.sla_anchor not in {"received", "postmark"}:
            raise ConnectorError(
                self.name,
                f"sla_anchor must be received or postmark, not {self.sla_anchor!r}",
                retryable=False,
            )
        if self.stable_scans < 1:
            raise ConnectorError(self.name, "stable_scans must be at least 1", retryable=False)

    @property
    def work(self) -> Path:
        return Path(self.work_dir) if self.work_dir else Path(self.root) / ".careflow"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> FileDropConfig:
        """Build from a plain mapping; ``zip_limits`` and ``ocr`` may be mappings.

        Raises:
            ConnectorError: an unknown key (named, with the known ones) or a bad value.
        """
        data = dict(config)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConnectorError(
                str(data.get("name", "filedrop")),
                f"unknown config key(s) {unknown}; known: {', '.join(sorted(known))}",
                retryable=False,
            )
        if isinstance(data.get("zip_limits"), Mapping):
            data["zip_limits"] = ZipLimits(**data["zip_limits"])
        if isinstance(data.get("ocr"), Mapping):
            data["ocr"] = OcrSettings(**data["ocr"])
        return cls(**data)
