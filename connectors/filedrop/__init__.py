"""careflow's letter and fax channel: a watched drop folder of scans, text by pdftotext or
Tesseract OCR, originals archived by SHA-256 (docs/channels-email-letter.md).

Registered as the ``filedrop`` connector (entry point group ``careflow.connectors``).
"""

from __future__ import annotations

from connectors.filedrop.config import FileDropConfig
from connectors.filedrop.connector import FileDropConnector

__all__ = ["FileDropConfig", "FileDropConnector"]
