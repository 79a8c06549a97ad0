"""Content-addressed attachment storage: bytes are written once under their SHA-256.

A file name from a message is never used as a path (``../`` names cannot escape); the
display name travels as ``Attachment.name``. Writes go to a temp file and are renamed, so
a reader never sees half a file, and storing the same bytes twice is a no-op.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["ContentStore"]


class ContentStore:
    """``store(data, sha256) -> path`` into ``root/ab/abcdef...``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def __call__(self, data: bytes, sha256: str) -> str:
        target = self.path_for(sha256)
        if target.exists():
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(target)
