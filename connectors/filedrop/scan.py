"""Which files in the drop folder are complete: the partial-file rules.

A file is ready when a ``<name>.ready`` marker exists, or when its size and mtime have
not changed over ``stable_scans`` consecutive scans. Files ending in ``.part``/``.tmp``
(and similar), dot files, sidecars (``.json``), markers (``.ready``) and directories are
never candidates. The scanner lists names with ``os.scandir`` and does not follow links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from connectors.filedrop.config import PARTIAL_SUFFIXES

__all__ = ["Candidate", "StabilityScanner"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A directory entry worth looking at: ``ready`` says whether it is complete."""

    name: str
    path: Path
    ready: bool


class StabilityScanner:
    """Remembers (size, mtime) per name between scans."""

    def __init__(self, root: Path, stable_scans: int = 2) -> None:
        self.root = root
        self.stable_scans = stable_scans
        self._seen: dict[str, tuple[int, int, int]] = {}

    def scan(self) -> list[Candidate]:
        out: list[Candidate] = []
        present: set[str] = set()
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        names = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            lower = name.lower()
            if name.startswith(".") or lower.endswith((".json", ".ready", *PARTIAL_SUFFIXES)):
                continue
            if entry.is_dir(follow_symlinks=False):
                continue
            present.add(name)
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            signature = (info.st_size, info.st_mtime_ns)
            previous = self._seen.get(name)
            count = previous[2] + 1 if previous and previous[:2] == signature else 1
            self._seen[name] = (*signature, count)
            ready = f"{name}.ready" in names or count >= self.stable_scans
            out.append(Candidate(name, Path(entry.path), ready))
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return out

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
