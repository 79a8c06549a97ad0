"""Letters and faxes from a drop folder: text, OCR, sidecars, partial files, duplicates (R16)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scan_builders import drop, text_image, text_pdf, zip_bytes

from connectors.filedrop import FileDropConnector
from connectors.filedrop.connector import Rejection
from engine.clock import SimulatedClock
from engine.errors import ConnectorError

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
LETTER = ["Dear careflow team,", "my invoice 4711 is wrong.", "Kind regards, Jan de Vries"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


def _conn(root: Path, **extra: object) -> FileDropConnector:
    return FileDropConnector({"root": str(root), **extra}, clock=SimulatedClock(NOW))


def test_pdf_letter_with_sidecar(root: Path) -> None:
    data = text_pdf(LETTER)
    drop(root, "scan-0001.pdf", data)
    (root / "scan-0001.pdf.json").write_text(
        json.dumps(
            {
                "channel": "letter",
                "postmark": "2026-02-27",
                "received_at": "2026-03-02T08:15:00+01:00",
                "sender": {
                    "name": "Jan de Vries",
                    "address": "Kerkstraat 1, Utrecht",
                    "customer_number": "K-100",
                },
            }
        )
    )
    conn = _conn(root)
    (event,) = list(conn.receive())
    sha = hashlib.sha256(data).hexdigest()
    assert event.channel == "letter"
    assert event.kind == "message"
    assert event.external_id == sha
    assert "invoice 4711 is wrong" in event.body
    assert event.customer == {"name": "Jan de Vries", "customer_number": "K-100"}
    assert event.subject == "Letter from Jan de Vries"
    assert event.occurred_at == datetime(
        2026, 3, 2, 7, 15, tzinfo=UTC
    )  # received_at anchors the SLA
    assert event.metadata["postmark"] == "2026-02-27T00:00:00+00:00"
    assert event.metadata["sender_address"] == "Kerkstraat 1, Utrecht"
    assert event.metadata["text_method"] == ["pdftotext"]
    (attachment,) = event.attachments
    assert attachment.sha256 == sha
    assert Path(attachment.path or "").read_bytes() == data
    assert Path(attachment.path or "").name == f"{sha}.pdf"
    assert sorted(p.name for p in root.iterdir()) == [".careflow"]  # original, sidecar, marker gone


def test_postmark_can_anchor_the_sla(root: Path) -> None:
    drop(root, "fax.pdf", text_pdf(["Fax"]))
    (root / "fax.pdf.json").write_text('{"channel": "fax", "postmark": "2026-02-27"}')
    (event,) = list(_conn(root, sla_anchor="postmark").receive())
    assert event.channel == "fax"
    assert event.occurred_at == datetime(2026, 2, 27, tzinfo=UTC)


def test_png_and_image_only_pdf_are_read_by_ocr(root: Path) -> None:
    drop(root, "a-photo.png", text_image(["Invoice 4711 is wrong", "Please call me back"]))
    drop(root, "b-fax.pdf", text_image(["Contract 99 cancelled"], "PDF"))
    png, pdf = list(_conn(root, channel="fax").receive())
    assert "4711" in png.body
    assert "call me back" in png.body
    assert png.metadata["text_method"] == ["ocr"]
    assert "Contract 99" in pdf.body
    assert pdf.metadata["text_method"] == ["ocr"]
    assert pdf.channel == "fax"
    assert pdf.subject.startswith("Contract 99")


def test_partial_files_wait_until_stable(root: Path) -> None:
    conn = _conn(root)
    (root / "upload.pdf.part").write_bytes(text_pdf(["half"]))
    path = drop(root, "growing.pdf", text_pdf(["part one"]), ready=False)
    assert list(conn.receive()) == []  # first sight: not yet known to be complete
    path.write_bytes(text_pdf(["part one", "part two"]))
    os.utime(path, ns=(1, 2))
    assert list(conn.receive()) == []  # changed since the last scan
    (event,) = list(conn.receive())  # unchanged over two scans: complete
    assert "part two" in event.body
    assert (root / "upload.pdf.part").exists()  # a .part file is never read


def test_duplicates_have_the_same_external_id(root: Path) -> None:
    data = text_pdf(LETTER)
    drop(root, "first.pdf", data)
    drop(root, "again.pdf", data)
    first, again = list(_conn(root).receive())
    assert first.external_id == again.external_id == hashlib.sha256(data).hexdigest()
    assert first.attachments[0].path == again.attachments[0].path


HOSTILE_NAMES = {
    "newline": "evil\nname.pdf",
    "tab": "evil\tname.pdf",
    "carriage_return": "evil\rname.pdf",
    "line_separator": "evil\u2028name.pdf",
    "dash": "-rf.pdf",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES), ids=str)
def test_hostile_names_are_quarantined(root: Path, case: str) -> None:
    name = HOSTILE_NAMES[case]
    drop(root, name, text_pdf(["x"]))
    conn = _conn(root)
    assert list(conn.receive()) == []
    (rejection,) = conn.rejected
    assert rejection.reason == "unsafe_file"
    assert Path(rejection.payload["quarantined"]).parent == root / ".careflow" / "quarantine"
    assert not (root / name).exists()
    assert sorted(p.name for p in root.iterdir()) == [".careflow"]


def test_symlink_to_outside_is_never_followed(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(text_pdf(["top secret"]))
    (root / "link.pdf").symlink_to(secret)
    (root / "link.pdf.ready").touch()
    (root / "passwd.pdf").symlink_to("/etc/passwd")
    (root / "passwd.pdf.ready").touch()
    conn = _conn(root)
    assert list(conn.receive()) == []
    assert {r.reason for r in conn.rejected} == {"unsafe_file"}
    assert all("symbolic link" in r.detail for r in conn.rejected)
    assert secret.read_bytes().startswith(b"%PDF")  # the target is untouched
    assert not any(
        p.name.startswith(secret.name) for p in (root / ".careflow" / "archive").iterdir()
    )


def test_unsupported_content_is_refused_by_magic_bytes(root: Path) -> None:
    drop(root, "letter.pdf", b"#!/bin/sh\nrm -rf /\n")
    conn = _conn(root)
    assert list(conn.receive()) == []
    assert conn.rejected[0].reason == "unsupported_type"


def test_zip_of_scans_is_one_event(root: Path) -> None:
    drop(
        root,
        "batch.zip",
        zip_bytes(
            {
                "page1.pdf": text_pdf(["Page one text"]),
                "sub/page2.pdf": text_pdf(["Page two text"]),
                "readme.txt": b"not a scan",
            }
        ),
    )
    (event,) = list(_conn(root).receive())
    assert [a.name for a in event.attachments] == ["page1.pdf", "page2.pdf"]
    assert "Page one text" in event.body
    assert "Page two text" in event.body
    assert any("readme.txt" in n for n in event.metadata["notes"])


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../../evil.pdf": b"%PDF-1.4"}, "zip_unsafe_member"),
        ({"/etc/cron.d/evil": b"x"}, "zip_unsafe_member"),
        ({"C:/evil.pdf": b"x"}, "zip_unsafe_member"),
        ({"a\\..\\evil.pdf": b"x"}, "zip_unsafe_member"),
        ({"inner.zip": b"PK\x03\x04"}, "zip_nested_archive"),
        ({f"p{i}.pdf": b"%PDF-1.4" for i in range(1_001)}, "zip_too_many_members"),
        ({"bomb.pdf": b"\0" * (20 * 1024 * 1024)}, "zip_bomb"),
    ],
    ids=["dotdot", "absolute", "drive", "backslash", "nested", "members", "bomb"],
)
def test_hostile_zips_are_refused_before_extraction(
    root: Path, members: dict[str, bytes], reason: str
) -> None:
    drop(root, "evil.zip", zip_bytes(members))
    conn = _conn(root)
    assert list(conn.receive()) == []
    assert conn.rejected[0].reason == reason
    assert not (root.parent / "evil.pdf").exists()
    assert not (root / "evil.pdf").exists()
    assert not any((root / ".careflow" / "archive").iterdir())


def test_zip_total_size_cap(root: Path) -> None:
    drop(root, "big.zip", zip_bytes({"a.pdf": os.urandom(300_000), "b.pdf": os.urandom(300_000)}))
    conn = _conn(root, zip_limits={"max_total_bytes": 500_000})
    assert list(conn.receive()) == []
    assert conn.rejected[0].reason == "zip_too_large"


def test_bad_sidecar_does_not_block_the_letter(root: Path) -> None:
    drop(root, "x.pdf", text_pdf(["hello"]))
    (root / "x.pdf.json").write_text('{"channel": "pigeon"}')
    (event,) = list(_conn(root).receive())
    assert event.channel == "letter"
    assert "sidecar ignored: channel" in event.metadata["notes"][0]


def test_file_stays_when_the_caller_fails(root: Path) -> None:
    drop(root, "keep.pdf", text_pdf(["keep me"]))
    conn = _conn(root)
    events = conn.receive()
    next(events)
    events.close()  # the caller stopped (crashed) before taking the next event
    assert (root / "keep.pdf").exists()
    assert len(list(conn.receive())) == 1


def test_missing_root_and_outbound() -> None:
    conn = FileDropConnector({"root": "/nonexistent/careflow-drop"})
    with pytest.raises(ConnectorError, match="does not exist"):
        list(conn.receive())
    assert not conn.health().ok
    with pytest.raises(ConnectorError, match="unknown config key"):
        FileDropConnector({"root": "/tmp", "rot": "/x"})


def test_rejections_reach_the_callback(root: Path) -> None:
    seen: list[Rejection] = []
    drop(root, "bad\nname.pdf", text_pdf(["x"]))
    conn = FileDropConnector({"root": str(root)}, on_reject=seen.append)
    list(conn.receive())
    assert [r.reason for r in seen] == ["unsafe_file"]


def test_hard_links_are_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(text_pdf(["not for you"]))
    os.link(outside, root / "linked.pdf")
    (root / "linked.pdf.ready").touch()
    conn = _conn(root)
    assert list(conn.receive()) == []
    assert "hard link" in conn.rejected[0].detail
    assert outside.exists()
