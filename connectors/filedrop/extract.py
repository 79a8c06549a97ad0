"""Text out of scans: ``pdftotext`` for PDFs with a text layer, Tesseract OCR otherwise.

Both are Debian tools run as subprocesses with a timeout and no shell (poppler-utils'
``pdftotext``/``pdftoppm``; ``tesseract`` with the eng/deu/nld language packs): no PDF or
image parser runs inside careflow's process. An image-only PDF is rendered page by page
(``pdftoppm``, at most ``max_pages``) and OCR'd. A missing tool is reported as a
``ConnectorError`` naming the Debian package, never silently skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConnectorError

__all__ = ["ExtractedText", "OcrSettings", "extract_text", "kind_of"]

_TOOLS = {"pdftotext": "poppler-utils", "pdftoppm": "poppler-utils", "tesseract": "tesseract-ocr"}


@dataclass(frozen=True, slots=True)
class OcrSettings:
    languages: str = "eng+deu+nld"
    timeout: float = 120.0
    max_pages: int = 20
    dpi: int = 200


@dataclass(frozen=True, slots=True)
class ExtractedText:
    text: str
    method: str  # pdftotext | ocr | none
    pages: int = 0


def kind_of(data_head: bytes) -> str | None:
    """``pdf`` / ``png`` / ``tiff`` / ``jpeg`` / ``zip`` by magic bytes (not by file name)."""
    if data_head.startswith(b"%PDF-"):
        return "pdf"
    if data_head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data_head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data_head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data_head.startswith(b"PK\x03\x04") or data_head.startswith(b"PK\x05\x06"):
        return "zip"
    return None


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConnectorError(
            "filedrop", f"{name} is not installed (Debian package {_TOOLS[name]})", retryable=True
        )
    return path


def _run(args: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConnectorError(
            "filedrop", f"{Path(args[0]).name} timed out after {timeout:.0f} s", retryable=False
        ) from exc
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()[:300]
        raise ConnectorError(
            "filedrop", f"{Path(args[0]).name} failed ({done.returncode}): {err}", retryable=False
        )
    return done.stdout.decode("utf-8", "replace")


def _ocr(image: Path, settings: OcrSettings) -> str:
    return _run(
        [_tool("tesseract"), str(image), "stdout", "-l", settings.languages], settings.timeout
    )


def _pdf(path: Path, settings: OcrSettings) -> ExtractedText:
    text = _run(
        [_tool("pdftotext"), "-enc", "UTF-8", "-l", str(settings.max_pages), str(path), "-"],
        settings.timeout,
    )
    if text.strip():
        return ExtractedText(text.strip(), "pdftotext", text.count("\f") or 1)
    with tempfile.TemporaryDirectory(prefix="careflow-ocr-") as tmp:
        _run(
            [
                _tool("pdftoppm"),
                "-r",
                str(settings.dpi),
                "-l",
                str(settings.max_pages),
                "-png",
                str(path),
                str(Path(tmp) / "page"),
            ],
            settings.timeout,
        )
        pages = sorted(Path(tmp).glob("page*.png"))
        texts = [_ocr(page, settings).strip() for page in pages]
    return ExtractedText("\n\n".join(t for t in texts if t), "ocr", len(pages))


def extract_text(path: Path, kind: str, settings: OcrSettings | None = None) -> ExtractedText:
    """The text of one scan of ``kind`` (from ``kind_of``).

    Raises:
        ConnectorError: a tool is missing (retryable: install it) or failed on this file.
    """
    settings = settings or OcrSettings()
    if kind == "pdf":
        return _pdf(path, settings)
    if kind in {"png", "tiff", "jpeg"}:
        text = _ocr(path, settings).strip()
        return ExtractedText(text, "ocr", 1)
    return ExtractedText("", "none", 0)
