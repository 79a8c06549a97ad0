"""Zip archives in the drop folder: checked before a single byte is extracted.

Refused: more than ``max_members`` entries, more than ``max_total_bytes`` declared
uncompressed, a member with a compression ratio above ``max_ratio`` (zip bombs), member
paths that are absolute or contain ``..``/backslashes/control characters, symlink members,
nested archives and encrypted members. Extraction then reads each member with a hard byte
budget (declared sizes can lie) into files named by index under a temp directory chosen
by the caller -- member names are never used as paths.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from connectors.filedrop.safety import check_member_name

__all__ = ["ZipLimits", "ZipMember", "ZipRejected", "extract_zip"]


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_members: int = 1_000
    max_total_bytes: int = 100 * 1024 * 1024
    max_ratio: float = 100.0


class ZipRejected(ValueError):
    """The archive breaks a rule; ``reason`` is a stable code, the message says which member."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One extracted member: its display name (last path part) and where its bytes are."""

    name: str
    path: Path
    size: int


def _check(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    if len(infos) > limits.max_members:
        raise ZipRejected(
            "zip_too_many_members", f"{len(infos):,} members, cap {limits.max_members:,}"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise ZipRejected(
            "zip_too_large", f"{total:,} bytes uncompressed, cap {limits.max_total_bytes:,}"
        )
    for info in infos:
        problem = check_member_name(info.filename)
        if problem:
            raise ZipRejected("zip_unsafe_member", f"{info.filename[:200]!r}: {problem}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ZipRejected("zip_unsafe_member", f"{info.filename[:200]!r}: symbolic link member")
        if info.flag_bits & 0x1:
            raise ZipRejected("zip_encrypted", f"{info.filename[:200]!r} is encrypted")
        if info.filename.lower().endswith((".zip", ".7z", ".rar", ".gz", ".tar")):
            raise ZipRejected("zip_nested_archive", f"{info.filename[:200]!r}: nested archive")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise ZipRejected(
                "zip_bomb",
                f"{info.filename[:200]!r}: compression ratio "
                f"{ratio:,.0f}:1, cap {limits.max_ratio:,.0f}:1",
            )


def extract_zip(path: Path, target: Path, limits: ZipLimits | None = None) -> list[ZipMember]:
    """Check and extract ``path`` into ``target`` (created), or raise ``ZipRejected``."""
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipRejected("zip_corrupt", str(exc)) from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        _check(archive.infolist(), limits)
        target.mkdir(parents=True, exist_ok=True)
        budget = limits.max_total_bytes
        members: list[ZipMember] = []
        for index, info in enumerate(infos):
            out = target / f"{index:04d}"
            written = 0
            try:
                with archive.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(1024 * 1024):
                        written += len(chunk)
                        if written > info.file_size or written > budget:
                            raise ZipRejected(
                                "zip_bomb",
                                f"{info.filename[:200]!r} inflates beyond its declared size",
                            )
                        dst.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ZipRejected("zip_corrupt", f"{info.filename[:200]!r}: {exc}") from exc
            budget -= written
            members.append(ZipMember(PurePosixPath(info.filename).name, out, written))
        return members
