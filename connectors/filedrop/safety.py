"""What may be read from the drop folder: names, symlinks, paths outside the root.

A scanner must never read or write outside its root (scenario R16). Names are checked as
text first (NUL, control characters including newline, ``..`` segments, absolute or
drive paths, backslashes), then the file itself with ``lstat`` (a symlink is refused
whatever it points at, so is anything that is not a regular file), and finally the
resolved path must still lie inside the resolved root.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath

__all__ = ["MEMBER_NAME_PROBLEM", "check_member_name", "check_name", "inside_root"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
MEMBER_NAME_PROBLEM = "unsafe_name"


def check_name(name: str, *, max_len: int = 255) -> str | None:
    """Why a plain file name (no directories) is refused, or None when it is fine.

    >>> check_name("scan-0001.pdf") is None
    True
    >>> check_name("../../x")
    'name contains a path separator or ..'
    """
    if not name or name in {".", ".."}:
        return "empty name"
    if len(name.encode("utf-8", "surrogateescape")) > max_len:
        return f"name longer than {max_len} bytes"
    if "\x00" in name:
        return "NUL in name"
    if _CONTROL.search(name):
        return "control character (newline, tab ...) in name"
    if "/" in name or "\\" in name or ".." in name.split("."):
        return "name contains a path separator or .."
    if name.startswith("-"):
        return "name starts with '-' (would read as a command option)"
    return None


def check_member_name(name: str) -> str | None:
    """Why a zip member path is refused: absolute, drive letter, ``..``, backslash, controls."""
    if "\x00" in name or _CONTROL.search(name):
        return "control character or NUL in member name"
    if "\\" in name:
        return "backslash in member name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute member path"
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        return "member path contains .."
    if not parts:
        return "empty member name"
    return None


def inside_root(root: Path, path: Path) -> str | None:
    """Why ``path`` (an entry of ``root``) must not be read, or None for a regular file inside."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode):
        return "symbolic link (never followed)"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        return "resolves outside the drop root"
    return None
